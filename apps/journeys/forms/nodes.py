"""One form per node type.

Each form starts from a node of the JSON contract and answers the node again (`node`, once
valid), so the canvas's side panel and the steps editor edit exactly what the API takes.
Requiredness and the meaning of the values are the graph's own checks (graph.NODE_CHECKS),
so a problem reads the same on the canvas, in a form and from the API.
"""

import json
import re

from django import forms
from django.utils.translation import gettext_lazy as _

from apps.channels.choices import ChannelType
from apps.channels.models import Template
from apps.journeys.forms.fields import (
    ATTRIBUTES_DATALIST,
    DurationField,
    OptionalJSONField,
    Vocabulary,
    event_field,
    time_field,
)
from apps.journeys.graph import NODE_CHECKS, Problems, References
from apps.segments.forms import rule_field


class NodeForm(forms.Form):
    """A node's settings. `node` is the node as it stands (its id, type and any key this
    form does not edit, which is kept); once valid, `self.node` is the node as edited.
    `live` is the canvas's panel (it re-renders on every change, so a choice can narrow the
    next one); the steps editor shows everything at once, for use without JavaScript."""

    managed: tuple[str, ...] = ()  # the keys this form writes (the others are kept)
    problems_intro = _("This step needs:")

    def __init__(self, data=None, *, node: dict, vocabulary: Vocabulary, live=False, **kwargs):
        self.original = node
        self.vocabulary = vocabulary
        self.live = live
        kwargs.setdefault("initial", self.initial_from(node))
        super().__init__(data, **kwargs)
        self.node: dict | None = None
        self.setup()

    def setup(self) -> None:
        """Choices from the workspace, fields that depend on others."""

    def initial_from(self, node: dict) -> dict:
        return {key: node.get(key) for key in self.managed if key in node}

    def settings(self, data: dict) -> dict:
        """The managed keys from the cleaned data."""
        return {key: data.get(key) for key in self.managed}

    def hidden_errors(self) -> list[str]:
        """Errors of fields the marketer does not see (the rule the builder writes)."""
        return [f"{f.label}: {error}" for f in self.hidden_fields() for error in f.errors]

    def value(self, name: str):
        """A field's value as posted (bound) or its initial value."""
        if self.is_bound:
            return self[name].value()
        return self.initial.get(name)

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        kept = {k: v for k, v in self.original.items() if k not in self.managed}
        node = {**kept, **self.settings(data)}
        problems = graph_problems(node, self.vocabulary.references)
        for problem in problems:
            self.add_error(None, problem)
        if not problems:
            self.node = node
        return data


def graph_problems(node: dict, references: References) -> list[str]:
    """The graph's own problems with this node alone (not its edges)."""
    problems = Problems()
    check = NODE_CHECKS.get(node.get("type"))
    if check:
        check(str(node.get("id")), node, problems, references)
    return [message for messages in problems.by_node.values() for message in messages]


class SendForm(NodeForm):
    managed = ("channel", "channels", "template")
    channel = forms.ChoiceField(
        label=_("Send by"),
        choices=ChannelType.choices,
        help_text=_("The channel of the message."),
    )
    template = forms.ChoiceField(
        label=_("Template"),
        required=False,
        help_text=_("What the contact gets, personalised for them."),
    )
    fallback_channel = forms.ChoiceField(
        label=_("If the contact cannot get it that way, send by"),
        required=False,
        help_text=_(
            "Optional: a second channel for contacts without the first (no phone, no consent)."
        ),
    )
    fallback_template = forms.ChoiceField(
        label=_("Template for the second channel"), required=False
    )

    def initial_from(self, node):
        channels = node.get("channels") or ([node["channel"]] if node.get("channel") else [])
        template = node.get("template")
        templates = template if isinstance(template, dict) else dict.fromkeys(channels, template)
        initial = {"channel": channels[0] if channels else ChannelType.EMAIL}
        initial["template"] = templates.get(initial["channel"]) or ""
        if len(channels) > 1:
            initial["fallback_channel"] = channels[1]
            initial["fallback_template"] = templates.get(channels[1]) or ""
        return initial

    def setup(self):
        self.fields["fallback_channel"].choices = [
            ("", _("No second channel")),
            *ChannelType.choices,
        ]
        self.fields["template"].choices = self.template_choices(
            self.value("channel"), self.value("template")
        )
        self.fields["fallback_template"].choices = self.template_choices(
            self.value("fallback_channel"), self.value("fallback_template")
        )

    def template_choices(self, channel, current) -> list:
        """In the panel, the chosen channel's templates; in the steps editor (no script to
        narrow the list when the channel changes), all of them by channel."""
        choices: list = [("", _("Choose a template…"))]
        if self.live or not channel:
            templates = self.vocabulary.templates_of(channel) if channel else []
            choices += [(t.slug, f"{t.name} ({t.slug})") for t in templates]
        else:
            for value, label in ChannelType.choices:
                group = [
                    (t.slug, f"{t.name} ({t.slug})") for t in self.vocabulary.templates_of(value)
                ]
                if group:
                    choices.append((label, group))
        offered = {value for value, _label in _flat(choices)}
        if current and current not in offered:
            choices.append((current, _("%(slug)s (not found)") % {"slug": current}))
        return choices

    def settings(self, data):
        channel, template = data["channel"], data.get("template") or ""
        fallback = data.get("fallback_channel") or ""
        if fallback and fallback != channel:
            return {
                "channels": [channel, fallback],
                "template": {channel: template, fallback: data.get("fallback_template") or ""},
            }
        return {"channel": channel, "template": template}

    def chosen_templates(self) -> list[Template]:
        """The saved templates chosen, for their previews."""
        chosen = []
        for channel_field, template_field in (
            ("channel", "template"),
            ("fallback_channel", "fallback_template"),
        ):
            template = self.vocabulary.template(
                self.value(template_field) or "", self.value(channel_field) or ""
            )
            if template:
                chosen.append(template)
        return chosen


def _flat(choices):
    for value, label in choices:
        if isinstance(label, list | tuple):
            yield from label
        else:
            yield value, label


WAIT_MODES = [
    ("duration", _("For a set time")),
    ("until_time", _("Until a time of day (in the contact's time zone)")),
    ("until_event", _("Until the contact does something, for at most a set time")),
]


class WaitForm(NodeForm):
    managed = ("duration", "until_time", "until_event", "timeout", "where")
    mode = forms.ChoiceField(label=_("Wait"), choices=WAIT_MODES, widget=forms.RadioSelect)
    duration = DurationField(label=_("How long"), help_text=_("For example 3 days or 2 hours."))
    until_time = time_field(
        _("Until"), _("The next time the clock shows this, where the contact lives.")
    )
    until_event = event_field(
        _("Until the event"),
        _("The event the contact does (such as purchase); it takes the “event” path."),
    )
    timeout = DurationField(
        label=_("For at most"),
        help_text=_("Then the contact takes the “timeout” path."),
    )

    def initial_from(self, node):
        mode = next((key for key in ("until_event", "until_time") if node.get(key)), "duration")
        initial = {"mode": mode, "duration": node.get("duration") or ""}
        initial["until_time"] = node.get("until_time") or ""
        initial["until_event"] = node.get("until_event") or ""
        initial["timeout"] = node.get("timeout") or ""
        return initial

    def settings(self, data):
        mode = data["mode"]
        if mode == "until_time":
            time = data.get("until_time")
            return {"until_time": time.strftime("%H:%M") if time else ""}
        if mode == "until_event":
            settings = {"until_event": data.get("until_event") or "", "timeout": data["timeout"]}
            if self.original.get("until_event") and "where" in self.original:
                settings["where"] = self.original["where"]
            return settings
        return {"duration": data.get("duration") or ""}

    def mode_value(self) -> str:
        return self.value("mode") or "duration"


class ConditionForm(NodeForm):
    """In the panel the segment builder edits the rule (a hidden JSON field); in the steps
    editor, without JavaScript, a segment picker or the rule as JSON."""

    managed = ("rule",)
    segment = forms.ChoiceField(
        label=_("Yes when the contact is in the segment"),
        required=False,
        help_text=_("Or choose “Not a segment” and write the rule below."),
    )
    rule = OptionalJSONField(
        label=_("Rule (JSON, as the segment builder writes it)"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
        help_text=_('For example {"attr": "plan", "op": "eq", "value": "pro"}.'),
    )

    def setup(self):
        if self.live:
            self.fields["rule"] = rule_field()
            self.fields["rule"].required = False
            del self.fields["segment"]
        else:
            self.fields["segment"].choices = [
                ("", _("Not a segment: use the rule")),
                *[(slug, name) for slug, name, _rule in self.vocabulary.segments],
            ]

    def initial_from(self, node):
        rule = node.get("rule", {"all": []})
        if isinstance(rule, dict) and set(rule) == {"segment"}:
            return {"segment": rule["segment"], "rule": None}
        return {"rule": rule}

    def settings(self, data):
        if not self.live and data.get("segment"):
            return {"rule": {"segment": data["segment"]}}
        return {"rule": data.get("rule")}


SPLIT_ROWS_EXTRA = 1


class SplitForm(NodeForm):
    """Paths tried in order: a name and who takes it (a segment, or a rule as JSON)."""

    managed = ("branches",)

    def setup(self):
        branches = [b for b in self.original.get("branches") or [] if isinstance(b, dict)]
        rows = len(branches) + SPLIT_ROWS_EXTRA
        if self.is_bound:
            rows = max(rows, self._posted_rows())
        segments = [(slug, name) for slug, name, _rule in self.vocabulary.segments]
        segment_choices = [("", _("Not a segment: use the rule")), *segments]
        self.rows = []
        for index in range(rows):
            branch = branches[index] if index < len(branches) else {}
            rule = branch.get("rule")
            by_segment = isinstance(rule, dict) and set(rule) == {"segment"}
            name, segment, rule_text = f"name_{index}", f"segment_{index}", f"rule_{index}"
            self.fields[name] = forms.CharField(
                label=_("Path %(n)s name") % {"n": index + 1},
                required=False,
                max_length=60,
                initial=branch.get("name", ""),
            )
            self.fields[segment] = forms.ChoiceField(
                label=_("Contacts in the segment"),
                required=False,
                choices=segment_choices,
                initial=rule["segment"] if by_segment else "",
            )
            self.fields[rule_text] = OptionalJSONField(
                label=_("or matching the rule (JSON)"),
                required=False,
                initial=None if by_segment or rule is None else rule,
                widget=forms.Textarea(attrs={"rows": 2, "spellcheck": "false"}),
            )
            self.rows.append((self[name], self[segment], self[rule_text]))

    def _posted_rows(self) -> int:
        return min(_posted_rows(self), 50)

    def initial_from(self, node):
        return {}

    def settings(self, data):
        branches = []
        for index in range(len(self.rows)):
            name = (data.get(f"name_{index}") or "").strip()
            rule = data.get(f"rule_{index}")
            segment = data.get(f"segment_{index}")
            if not name and rule in (None, "", {}) and not segment:
                continue  # an empty row
            if segment:
                rule = {"segment": segment}
            branches.append({"name": name, "rule": rule})
        return {"branches": branches}


def _posted_rows(form: NodeForm) -> int:
    """How many path rows were posted (name_0, name_1, ...)."""
    pattern = re.compile(re.escape(form.add_prefix("name_")) + r"(\d+)")
    indexes = [int(m.group(1)) for key in form.data if (m := pattern.fullmatch(key))]
    return max(indexes, default=-1) + 1


class RandomSplitForm(NodeForm):
    """A/B paths with a share each."""

    managed = ("weights",)

    def setup(self):
        weights = self.original.get("weights")
        weights = list(weights.items()) if isinstance(weights, dict) else []
        rows = len(weights) + 1
        if self.is_bound:
            rows = max(rows, self._posted_rows())
        self.rows = []
        for index in range(rows):
            label, weight = weights[index] if index < len(weights) else ("", None)
            name, share = f"name_{index}", f"weight_{index}"
            self.fields[name] = forms.CharField(
                label=_("Path %(n)s name") % {"n": index + 1},
                required=False,
                max_length=30,
                initial=label,
            )
            self.fields[share] = forms.IntegerField(
                label=_("Path %(n)s share") % {"n": index + 1},
                required=False,
                min_value=0,
                max_value=10_000,
                initial=weight,
            )
            self.rows.append((self[name], self[share]))

    def _posted_rows(self) -> int:
        return min(_posted_rows(self), 26)

    def initial_from(self, node):
        return {}

    def settings(self, data):
        weights = {}
        for index in range(len(self.rows)):
            name = (data.get(f"name_{index}") or "").strip()
            weight = data.get(f"weight_{index}")
            if not name and weight in (None, ""):
                continue
            weights[name or chr(ord("a") + index)] = weight if weight is not None else 0
        return {"weights": weights}


VALUE_TYPES = [
    ("text", _("Text")),
    ("number", _("Number")),
    ("true", _("Yes (true)")),
    ("false", _("No (false)")),
    ("remove", _("Remove the attribute")),
]


class UpdateAttributeForm(NodeForm):
    managed = ("attribute", "value")
    attribute = forms.CharField(
        label=_("Attribute"),
        required=False,
        max_length=100,
        widget=forms.TextInput(attrs={"list": ATTRIBUTES_DATALIST, "autocomplete": "off"}),
        help_text=_("For example lifecycle_stage."),
    )
    value_type = forms.ChoiceField(label=_("Set it to"), choices=VALUE_TYPES)
    value = forms.CharField(
        label=_("Value"), required=False, max_length=1000, help_text=_("For text and numbers.")
    )

    def initial_from(self, node):
        value = node.get("value", "")
        if value is None:
            kind = "remove"
        elif isinstance(value, bool):
            kind = "true" if value else "false"
        elif isinstance(value, int | float):
            kind = "number"
        else:
            kind = "text"
        shown = "" if kind in ("remove", "true", "false") else value
        if not isinstance(shown, str):
            shown = json.dumps(shown) if not isinstance(shown, int | float) else str(shown)
        return {"attribute": node.get("attribute", ""), "value_type": kind, "value": shown}

    def clean_value(self):
        value = self.cleaned_data.get("value", "")
        if self.cleaned_data.get("value_type") == "number":
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise forms.ValidationError(_("Enter a number.")) from None
            return int(number) if number.is_integer() else number
        return value

    def settings(self, data):
        kind = data["value_type"]
        value = {"remove": None, "true": True, "false": False}.get(kind, data.get("value"))
        return {"attribute": (data.get("attribute") or "").strip(), "value": value}


class ListForm(NodeForm):
    managed = ("list",)
    list = forms.ChoiceField(label=_("List"), required=False)

    def setup(self):
        current = self.value("list")
        choices = [("", _("Choose a list…")), *self.vocabulary.lists]
        if current and current not in {slug for slug, _name in self.vocabulary.lists}:
            choices.append((current, _("%(slug)s (not found)") % {"slug": current}))
        self.fields["list"].choices = choices


class WebhookForm(NodeForm):
    managed = ("url",)
    url = forms.CharField(
        label=_("URL"),
        required=False,
        max_length=2000,
        widget=forms.URLInput(attrs={"placeholder": "https://"}),
        help_text=_("Orchestra posts the contact, the journey and the step there as JSON."),
    )


class GoalForm(NodeForm):
    managed = ("event",)
    event = event_field(
        _("Reached when the contact does"),
        _(
            "For example purchase. Contacts anywhere in the journey jump here when it happens, "
            "and count as converted."
        ),
    )


class ExitForm(NodeForm):
    managed = ()


NODE_FORMS: dict[str, type[NodeForm]] = {
    "send": SendForm,
    "wait": WaitForm,
    "condition": ConditionForm,
    "split": SplitForm,
    "random_split": RandomSplitForm,
    "update_attribute": UpdateAttributeForm,
    "add_to_list": ListForm,
    "remove_from_list": ListForm,
    "webhook": WebhookForm,
    "goal": GoalForm,
    "exit": ExitForm,
}


def node_form(node: dict, vocabulary: Vocabulary, data=None, **kwargs) -> NodeForm | None:
    form_class = NODE_FORMS.get(node.get("type"))
    if form_class is None:
        return None
    return form_class(data, node=node, vocabulary=vocabulary, **kwargs)
