"""Settings for the test suite: the real PostgreSQL and Redis, faster where speed is free."""

from orchestra.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Tests that are not about the worker run tasks inline; worker tests start a real one.
CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True
CACHES["default"]["KEY_PREFIX"] = "orchestra-test"  # noqa: F405 (worker tests pass it on)
LOGGING["root"]["level"] = "WARNING"  # noqa: F405

# Two test runs on one database server (say, two checkouts) each get their own database.
_suffix = env_str("TEST_DATABASE_SUFFIX", "")  # noqa: F405
DATABASES["default"]["TEST"] = {"NAME": f"test_{DATABASES['default']['NAME']}{_suffix}"}  # noqa: F405
CACHES["default"]["KEY_PREFIX"] += _suffix  # noqa: F405
