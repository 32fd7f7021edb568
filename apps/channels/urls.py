from django.urls import path

from apps.channels.views import channels, hooks, messages, templates, tracking

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
template_patterns = (
    [
        path("", templates.template_list, name="list"),
        path("new/", templates.template_create, name="create"),
        path("preview/", templates.template_preview, name="preview"),
        path("contacts/", templates.template_contact_search, name="contact_search"),
        path("test/", templates.template_send_test, name="send_test"),
        path("<int:pk>/", templates.template_edit, name="edit"),
        path("<int:pk>/versions/<int:number>/", templates.template_version, name="version"),
        path("<int:pk>/delete/", templates.template_delete, name="delete"),
    ],
    "templates",
)
message_patterns = (
    [
        path("", messages.message_list, name="list"),
        path("<int:pk>/", messages.message_detail, name="detail"),
    ],
    "messages",
)
channel_settings_patterns = (
    [
        path("", channels.channel_list, name="list"),
        path("new/", channels.channel_create, name="create"),
        path("<int:pk>/", channels.channel_edit, name="edit"),
        path("<int:pk>/delete/", channels.channel_delete, name="delete"),
    ],
    "channels",
)

# Providers calling back: SMS delivery receipts (/hooks/).
hook_patterns = (
    [
        path("sms/<int:channel_id>/<str:token>/", hooks.sms_receipt, name="sms"),
        path("twilio/<int:channel_id>/", hooks.twilio_receipt, name="twilio"),
    ],
    "hooks",
)
