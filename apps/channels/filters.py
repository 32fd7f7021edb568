"""One FilterSet for the messages log and the messages API, so filters work the same in both."""

import datetime as dt
import zoneinfo

import django_filters
from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.channels.choices import ChannelType, MessageStatus
from apps.channels.models import Channel, Message, Template


def workspace_channels(request):
    if request is None:
        return Channel.objects.none()
    return Channel.objects.for_workspace(request.workspace).only("id", "name").order_by("name")


def workspace_templates(request):
    if request is None:
        return Template.objects.none()
    templates = Template.objects.for_workspace(request.workspace)
    return templates.only("id", "slug", "name").order_by("name")


class MessageFilterSet(django_filters.FilterSet):
    channel = django_filters.ModelChoiceFilter(
        label=_("Channel"), queryset=workspace_channels, empty_label=_("Any channel")
    )
    channel_type = django_filters.ChoiceFilter(
        label=_("Channel type"), field_name="channel__type", choices=ChannelType.choices,
        empty_label=_("Any channel type"),
    )  # fmt: skip
    status = django_filters.ChoiceFilter(
        label=_("Status"), choices=MessageStatus.choices, empty_label=_("Any status")
    )
    template = django_filters.ModelChoiceFilter(
        label=_("Template"),
        field_name="template_version__template",
        to_field_name="slug",
        queryset=workspace_templates,
        empty_label=_("Any template"),
        help_text=_("Template slug"),
    )
    journey = django_filters.NumberFilter(
        label=_("Journey"), field_name="journey_id", help_text=_("Journey id"),
        widget=forms.NumberInput(attrs={"placeholder": _("Journey id"), "min": 1}),
    )  # fmt: skip
    contact = django_filters.NumberFilter(
        label=_("Contact"), field_name="contact_id", help_text=_("Contact id"),
        widget=forms.NumberInput(attrs={"placeholder": _("Contact id"), "min": 1}),
    )  # fmt: skip
    created_after = django_filters.DateFilter(
        label=_("From"), method="from_day", help_text=_("Queued on or after this day"),
        widget=forms.DateInput(attrs={"type": "date"}),
    )  # fmt: skip
    created_before = django_filters.DateFilter(
        label=_("Until"), method="until_day", help_text=_("Queued on or before this day"),
        widget=forms.DateInput(attrs={"type": "date"}),
    )  # fmt: skip

    class Meta:
        model = Message
        fields = ["channel", "channel_type", "status", "template", "journey", "contact"]

    def _day_start(self, day: dt.date) -> dt.datetime:
        """Midnight of the day in the workspace's time zone: days as the marketer sees them."""
        workspace = getattr(self.request, "workspace", None)
        try:
            zone = zoneinfo.ZoneInfo(workspace.timezone) if workspace else None
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            zone = None
        return dt.datetime.combine(day, dt.time.min, tzinfo=zone or timezone.get_current_timezone())

    def from_day(self, queryset, name, value):
        return queryset.filter(created_at__gte=self._day_start(value))

    def until_day(self, queryset, name, value):
        return queryset.filter(created_at__lt=self._day_start(value + dt.timedelta(days=1)))
