from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _

from apps.channels.choices import ChannelType
from apps.channels.models import (
    Channel,
    DeliveryPolicy,
    Message,
    MessageEvent,
    PushSubscription,
    Suppression,
    Template,
    TemplateVersion,
)
from apps.channels.services.rendering import template_problems
from apps.channels.services.templates import save_template


class ReadOnlyAdmin(admin.ModelAdmin):
    """History that must not be edited by hand."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    # `secrets` is never shown (it is not editable, so no form has it): only which are set.
    list_display = [
        "name",
        "type",
        "provider",
        "workspace",
        "is_default",
        "is_active",
        "secrets_held",
    ]
    list_filter = ["type", "provider", "is_active", "is_default", "workspace"]
    search_fields = ["name", "provider", "workspace__name"]
    list_select_related = ["workspace"]
    readonly_fields = ["secrets_held", "created_at"]

    @admin.display(description=_("secrets set"))
    def secrets_held(self, channel: Channel) -> str:
        # Names only (as services.channel_settings.secrets_set answers), never values.
        return ", ".join(sorted(k for k, v in (channel.secrets or {}).items() if v)) or "—"


class TemplateVersionInline(admin.TabularInline):
    model = TemplateVersion
    extra = 0
    fields = ["number", "subject", "created_at", "created_by"]
    readonly_fields = fields
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class TemplateAdminForm(forms.ModelForm):
    class Meta:
        model = Template
        fields = ["workspace", "name", "slug", "channel", *Template.CONTENT_FIELDS]

    def clean(self):
        data = super().clean()
        if data.get("channel") in ChannelType.values:
            content = {name: data.get(name) or "" for name in Template.CONTENT_FIELDS}
            for name, found in template_problems(data["channel"], content).items():
                self.add_error(name, found)
        return data


@admin.register(Template)
class TemplateAdmin(admin.ModelAdmin):
    form = TemplateAdminForm
    list_display = ["name", "slug", "channel", "version", "workspace", "updated_at"]
    list_filter = ["channel", "workspace", "updated_at"]
    search_fields = ["name", "slug", "subject"]
    list_select_related = ["workspace"]
    readonly_fields = ["version", "created_at", "updated_at"]
    inlines = [TemplateVersionInline]

    def save_model(self, request, obj, form, change):
        """Through save_template, as everywhere: changed content becomes a new version."""
        saved = Template.objects.get(pk=obj.pk) if change else Template(workspace=obj.workspace)
        fields = ("name", "slug", "channel", *Template.CONTENT_FIELDS)
        data = {name: form.cleaned_data[name] for name in fields}
        problems = save_template(saved, data, request.user)
        if problems:  # form.clean checked the same; only a race gets here
            raise ValidationError(problems)
        obj.pk, obj.version, obj.slug = saved.pk, saved.version, saved.slug
        obj.created_at, obj.updated_at = saved.created_at, saved.updated_at
        obj._state.adding = False


@admin.register(TemplateVersion)
class TemplateVersionAdmin(ReadOnlyAdmin):
    list_display = ["template", "number", "created_at", "created_by"]
    list_filter = ["template__channel", "template__workspace", "created_at"]
    search_fields = ["template__name", "template__slug", "subject"]
    list_select_related = ["template", "created_by"]


class MessageEventInline(admin.TabularInline):
    model = MessageEvent
    extra = 0
    fields = ["kind", "detail", "at"]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Message)
class MessageAdmin(ReadOnlyAdmin):
    list_display = [
        "__str__",
        "recipient",
        "status",
        "channel",
        "template_version",
        "created_at",
        "sent_at",
    ]
    list_filter = ["status", "channel__type", "workspace", "created_at"]
    search_fields = [
        "recipient",
        "=provider_message_id",
        "=idempotency_key",
        "contact__email",
        "=contact__external_id",
    ]
    list_select_related = ["channel", "template_version__template", "contact"]
    raw_id_fields = ["contact", "template_version", "channel"]
    inlines = [MessageEventInline]
    date_hierarchy = "created_at"
    show_full_result_count = False  # no COUNT(*) over millions of messages


@admin.register(MessageEvent)
class MessageEventAdmin(ReadOnlyAdmin):
    list_display = ["message", "kind", "detail", "at"]
    list_filter = ["kind", "at"]
    search_fields = ["=message__id", "message__recipient", "detail"]
    raw_id_fields = ["message"]
    show_full_result_count = False


@admin.register(Suppression)
class SuppressionAdmin(admin.ModelAdmin):
    list_display = ["address", "channel_type", "reason", "workspace", "created_at"]
    list_filter = ["channel_type", "reason", "workspace"]
    search_fields = ["address"]
    list_select_related = ["workspace"]
    raw_id_fields = ["message"]


@admin.register(DeliveryPolicy)
class DeliveryPolicyAdmin(admin.ModelAdmin):
    list_display = [
        "workspace",
        "max_per_day",
        "max_per_week",
        "over_limit",
        "quiet_hours_start",
        "quiet_hours_end",
        "require_opt_in",
    ]
    list_filter = ["over_limit", "require_opt_in"]
    search_fields = ["workspace__name", "workspace__slug"]
    list_select_related = ["workspace"]


@admin.register(PushSubscription)
class PushSubscriptionAdmin(admin.ModelAdmin):
    list_display = ["endpoint", "contact", "workspace", "user_agent", "created_at"]
    list_filter = ["workspace", "created_at"]
    search_fields = ["endpoint", "contact__email", "=contact__external_id", "user_agent"]
    list_select_related = ["contact", "workspace"]
    raw_id_fields = ["contact"]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
