"""One FilterSet for the contacts list page and the API, so filters work the same in both."""

import contextlib

import django_filters
from django.db.models import Exists, OuterRef, Q
from django.utils.translation import gettext_lazy as _

from apps.contacts.choices import ConsentChannel, ConsentStatus
from apps.contacts.models import Consent, Contact, Event, ListMembership
from apps.segments.models import SegmentMembership


class ContactFilterSet(django_filters.FilterSet):
    q = django_filters.CharFilter(
        label=_("Search"), method="search", help_text=_("Start of an email, name or external id")
    )
    email = django_filters.CharFilter(label=_("Email"), method="exact_email")
    external_id = django_filters.CharFilter(label=_("External id"))
    list = django_filters.CharFilter(label=_("In list"), method="in_list", help_text=_("List slug"))
    segment = django_filters.CharFilter(
        label=_("In segment"), method="in_segment", help_text=_("Segment slug")
    )
    consent_channel = django_filters.ChoiceFilter(
        label=_("Consent channel"), choices=ConsentChannel.choices, method="noop"
    )
    consent_status = django_filters.ChoiceFilter(
        label=_("Consent status"), choices=ConsentStatus.choices, method="noop"
    )
    attribute = django_filters.CharFilter(
        label=_("Attribute"), method="noop", help_text=_("Attribute name, e.g. plan")
    )
    value = django_filters.CharFilter(label=_("equals"), method="noop")
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    updated_after = django_filters.IsoDateTimeFilter(field_name="updated_at", lookup_expr="gte")

    class Meta:
        model = Contact
        fields = ["external_id"]

    def noop(self, queryset, name, value):
        return queryset  # applied together in filter_queryset

    def search(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        if "@" in value:
            return queryset.filter(email__istartswith=value)
        return queryset.filter(
            Q(external_id=value)
            | Q(email__istartswith=value)
            | Q(first_name__istartswith=value)
            | Q(last_name__istartswith=value)
        )

    def exact_email(self, queryset, name, value):
        return queryset.filter(email=value.strip().lower())

    def in_list(self, queryset, name, value):
        members = ListMembership.objects.filter(contact_id=OuterRef("pk"), contact_list__slug=value)
        return queryset.filter(Exists(members))

    def in_segment(self, queryset, name, value):
        members = SegmentMembership.objects.filter(
            contact_id=OuterRef("pk"), segment__workspace_id=OuterRef("workspace_id"),
            segment__slug=value,
        )  # fmt: skip
        return queryset.filter(Exists(members))

    def filter_queryset(self, queryset):
        queryset = super().filter_queryset(queryset)
        data = self.form.cleaned_data
        channel, status = data.get("consent_channel"), data.get("consent_status")
        if channel and status:
            if status == ConsentStatus.UNKNOWN:
                known = Consent.objects.filter(contact_id=OuterRef("pk"), channel=channel).exclude(
                    status=ConsentStatus.UNKNOWN
                )
                queryset = queryset.exclude(Exists(known))
            else:
                given = Consent.objects.filter(
                    contact_id=OuterRef("pk"), channel=channel, status=status
                )
                queryset = queryset.filter(Exists(given))
        attribute = (data.get("attribute") or "").strip()
        if attribute:
            value = data.get("value")
            if value in (None, ""):
                queryset = queryset.filter(attributes__has_key=attribute)
            else:
                # A value typed in a box is text; it also matches the same number or boolean.
                candidates = [value]
                for convert in (int, float):
                    with contextlib.suppress(ValueError):
                        candidates.append(convert(value))
                if value.lower() in ("true", "false"):
                    candidates.append(value.lower() == "true")
                match = Q()
                for candidate in candidates:
                    match |= Q(attributes__contains={attribute: candidate})
                queryset = queryset.filter(match)
        return queryset


class EventFilterSet(django_filters.FilterSet):
    contact = django_filters.NumberFilter(field_name="contact_id", label=_("Contact id"))
    name = django_filters.CharFilter(label=_("Event name"))
    since = django_filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="gte")
    until = django_filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="lt")

    class Meta:
        model = Event
        fields = ["contact", "name"]
