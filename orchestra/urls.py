from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from apps.accounts import api as accounts_api
from apps.channels import urls as channels_urls
from apps.channels.api import channels as channels_api
from apps.channels.api import messages as messages_api
from apps.channels.api import push as push_api
from apps.channels.api import templates as templates_api
from apps.contacts import api as contacts_api
from apps.journeys import api as journeys_api
from apps.personalization import api as personalization_api
from apps.reporting import api as reporting_api
from apps.reporting import views as reporting_views
from apps.segments import api as segments_api
from apps.webhooks import api as webhooks_api
from orchestra import health

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("members", accounts_api.MembershipViewSet, basename="membership")
router.register("contacts", contacts_api.ContactViewSet, basename="contact")
router.register("events", contacts_api.EventViewSet, basename="event")
router.register("lists", contacts_api.ContactListViewSet, basename="contactlist")
router.register("segments", segments_api.SegmentViewSet, basename="segment")
router.register("journeys", journeys_api.JourneyViewSet, basename="journey")
router.register("templates", templates_api.TemplateViewSet, basename="template")
router.register("channels", channels_api.ChannelViewSet, basename="channel")
router.register("messages", messages_api.MessageViewSet, basename="message")
router.register("push-subscriptions", push_api.PushSubscriptionViewSet, basename="pushsubscription")
router.register("webhooks", webhooks_api.WebhookSubscriptionViewSet, basename="webhook")

api_v1 = [
    path("workspace/", accounts_api.CurrentWorkspaceView.as_view(), name="workspace"),
    path("reports/overview/", reporting_api.ReportOverviewView.as_view(), name="report-overview"),
    path("reports/insight/", reporting_api.ReportInsightView.as_view(), name="report-insight"),
    path(
        "reports/attribution/",
        reporting_api.ReportAttributionView.as_view(),
        name="report-attribution",
    ),
    path(
        "reports/journeys/<int:pk>/",
        reporting_api.ReportJourneyView.as_view(),
        name="report-journey",
    ),
    path(
        "personalize/<slug:slot>/",
        personalization_api.PersonalizeView.as_view(),
        name="personalize",
    ),
    path(
        "personalize/<slug:slot>/click/",
        personalization_api.SlotClickView.as_view(),
        name="personalize-click",
    ),
    *router.urls,
]

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("", reporting_views.dashboard, name="dashboard"),
    path("reports/", include("apps.reporting.urls")),
    path("contacts/", include("apps.contacts.urls")),
    path("segments/", include("apps.segments.urls")),
    path("journeys/", include("apps.journeys.urls")),
    path("personalize/", include("apps.personalization.urls")),
    path("settings/", include("apps.accounts.urls")),
    path("v1/", include("apps.contacts.segment")),
    path("t/", include(channels_urls.tracking_patterns, namespace="tracking")),
    path("templates/", include(channels_urls.template_patterns, namespace="templates")),
    path("messages/", include(channels_urls.message_patterns, namespace="messages")),
    path(
        "settings/channels/",
        include(channels_urls.channel_settings_patterns, namespace="channels"),
    ),
    path("settings/webhooks/", include("apps.webhooks.urls")),
    path("hooks/", include(channels_urls.hook_patterns, namespace="hooks")),
    # ESPs' tracking webhooks (django-anymail): /hooks/esp/<esp>/tracking/
    path("hooks/esp/", include("anymail.urls")),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "accounts/password-reset/",
        auth_views.PasswordResetView.as_view(),
        name="password_reset",
    ),
    path(
        "accounts/password-reset/sent/",
        auth_views.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),
    path(
        "accounts/reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "accounts/reset/done/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
    path("admin/", admin.site.urls),
    path("api/v1/", include((api_v1, "api"), namespace="api")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="api-redoc"),
]
