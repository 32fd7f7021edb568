"""Slot and variant forms. Content is edited as its four usual parts; the rule and the
context match travel as JSON (the contract of DESIGN.md), checked by the services with
the segments' validator, so the form accepts exactly what the API would."""

from django import forms
from django.utils.translation import gettext_lazy as _

from apps.personalization.models import ContentSlot, Variant

CONTENT_FIELDS = ("html", "title", "image", "url")
EVERY_CONTACT = {"all": []}


class ContentFieldsMixin:
    """The content JSON as html, title, image and url fields (empty parts are left out)."""

    content_attribute = "content"

    def add_content_fields(self, content: dict) -> None:
        self.fields["html"] = forms.CharField(
            label=_("HTML"), required=False, widget=forms.Textarea(attrs={"rows": 3})
        )
        self.fields["title"] = forms.CharField(label=_("Title"), required=False)
        self.fields["image"] = forms.CharField(label=_("Image URL"), required=False)
        self.fields["url"] = forms.CharField(label=_("Link URL"), required=False)
        for name in ("html", "title", "image", "url"):
            self.initial.setdefault(name, (content or {}).get(name, ""))

    @property
    def content_fields(self):
        return [self[name] for name in CONTENT_FIELDS]

    @property
    def main_fields(self):
        return [f for f in self if f.name not in CONTENT_FIELDS and not f.is_hidden]

    def content(self) -> dict:
        data = self.cleaned_data
        return {name: data[name] for name in ("html", "title", "image", "url") if data.get(name)}


class ContentSlotForm(ContentFieldsMixin, forms.ModelForm):
    class Meta:
        model = ContentSlot
        fields = ["name", "key", "is_active"]

    def __init__(self, *args, workspace, **kwargs):
        super().__init__(*args, **kwargs)
        self.workspace = workspace
        self.add_content_fields(self.instance.default_content if self.instance.pk else {})

    def clean_key(self):
        key = self.cleaned_data["key"]
        taken = ContentSlot.objects.for_workspace(self.workspace).filter(key=key)
        if taken.exclude(pk=self.instance.pk).exists():
            raise forms.ValidationError(_("Another slot of this workspace has this key."))
        return key

    def save(self, commit=True):
        slot = super().save(commit=False)
        slot.workspace = self.workspace
        slot.default_content = self.content()
        return slot


class OptionalJSONField(forms.JSONField):
    """Empty (not "null") when there is nothing to show."""

    def prepare_value(self, value):
        if value in (None, {}, "null"):
            return ""
        return super().prepare_value(value)


def json_field(label, help_text) -> forms.JSONField:
    return OptionalJSONField(
        label=label,
        required=False,
        help_text=help_text,
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false", "class": "code"}),
    )


class VariantForm(ContentFieldsMixin, forms.ModelForm):
    # Edited with the segment builder (segment_builder.js), which keeps this field current.
    rule = forms.JSONField(label=_("Who sees it"), required=False, widget=forms.HiddenInput)
    context_match = json_field(
        _("Context match"),
        _('Globs on what the page sends, e.g. {"page": "/pricing*", "utm_campaign": "spring*"}. '
          "Empty: every page."),
    )  # fmt: skip

    class Meta:
        model = Variant
        fields = ["name", "priority", "is_active"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        instance = self.instance
        self.add_content_fields(instance.content if instance.pk else {})
        self.initial.setdefault("rule", instance.rule or EVERY_CONTACT)
        if instance.pk:
            self.initial.setdefault("context_match", instance.context_match or None)

    def save(self, commit=True):
        variant = super().save(commit=False)
        variant.content = self.content()
        rule = self.cleaned_data.get("rule")
        variant.rule = {} if rule in (None, EVERY_CONTACT) else rule
        variant.context_match = self.cleaned_data.get("context_match") or {}
        return variant


class PreviewForm(forms.Form):
    """Whom and which page the preview panel decides for."""

    contact = forms.CharField(
        label=_("Contact"), required=False, help_text=_("Email, external id or anonymous id.")
    )
    page = forms.CharField(label=_("Page"), required=False, initial="/")
    referrer = forms.CharField(label=_("Referrer"), required=False)
    utm_campaign = forms.CharField(label=_("UTM campaign"), required=False)
    language = forms.CharField(label=_("Language"), required=False)
