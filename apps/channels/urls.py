from django.urls import path

from apps.channels.views import tracking

# Public: reached from messages by their recipients, authenticated by signed tokens.
tracking_patterns = (
    [
        path("o/<str:token>.gif", tracking.open_pixel, name="open"),
        path("c/<str:token>/", tracking.click, name="click"),
        path("u/<str:token>/", tracking.unsubscribe, name="unsubscribe"),
    ],
    "tracking",
)

# The marketer's pages (/templates/, /messages/, /settings/channels/).
template_patterns = ([], "templates")
message_patterns = ([], "messages")
channel_settings_patterns = ([], "channels")

# Providers calling back: SMS delivery receipts (/hooks/).
hook_patterns = ([], "hooks")
