from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from apps.contacts.models import (
    AnonymousId,
    Consent,
    ConsentChange,
    Contact,
    ContactImport,
    ContactList,
    ContactMerge,
    ErasureRecord,
    Event,
    ListMembership,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records that must not be edited by hand (history, audit, merges)."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class ConsentInline(admin.TabularInline):
    model = Consent
    extra = 0
    fields = ["channel", "status", "source", "updated_at"]
    readonly_fields = fields
    can_delete = False


class AnonymousIdInline(admin.TabularInline):
    model = AnonymousId
    extra = 0
    fields = ["anonymous_id", "created_at"]
    readonly_fields = fields


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    list_display = ["__str__", "email", "external_id", "workspace", "created_at", "last_seen_at"]
    list_filter = ["workspace", "created_at", "last_seen_at", "locale"]
    search_fields = ["=external_id", "email", "first_name", "last_name", "phone"]
    list_select_related = ["workspace"]
    readonly_fields = ["created_at", "updated_at", "last_seen_at"]
    inlines = [ConsentInline, AnonymousIdInline]
    show_full_result_count = False  # no COUNT(*) over a million contacts


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ["name", "contact", "occurred_at", "source", "workspace"]
    list_filter = ["workspace", "source", "occurred_at"]
    search_fields = ["name", "=message_id", "=contact__external_id", "contact__email"]
    list_select_related = ["contact", "workspace"]
    raw_id_fields = ["contact"]
    date_hierarchy = "occurred_at"
    show_full_result_count = False


@admin.register(ConsentChange)
class ConsentChangeAdmin(ReadOnlyAdmin):
    list_display = ["contact", "channel", "status", "source", "changed_at"]
    list_filter = ["channel", "status", "workspace"]
    search_fields = ["contact__email", "=contact__external_id", "source"]
    list_select_related = ["contact"]


@admin.register(Consent)
class ConsentAdmin(admin.ModelAdmin):
    list_display = ["contact", "channel", "status", "source", "updated_at"]
    list_filter = ["channel", "status", "workspace"]
    search_fields = ["contact__email", "=contact__external_id"]
    list_select_related = ["contact"]
    raw_id_fields = ["contact"]


@admin.register(ContactList)
class ContactListAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "workspace", "created_at"]
    list_filter = ["workspace"]
    search_fields = ["name", "slug"]


@admin.register(ListMembership)
class ListMembershipAdmin(admin.ModelAdmin):
    list_display = ["contact", "contact_list", "source", "added_at"]
    list_filter = ["contact_list", "source", "workspace"]
    search_fields = ["contact__email", "=contact__external_id", "contact_list__name"]
    list_select_related = ["contact", "contact_list"]
    raw_id_fields = ["contact"]


@admin.register(AnonymousId)
class AnonymousIdAdmin(admin.ModelAdmin):
    list_display = ["anonymous_id", "contact", "workspace", "created_at"]
    list_filter = ["workspace"]
    search_fields = ["=anonymous_id", "contact__email"]
    raw_id_fields = ["contact"]


@admin.register(ContactMerge)
class ContactMergeAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "contact", "events_moved", "source", "merged_at"]
    list_filter = ["source", "workspace"]
    search_fields = ["=merged_contact_id", "contact__email"]


@admin.register(ErasureRecord)
class ErasureRecordAdmin(ReadOnlyAdmin):
    list_display = ["contact_id_erased", "events_deleted", "via", "requested_by", "erased_at"]
    list_filter = ["via", "workspace", "erased_at"]
    search_fields = ["=contact_id_erased"]

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ContactImport)
class ContactImportAdmin(admin.ModelAdmin):
    list_display = ["original_name", "workspace", "status", "processed_rows", "failed_count",
                    "created_by", "created_at"]  # fmt: skip
    list_filter = ["status", "workspace"]
    search_fields = ["original_name"]
    readonly_fields = ["errors", "total_rows", "processed_rows", "created_count", "updated_count",
                       "unchanged_count", "failed_count", "started_at", "finished_at"]  # fmt: skip
    fieldsets = [(None, {"fields": ["workspace", "original_name", "file", "status"]}),
                 (_("Mapping"), {"fields": ["mapping", "contact_list", "consent_channel",
                                            "consent_status", "consent_source"]}),
                 (_("Progress"), {"fields": readonly_fields})]  # fmt: skip
