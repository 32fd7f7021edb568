"""What the builder's forms are made of: the workspace's vocabulary (templates, segments,
lists, event and attribute names, read once per page), durations as a number and a unit
(stored as ISO 8601), times of day and event names."""

from functools import cached_property

from django import forms
from django.utils.translation import gettext_lazy as _

from apps.channels.models import Template
from apps.contacts.models import ContactList
from apps.journeys.graph import References
from apps.journeys.services.builder import DURATION_UNITS, iso_duration, split_duration
from apps.segments import services as segment_services
from apps.segments.models import Segment

EVENTS_DATALIST = "journey-known-events"
ATTRIBUTES_DATALIST = "journey-known-attributes"


class Vocabulary:
    """What the forms offer from the workspace (templates, segments, lists, the event and
    attribute names seen), each read once however many forms a page shows."""

    def __init__(self, workspace):
        self.workspace = workspace

    @cached_property
    def templates(self) -> list[Template]:
        return list(
            Template.objects.for_workspace(self.workspace)
            .only("pk", "slug", "name", "channel")
            .order_by("name", "slug")
        )

    def templates_of(self, channel: str) -> list[Template]:
        return [template for template in self.templates if template.channel == channel]

    def template(self, slug: str, channel: str) -> Template | None:
        return next((t for t in self.templates if t.slug == slug and t.channel == channel), None)

    @cached_property
    def segments(self) -> list[tuple[str, str, dict]]:
        return list(
            Segment.objects.for_workspace(self.workspace)
            .order_by("name")
            .values_list("slug", "name", "rule")
        )

    @cached_property
    def lists(self) -> list[tuple[str, str]]:
        return list(
            ContactList.objects.for_workspace(self.workspace)
            .order_by("name")
            .values_list("slug", "name")
        )

    @cached_property
    def events(self) -> list[str]:
        return segment_services.known_event_names(self.workspace)

    @cached_property
    def attributes(self) -> list[str]:
        return [attribute.name for attribute in segment_services.known_attributes(self.workspace)]

    @cached_property
    def references(self) -> References:
        templates = {(t.slug, t.channel) for t in self.templates}
        rules = {slug: rule for slug, _name, rule in self.segments}
        lists = {slug for slug, _name in self.lists}
        return References(
            template=lambda slug, channel: (slug, channel) in templates,
            segment=rules.__contains__,
            list=lists.__contains__,
            segment_rule=rules.get,
        )


class DurationWidget(forms.MultiWidget):
    template_name = "journeys/widgets/duration.html"

    def __init__(self, attrs=None):
        widgets = [
            forms.NumberInput(attrs={"min": 1, "step": 1, "class": "duration-number"}),
            forms.Select(choices=DURATION_UNITS, attrs={"class": "duration-unit"}),
        ]
        super().__init__(widgets, attrs)

    def id_for_label(self, id_):
        # The label names the number; the unit has its own aria-label.
        return f"{id_}_0" if id_ else ""

    def decompress(self, value):
        if not value:
            return [None, "days"]
        return list(split_duration(value))


class DurationField(forms.MultiValueField):
    """A number and a unit, cleaned to ISO 8601 ("" when no number is given)."""

    widget = DurationWidget

    def __init__(self, **kwargs):
        fields = [
            forms.IntegerField(
                required=False,
                min_value=1,
                max_value=10_000,
                error_messages={"invalid": _("Enter a whole number.")},
            ),
            forms.ChoiceField(choices=DURATION_UNITS, required=False),
        ]
        kwargs.setdefault("required", False)
        super().__init__(fields, require_all_fields=False, **kwargs)

    def compress(self, data_list):
        if not data_list or data_list[0] in (None, ""):
            return ""
        number, unit = data_list
        return iso_duration(number, unit or "days")


class OptionalJSONField(forms.JSONField):
    """JSON typed in a text box, left empty (not "null") when there is none."""

    def prepare_value(self, value):
        return "" if value is None else super().prepare_value(value)


def time_field(label, help_text=""):
    return forms.TimeField(
        label=label,
        required=False,
        help_text=help_text,
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        input_formats=["%H:%M", "%H:%M:%S"],
    )


def event_field(label, help_text="", required=False):
    return forms.CharField(
        label=label,
        required=required,
        max_length=200,
        help_text=help_text,
        widget=forms.TextInput(attrs={"list": EVENTS_DATALIST, "autocomplete": "off"}),
    )
