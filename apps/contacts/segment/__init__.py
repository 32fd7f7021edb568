"""Segment-compatible ingest: /v1/identify, /v1/track, /v1/page, /v1/screen, /v1/group,
/v1/alias and /v1/batch, authenticated with a workspace API key as the HTTP basic user.

analytics.js posts to one-letter paths (/v1/i, /v1/t, /v1/p, /v1/s, /v1/g, /v1/a and,
when batching, /v1/b), so each endpoint answers there too.

auth.py reads the key and the (possibly gzip-compressed) body, ingest.py turns Segment
messages into identity calls and events, views.py holds the endpoints, schema.py their
OpenAPI description.
"""

from django.urls import path

from apps.contacts.segment import views

ENDPOINTS = [
    ("identify", views.IdentifyView),
    ("track", views.TrackView),
    ("page", views.PageView),
    ("screen", views.ScreenView),
    ("group", views.GroupView),
    ("alias", views.AliasView),
    ("batch", views.BatchView),
]

urlpatterns = [
    *(path(name, view.as_view(), name=f"segment-{name}") for name, view in ENDPOINTS),
    *(
        path(name[0], views.analytics_js_view(view), name=f"segment-{name}-analytics-js")
        for name, view in ENDPOINTS
    ),
]
