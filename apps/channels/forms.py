"""Forms of the template editor and of the channel settings, and the templates FilterSet the
list page and the API share."""

import django_filters
from django import forms
from django.utils.translation import gettext_lazy as _

from apps.channels.choices import ChannelType
from apps.channels.models import Channel, DeliveryPolicy, Template
from apps.channels.providers import Provider
from apps.channels.services.channel_settings import secrets_set

# Which content fields each channel type uses (the editor shows only those).
FIELD_CHANNELS = {
    "subject": [ChannelType.EMAIL, ChannelType.PUSH],
    "preheader": [ChannelType.EMAIL],
    "html": [ChannelType.EMAIL],
    "text": [ChannelType.EMAIL],
    "body": [ChannelType.SMS, ChannelType.PUSH, ChannelType.WEBHOOK],
}


class TemplateFilterSet(django_filters.FilterSet):
    channel = django_filters.ChoiceFilter(
        label=_("Channel"), choices=ChannelType.choices, empty_label=_("All channels")
    )
    slug = django_filters.CharFilter(label=_("Slug"))

    class Meta:
        model = Template
        fields = ["channel", "slug"]


class TemplateForm(forms.Form):
    """What the editor posts. Every check (a name, the slug free, the Liquid of each field)
    is services.templates.save_template's, so the page and the API say the same."""

    name = forms.CharField(label=_("Name"), max_length=150, required=False)
    slug = forms.CharField(
        label=_("Slug"),
        max_length=100,
        required=False,
        help_text=_("Journeys and the API refer to the template by it. Empty: made from the name."),
    )
    channel = forms.ChoiceField(label=_("Channel"), choices=ChannelType.choices)
    subject = forms.CharField(
        label=_("Subject"),
        max_length=300,
        required=False,
        help_text=_("For web push, the notification's title."),
    )
    preheader = forms.CharField(
        label=_("Preheader"),
        max_length=300,
        required=False,
        help_text=_("The line inboxes show after the subject."),
    )
    html = forms.CharField(
        label=_("HTML"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 16, "spellcheck": "false", "class": "code"}),
        help_text=_("HTML or MJML, with Liquid."),
    )
    text = forms.CharField(
        label=_("Text"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 6, "class": "code"}),
        help_text=_("Optional: left empty, it is made from the HTML."),
    )
    body = forms.CharField(
        label=_("Body"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 8, "class": "code"}),
        help_text=_("The message itself (for a webhook, the payload it posts)."),
    )

    def add_problems(self, problems: dict[str, list[str]]) -> None:
        for name, messages in problems.items():
            self.add_error(name if name in self.fields else None, messages)


class TestSendForm(forms.Form):
    __test__ = False  # not a pytest test class

    recipient = forms.CharField(
        label=_("Send a test to"),
        max_length=254,
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )


# Channel settings -----------------------------------------------------------------------


class ChannelForm(forms.ModelForm):
    """The channel's own fields; the provider's settings are a second form beside it."""

    class Meta:
        model = Channel
        fields = ["name", "rate_per_second", "is_default", "is_active"]


def provider_settings_form(
    provider: type[Provider] | None, channel: Channel, data=None
) -> forms.Form:
    """The provider's own form (prefix `settings`) for the channel. Secret fields never show
    a value: they are password inputs that do not render what was typed, and on a saved
    channel empty means "keep the one held"."""
    form_class = provider.form_class if provider is not None else forms.Form
    form = form_class(data, prefix="settings", initial=dict(channel.config or {}))
    held = set(secrets_set(channel)) if channel.pk else set()
    for name in provider.secret_fields if provider is not None else ():
        field = form.fields.get(name)
        if field is None:
            continue
        field.widget = forms.PasswordInput(
            render_value=False, attrs={"autocomplete": "new-password"}
        )
        field.initial = None
        field.is_secret = True
        field.is_set = name in held
        if channel.pk:
            field.required = False
            field.help_text = _("Set. Leave empty to keep it.") if name in held else _("Not set.")
        form.initial.pop(name, None)
    return form


def secret_values(provider: type[Provider] | None, form: forms.Form) -> tuple[dict, dict]:
    """(settings, secrets) from a valid provider form."""
    secret_fields = provider.secret_fields if provider is not None else ()
    settings = {k: v for k, v in form.cleaned_data.items() if k not in secret_fields}
    secrets = {k: v for k, v in form.cleaned_data.items() if k in secret_fields}
    return settings, secrets


class DeliveryPolicyForm(forms.ModelForm):
    class Meta:
        model = DeliveryPolicy
        fields = [
            "max_per_day",
            "max_per_week",
            "over_limit",
            "quiet_hours_start",
            "quiet_hours_end",
            "require_opt_in",
        ]
        widgets = {
            "quiet_hours_start": forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
            "quiet_hours_end": forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        }

    def clean(self):
        data = super().clean()
        start, end = data.get("quiet_hours_start"), data.get("quiet_hours_end")
        if (start is None) != (end is None):
            self.add_error(None, _("Give quiet hours both a start and an end, or neither."))
        if start is not None and start == end:
            self.add_error("quiet_hours_end", _("Quiet hours must end at another time."))
        day, week = data.get("max_per_day"), data.get("max_per_week")
        if day is not None and week is not None and week < day:
            self.add_error("max_per_week", _("A week allows at least as many as a day."))
        return data
