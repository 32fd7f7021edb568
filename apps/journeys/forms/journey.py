"""The journey's own settings (name, entry, re-entry, exit, holdout, priority), the list's
filter and the test panel's contact search."""

import django_filters
from django import forms
from django.utils.translation import gettext_lazy as _

from apps.journeys.choices import JourneyStatus
from apps.journeys.forms.fields import ATTRIBUTES_DATALIST, Vocabulary, event_field, time_field
from apps.journeys.graph import References, validate_graph
from apps.journeys.models import Journey


class JourneyFilterSet(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(
        label=_("Status"), choices=JourneyStatus.choices, empty_label=_("All statuses")
    )

    class Meta:
        model = Journey
        fields = ["status"]


ENTRY_TYPES = [
    ("event", _("When the contact does an event")),
    ("segment_entered", _("When the contact enters a segment")),
    ("date_attribute", _("On a date of the contact (a birthday, a renewal date)")),
    ("api", _("When another system enrolls the contact through the API")),
]
REENTRY = [
    ("never", _("Never: each contact goes through once")),
    ("always", _("Whenever the entry happens again, once the last time is over")),
    ("after", _("Again after a number of days")),
]
SETTINGS_KEYS = ("name", "entry", "reentry", "exit_when", "holdout_percent", "priority")


class JourneySettingsForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=150, required=False)
    entry_type = forms.ChoiceField(
        label=_("Contacts enter"), choices=ENTRY_TYPES, widget=forms.RadioSelect
    )
    entry_event = event_field(_("Event"), _("For example signed_up or cart_updated."))
    entry_key = forms.CharField(
        label=_("Follow each value of this event property on its own"),
        required=False,
        max_length=100,
        help_text=_(
            "Optional: such as cart_id, so that a contact with two carts is reminded of each."
        ),
    )
    segment = forms.ChoiceField(label=_("Segment"), required=False)
    date_attribute = forms.CharField(
        label=_("Date attribute"),
        required=False,
        max_length=100,
        widget=forms.TextInput(attrs={"list": ATTRIBUTES_DATALIST, "autocomplete": "off"}),
        help_text=_("An attribute holding a date, such as birthday or renewal_date."),
    )
    offset_days = forms.IntegerField(
        label=_("Days before (-) or after (+) the date"),
        required=False,
        min_value=-365,
        max_value=365,
        help_text=_("For example -7 for a week before."),
    )
    at = time_field(_("At"), _("In the contact's time zone."))
    yearly = forms.BooleanField(
        label=_("Every year (only the day and month count, as for birthdays)"), required=False
    )
    reentry = forms.ChoiceField(
        label=_("Can a contact enter again?"), choices=REENTRY, widget=forms.RadioSelect
    )
    reentry_days = forms.IntegerField(
        label=_("Days until a contact can enter again"), required=False, min_value=1
    )
    exit_event = event_field(
        _("Leave the journey when the contact does"),
        _("Optional: for example unsubscribed. Whoever does it leaves at once."),
    )
    holdout_percent = forms.IntegerField(
        label=_("Holdout group (%)"),
        min_value=0,
        max_value=99,
        initial=0,
        help_text=_(
            "A share of contacts who enter but get no messages, to measure the journey's effect."
        ),
    )
    priority = forms.IntegerField(
        label=_("Priority"),
        initial=0,
        min_value=-100,
        max_value=100,
        help_text=_(
            "When the contact limit lets only one of several messages through, the "
            "journey with the higher priority sends."
        ),
    )

    def __init__(self, data=None, *, settings: dict, vocabulary: Vocabulary, live=False, **kwargs):
        self.original = settings
        self.vocabulary = vocabulary
        self.live = live
        kwargs.setdefault("initial", self.initial_from(settings))
        super().__init__(data, **kwargs)
        self.settings: dict | None = None
        current = self["segment"].value() if self.is_bound else self.initial.get("segment")
        choices = [
            ("", _("Choose a segment…")),
            *[(slug, name) for slug, name, _rule in vocabulary.segments],
        ]
        if current and current not in {slug for slug, _name, _rule in vocabulary.segments}:
            choices.append((current, _("%(slug)s (not found)") % {"slug": current}))
        self.fields["segment"].choices = choices

    @staticmethod
    def initial_from(settings: dict) -> dict:
        entry = settings.get("entry") if isinstance(settings.get("entry"), dict) else {}
        reentry = settings.get("reentry", "never")
        days = reentry.get("after_days") if isinstance(reentry, dict) else None
        return {
            "name": settings.get("name", ""),
            "entry_type": entry.get("type", "event"),
            "entry_event": entry.get("event", ""),
            "entry_key": entry.get("key", ""),
            "segment": entry.get("segment", ""),
            "date_attribute": entry.get("attribute", ""),
            "offset_days": entry.get("offset_days", 0),
            "at": entry.get("at", "09:00"),
            "yearly": bool(entry.get("yearly")),
            "reentry": "after" if days else reentry if reentry in ("never", "always") else "never",
            "reentry_days": days,
            "exit_event": (settings.get("exit_when") or {}).get("event", "")
            if isinstance(settings.get("exit_when"), dict)
            else "",
            "holdout_percent": settings.get("holdout_percent", 0),
            "priority": settings.get("priority", 0),
        }

    def entry_type_value(self) -> str:
        return (self["entry_type"].value() if self.is_bound else self.initial["entry_type"]) or ""

    def reentry_value(self) -> str:
        return (self["reentry"].value() if self.is_bound else self.initial["reentry"]) or ""

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        settings = self.build(data)
        problems = settings_problems(settings, self.vocabulary.references)
        for problem in problems:
            self.add_error(None, problem)
        if not problems:
            self.settings = settings
        return data

    def build(self, data: dict) -> dict:
        kind = data["entry_type"]
        original_entry = (
            self.original.get("entry") if isinstance(self.original.get("entry"), dict) else {}
        )
        entry: dict = {"type": kind}
        if kind == "event":
            entry["event"] = (data.get("entry_event") or "").strip()
            if (data.get("entry_key") or "").strip():
                entry["key"] = data["entry_key"].strip()
            if original_entry.get("type") == "event" and "where" in original_entry:
                entry["where"] = original_entry["where"]
        elif kind == "segment_entered":
            entry["segment"] = data.get("segment") or ""
        elif kind == "date_attribute":
            entry["attribute"] = (data.get("date_attribute") or "").strip()
            entry["offset_days"] = data.get("offset_days") or 0
            at = data.get("at")
            entry["at"] = at.strftime("%H:%M") if at else "09:00"
            if data.get("yearly"):
                entry["yearly"] = True
        reentry = data["reentry"]
        if reentry == "after":
            reentry = {"after_days": data.get("reentry_days") or 0}
        settings = {
            "name": (data.get("name") or "").strip(),
            "entry": entry,
            "reentry": reentry,
            "holdout_percent": data.get("holdout_percent") or 0,
            "priority": data.get("priority") or 0,
        }
        if (data.get("exit_event") or "").strip():
            settings["exit_when"] = {"event": data["exit_event"].strip()}
        return settings


def settings_problems(settings: dict, references: References) -> list[str]:
    """The graph's own problems with the journey's settings (its nodes aside)."""
    probe = {**settings, "start": "probe", "nodes": [{"id": "probe", "type": "exit"}]}
    return validate_graph(probe, references).by_node.get("", [])


def settings_of(graph: dict) -> dict:
    return {key: graph[key] for key in SETTINGS_KEYS if key in graph}


class ContactSearchForm(forms.Form):
    q = forms.CharField(
        label=_("Find a contact"),
        required=False,
        max_length=200,
        help_text=_("Start of an email, a name or an external id."),
        widget=forms.TextInput(attrs={"type": "search", "autocomplete": "off"}),
    )
