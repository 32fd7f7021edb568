from django.contrib import admin

from apps.reporting.models import (
    AttributionDaily,
    AttributionSettings,
    CustomerRfm,
    EventDaily,
    InsightSnapshot,
    JourneyDaily,
    MessageDaily,
    RollupWatermark,
    SegmentDaily,
)


@admin.register(MessageDaily)
class MessageDailyAdmin(admin.ModelAdmin):
    list_display = ["day", "workspace", "channel", "journey_id", "node_id", "sent", "delivered",
                    "unique_opens", "unique_clicks", "bounced", "unsubscribed"]  # fmt: skip
    list_filter = ["channel", "day", "workspace"]
    search_fields = ["node_id", "workspace__name"]
    date_hierarchy = "day"


@admin.register(JourneyDaily)
class JourneyDailyAdmin(admin.ModelAdmin):
    list_display = ["day", "workspace", "journey_id", "node_id", "outcome", "branch", "count"]
    list_filter = ["outcome", "day", "workspace"]
    search_fields = ["node_id", "branch", "workspace__name"]
    date_hierarchy = "day"


@admin.register(EventDaily)
class EventDailyAdmin(admin.ModelAdmin):
    list_display = ["day", "workspace", "name", "count", "revenue"]
    list_filter = ["day", "workspace"]
    search_fields = ["name", "workspace__name"]
    date_hierarchy = "day"


@admin.register(SegmentDaily)
class SegmentDailyAdmin(admin.ModelAdmin):
    list_display = ["day", "workspace", "segment", "entered", "exited"]
    list_filter = ["day", "workspace"]
    search_fields = ["segment", "workspace__name"]
    date_hierarchy = "day"


@admin.register(RollupWatermark)
class RollupWatermarkAdmin(admin.ModelAdmin):
    list_display = ["source", "last_id", "updated_at"]
    list_filter = ["updated_at"]
    search_fields = ["source"]


@admin.register(AttributionDaily)
class AttributionDailyAdmin(admin.ModelAdmin):
    list_display = ["day", "workspace", "model", "channel", "journey_id", "node_id",
                    "conversions", "revenue"]  # fmt: skip
    list_filter = ["model", "channel", "day", "workspace"]
    search_fields = ["node_id", "workspace__name"]
    date_hierarchy = "day"


@admin.register(AttributionSettings)
class AttributionSettingsAdmin(admin.ModelAdmin):
    list_display = ["workspace", "conversion_events", "lookback_days", "half_life_hours"]
    list_filter = ["lookback_days"]
    search_fields = ["workspace__name"]


@admin.register(InsightSnapshot)
class InsightSnapshotAdmin(admin.ModelAdmin):
    list_display = ["workspace", "computed_at", "seconds"]
    list_filter = ["computed_at", "workspace"]
    search_fields = ["workspace__name"]
    date_hierarchy = "computed_at"
    readonly_fields = ["workspace", "computed_at", "seconds", "data"]


@admin.register(CustomerRfm)
class CustomerRfmAdmin(admin.ModelAdmin):
    list_display = ["contact_id", "workspace", "recency", "frequency", "purchases", "revenue",
                    "last_purchase_at"]  # fmt: skip
    list_filter = ["recency", "frequency", "workspace"]
    search_fields = ["contact__email", "contact__external_id", "workspace__name"]
    list_select_related = ["workspace"]
    raw_id_fields = ["contact"]
