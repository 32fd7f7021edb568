from django.contrib import admin

from apps.personalization.models import ContentSlot, Variant


class VariantInline(admin.TabularInline):
    model = Variant
    extra = 0
    fields = ["name", "priority", "is_active", "content", "rule", "context_match"]


@admin.register(ContentSlot)
class ContentSlotAdmin(admin.ModelAdmin):
    list_display = ["name", "key", "workspace", "is_active", "updated_at"]
    list_filter = ["is_active", "workspace"]
    search_fields = ["name", "key"]
    readonly_fields = ["created_at", "updated_at"]
    inlines = [VariantInline]


@admin.register(Variant)
class VariantAdmin(admin.ModelAdmin):
    list_display = ["name", "slot", "priority", "is_active", "updated_at"]
    list_filter = ["is_active", "slot__workspace"]
    search_fields = ["name", "slot__name", "slot__key"]
    list_select_related = ["slot"]
    readonly_fields = ["created_at", "updated_at"]
