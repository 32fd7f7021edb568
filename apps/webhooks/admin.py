from django.contrib import admin
from django.db import models

from apps.webhooks.models import WebhookDelivery, WebhookFeedPosition, WebhookSubscription


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(admin.ModelAdmin):
    list_display = ["url", "description", "workspace", "is_active", "failing_since", "created_at"]
    list_filter = ["is_active", "workspace", "created_at"]
    search_fields = ["url", "description", "workspace__name", "workspace__slug"]
    # The signing secret never shows here either.
    exclude = ["secret"]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    readonly_fields = ["failing_since", "disabled_at", "disabled_reason", "created_at"]
    raw_id_fields = ["created_by"]


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = [
        "event_type",
        "event_id",
        "subscription",
        "status",
        "attempts",
        "response_status",
        "duration_ms",
        "created_at",
    ]
    list_filter = ["status", "event_type", "workspace"]
    search_fields = ["=event_id", "event_type", "subscription__url"]
    list_select_related = ["subscription"]
    raw_id_fields = ["subscription"]
    show_full_result_count = False
    readonly_fields = ["created_at", "delivered_at", "last_attempt_at"]


@admin.register(WebhookFeedPosition)
class WebhookFeedPositionAdmin(admin.ModelAdmin):
    list_display = ["source", "last_id", "last_at", "updated_at"]
    list_filter = ["updated_at"]
    search_fields = ["source"]
