from django.contrib import admin

from apps.segments.models import Segment, SegmentMembership, SegmentSize


@admin.register(Segment)
class SegmentAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "workspace", "member_count", "refreshed_at", "updated_at"]
    list_filter = ["workspace", "refreshed_at"]
    search_fields = ["name", "slug", "description"]
    readonly_fields = ["member_count", "refreshed_at", "created_at", "updated_at"]


@admin.register(SegmentMembership)
class SegmentMembershipAdmin(admin.ModelAdmin):
    list_display = ["contact", "segment", "entered_at"]
    list_filter = ["segment", "workspace"]
    search_fields = ["contact__email", "=contact__external_id", "segment__name"]
    list_select_related = ["contact", "segment"]
    raw_id_fields = ["contact"]
    show_full_result_count = False


@admin.register(SegmentSize)
class SegmentSizeAdmin(admin.ModelAdmin):
    list_display = ["segment", "size", "measured_at"]
    list_filter = ["segment"]
    search_fields = ["segment__name"]
    date_hierarchy = "measured_at"
