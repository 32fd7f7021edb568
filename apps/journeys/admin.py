from django.contrib import admin

from apps.journeys.models import (
    Enrollment,
    Journey,
    JourneyStep,
    JourneyVersion,
    NodeStats,
    PendingJourneyEvent,
)


class JourneyVersionInline(admin.TabularInline):
    model = JourneyVersion
    fields = ["number", "published_at", "published_by"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True


@admin.register(Journey)
class JourneyAdmin(admin.ModelAdmin):
    """Journeys change through their services (publishing validates and freezes a
    version); the admin shows them and may pause or archive with the API or the builder."""

    list_display = ["name", "workspace", "status", "priority", "live_version", "updated_at"]
    list_filter = ["status", "workspace"]
    search_fields = ["name"]
    readonly_fields = ["draft", "live_version", "status", "created_at", "updated_at"]
    inlines = [JourneyVersionInline]


@admin.register(JourneyVersion)
class JourneyVersionAdmin(admin.ModelAdmin):
    list_display = ["journey", "number", "published_at", "published_by"]
    list_filter = ["journey__workspace", "published_at"]
    search_fields = ["journey__name"]
    readonly_fields = ["journey", "number", "graph", "published_at", "published_by"]


@admin.register(Enrollment)
class EnrollmentAdmin(admin.ModelAdmin):
    list_display = ["contact", "journey", "version", "node_id", "state", "due_at", "entered_at"]
    list_filter = ["state", "holdout", "journey"]
    search_fields = ["contact__email", "=contact__external_id", "journey__name", "=key"]
    list_select_related = ["contact", "journey", "version"]
    raw_id_fields = ["contact"]
    readonly_fields = ["journey", "version", "workspace", "visits", "entry_event"]
    show_full_result_count = False


@admin.register(JourneyStep)
class JourneyStepAdmin(admin.ModelAdmin):
    list_display = ["enrollment", "node_id", "outcome", "detail", "at"]
    list_filter = ["outcome"]
    search_fields = ["=node_id", "enrollment__contact__email", "enrollment__journey__name"]
    list_select_related = ["enrollment__contact", "enrollment__journey"]
    raw_id_fields = ["enrollment", "message"]
    show_full_result_count = False


@admin.register(NodeStats)
class NodeStatsAdmin(admin.ModelAdmin):
    list_display = ["journey", "version", "node_id", "entered", "waiting", "completed",
                    "exited", "converted"]  # fmt: skip
    list_filter = ["journey"]
    search_fields = ["journey__name", "=node_id"]
    readonly_fields = ["journey", "version", "node_id", "entered", "waiting", "completed",
                       "exited", "converted", "branches"]  # fmt: skip


@admin.register(PendingJourneyEvent)
class PendingJourneyEventAdmin(admin.ModelAdmin):
    """Events stored and not yet applied to the journeys: normally empty within a second; a
    growing list means no worker drains them. Ingest writes them and the engine deletes
    them as it applies them, so they are neither added nor changed here (deleting one
    means its event never reaches the journeys)."""

    list_display = ["event_id", "workspace", "created_at"]
    list_filter = ["workspace", "created_at"]
    search_fields = ["=event__id", "event__name"]
    list_select_related = ["workspace"]
    show_full_result_count = False

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
