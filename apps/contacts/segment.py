"""Segment-compatible ingest: /v1/identify, /v1/track, /v1/page, /v1/screen, /v1/group,
/v1/alias and /v1/batch, authenticated with a workspace API key as the HTTP basic user."""

urlpatterns = []
