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
