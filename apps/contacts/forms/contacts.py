"""Forms of the contact list, the lists page and the contact page.

Values are checked by the services (profiles, normalize) so the UI, the API and
imports accept and refuse the same things; these forms only collect them.
"""

import datetime as dt
import json
import re

from django import forms
from django.utils.translation import gettext_lazy as _

from apps.accounts.models import TIMEZONE_CHOICES, Workspace
from apps.contacts.choices import AttributeType, ConsentChannel, ConsentStatus
from apps.contacts.models import Contact, ContactList
from apps.contacts.normalize import InvalidValue, coerce_attribute
from apps.contacts.services.profiles import PROFILE_FIELDS

ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def workspace_lists(workspace: Workspace):
    return ContactList.objects.for_workspace(workspace).order_by("name")


def prepare_contact_filter_form(form: forms.Form, contact_lists) -> forms.Form:
    """Dress ContactFilterSet's form for the filter bar: lists by name, clear empty choices."""
    form.fields["q"].widget = forms.TextInput(
        attrs={
            "type": "search",
            "placeholder": _("Search email, name or external id"),
            "aria-label": _("Search"),
        }
    )
    form.fields["list"].widget = forms.Select(
        choices=[("", _("Any list")), *((cl.slug, cl.name) for cl in contact_lists)],
    )
    # django-filter's choice fields put their empty_label before the choices as these
    # are set, so the label is changed first and the choices set again.
    for name, empty_label, choices in (
        ("consent_channel", _("Any channel"), ConsentChannel.choices),
        ("consent_status", _("Any consent"), ConsentStatus.choices),
    ):
        form.fields[name].empty_label = empty_label
        form.fields[name].choices = choices
    form.fields["attribute"].widget = forms.TextInput(attrs={"placeholder": _("Attribute")})
    form.fields["value"].widget = forms.TextInput(attrs={"placeholder": _("Value")})
    for name in ("list", "consent_channel", "consent_status", "attribute", "value"):
        form.fields[name].widget.attrs["aria-label"] = form.fields[name].label
    return form


class ContactIdsField(forms.Field):
    """The ids of the ticked rows (several `contact` values)."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value) -> list[int]:
        try:
            return sorted({int(item) for item in value or []})
        except (TypeError, ValueError):
            raise forms.ValidationError(_("Unknown contacts.")) from None


class WorkspaceListChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: ContactList) -> str:
        return obj.name


class BulkAddToListForm(forms.Form):
    contact_list = WorkspaceListChoiceField(
        label=_("List"), queryset=ContactList.objects.none(), empty_label=_("Choose a list")
    )
    contact = ContactIdsField(
        label=_("Contacts"),
        error_messages={"required": _("Tick the contacts to add first.")},
    )

    def __init__(self, workspace: Workspace, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["contact_list"].queryset = workspace_lists(workspace)


class ListMembershipForm(forms.Form):
    ADD, REMOVE = "add", "remove"

    contact_list = WorkspaceListChoiceField(
        label=_("List"), queryset=ContactList.objects.none(), empty_label=_("Choose a list")
    )
    action = forms.ChoiceField(choices=[(ADD, _("Add")), (REMOVE, _("Remove"))])

    def __init__(self, workspace: Workspace, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["contact_list"].queryset = workspace_lists(workspace)


def refers_to_another_workspace(form: forms.Form, field: str = "contact_list") -> bool:
    """A list id that is not one of ours: answered with 404, like any foreign row."""
    return bool(form.data.get(field)) and form.has_error(field, "invalid_choice")


class ContactListForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=100)
    description = forms.CharField(
        label=_("Description"), required=False, widget=forms.Textarea(attrs={"rows": 2})
    )


class ConsentForm(forms.Form):
    channel = forms.ChoiceField(label=_("Channel"), choices=ConsentChannel.choices)
    status = forms.ChoiceField(label=_("Status"), choices=ConsentStatus.choices)


class ContactProfileForm(forms.Form):
    """The built-in fields; each is normalised by profiles.update_contact, which names errors."""

    first_name = forms.CharField(label=_("First name"), required=False)
    last_name = forms.CharField(label=_("Last name"), required=False)
    email = forms.CharField(label=_("Email"), required=False, widget=forms.EmailInput)
    phone = forms.CharField(
        label=_("Phone"),
        required=False,
        help_text=_("International form, e.g. +4520123456"),
        widget=forms.TextInput(attrs={"type": "tel"}),
    )
    external_id = forms.CharField(label=_("External id"), required=False)
    timezone = forms.ChoiceField(
        label=_("Time zone"), required=False, choices=[("", _("Not set")), *TIMEZONE_CHOICES]
    )
    locale = forms.CharField(label=_("Locale"), required=False, help_text=_("e.g. da-DK"))

    @classmethod
    def for_contact(cls, contact: Contact, data=None) -> "ContactProfileForm":
        initial = {name: getattr(contact, name) or "" for name in PROFILE_FIELDS}
        return cls(data, initial=initial)


def attribute_type_of(value) -> str | None:
    """The type a stored value is edited as; None for values a text box cannot hold."""
    if isinstance(value, bool):
        return AttributeType.BOOLEAN
    if isinstance(value, int | float):
        return AttributeType.NUMBER
    if isinstance(value, str):
        if ISO_DATE.fullmatch(value):
            try:
                dt.date.fromisoformat(value)
            except ValueError:
                return AttributeType.STRING
            return AttributeType.DATE
        return AttributeType.STRING
    return None


def attribute_text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def attribute_rows(contact: Contact) -> list[tuple[str, str, str]]:
    """(name, value as text, type label) of each attribute, for the contact page."""
    rows = []
    for key, value in sorted(contact.attributes.items()):
        kind = attribute_type_of(value)
        if kind is None:
            rows.append((key, json.dumps(value, ensure_ascii=False), _("JSON")))
        else:
            rows.append((key, attribute_text(value), AttributeType(kind).label))
    return rows


class AttributeForm(forms.Form):
    key = forms.CharField(
        label=_("Name"),
        max_length=100,
        required=False,
        widget=forms.TextInput(attrs={"placeholder": _("New attribute")}),
    )
    value = forms.CharField(label=_("Value"), required=False)
    type = forms.ChoiceField(
        label=_("Type"), choices=AttributeType.choices, initial=AttributeType.STRING
    )

    def clean(self):
        data = super().clean()
        key, text = data.get("key", ""), data.get("value", "")
        if not key:
            if text:
                self.add_error("key", _("Give the attribute a name."))
            return data
        try:
            data["typed_value"] = coerce_attribute(text, data.get("type", AttributeType.STRING))
        except InvalidValue as exc:
            self.add_error("value", str(exc))
        return data


class BaseAttributeFormSet(forms.BaseFormSet):
    def clean(self):
        if any(self.errors):
            return
        seen = set()
        for form in self.forms:
            key = form.cleaned_data.get("key")
            if not key or self._should_delete_form(form):
                continue
            if key in seen:
                raise forms.ValidationError(
                    _("The attribute %(key)s is named twice.") % {"key": key}
                )
            seen.add(key)

    def attributes(self, original: dict) -> dict:
        """What to send to update_contact: new values, and None for each removed attribute.

        Attributes that cannot be edited as text (objects, lists) are left alone.
        """
        values: dict = {}
        for form in self.forms:
            key = form.cleaned_data.get("key")
            if key and not self._should_delete_form(form):
                values[key] = form.cleaned_data.get("typed_value")
        for key, value in original.items():
            if key not in values and attribute_type_of(value) is not None:
                values[key] = None
        return values


AttributeFormSet = forms.formset_factory(
    AttributeForm, formset=BaseAttributeFormSet, extra=3, can_delete=True
)


def attribute_formset(contact: Contact, data=None) -> BaseAttributeFormSet:
    initial = [
        {"key": key, "value": attribute_text(value), "type": attribute_type_of(value)}
        for key, value in sorted(contact.attributes.items())
        if attribute_type_of(value) is not None
    ]
    return AttributeFormSet(data, initial=initial, prefix="attributes")


def fixed_attributes(contact: Contact) -> dict:
    """The attributes the edit form shows but cannot change (objects, lists, nulls)."""
    return {k: v for k, v in sorted(contact.attributes.items()) if attribute_type_of(v) is None}


class EraseContactForm(forms.Form):
    confirm = forms.CharField(label=_("Type the contact's email or id to confirm"))

    def __init__(self, contact: Contact, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.contact = contact

    def clean_confirm(self) -> str:
        typed = self.cleaned_data["confirm"].strip()
        accepted = {str(self.contact.pk), f"#{self.contact.pk}"}
        if self.contact.email:
            accepted.add(self.contact.email.lower())
        if self.contact.external_id:
            accepted.add(self.contact.external_id)
        if typed not in accepted and typed.lower() not in accepted:
            raise forms.ValidationError(_("That is not this contact's email or id."))
        return typed
