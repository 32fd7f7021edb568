import json
from dataclasses import dataclass

from django import forms
from django.forms import BoundField
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from apps.contacts.choices import AttributeType, ConsentChannel, ConsentStatus
from apps.contacts.models import ContactImport, ContactList
from apps.contacts.normalize import InvalidValue
from apps.contacts.services import imports
from apps.contacts.services.imports import ATTRIBUTE, Preview

TARGET_CHOICES = [
    ("", _("Skip this column")),
    (
        _("Contact field"),
        [
            ("external_id", _("External id")),
            ("email", _("Email")),
            ("phone", _("Phone")),
            ("first_name", _("First name")),
            ("last_name", _("Last name")),
            ("timezone", _("Time zone")),
            ("locale", _("Locale")),
        ],
    ),
    (ATTRIBUTE, _("Attribute…")),
]


class ContactImportUploadForm(forms.Form):
    file = forms.FileField(
        label=_("CSV file"),
        help_text=_(
            "Separated by commas, semicolons or tabs, with a header line naming the columns. "
            "UTF-8 or Windows encoding."
        ),
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,.txt,.tsv,text/csv"}),
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        try:
            self.csv_format = imports.inspect_csv(upload)
        except InvalidValue as exc:
            raise forms.ValidationError(str(exc)) from None
        return upload


@dataclass
class ColumnMapping:
    """One column of the file as the mapping table shows it."""

    index: int
    header: str
    samples: list[str]
    target: BoundField
    attribute: BoundField
    type: BoundField

    @property
    def is_attribute(self) -> bool:
        return self.target.value() == ATTRIBUTE


class ContactImportMappingForm(forms.Form):
    """Which column becomes which field or attribute, the list, and the consent to record.

    Each column has three fields: `column_N` (skip, a field, or "attribute"), and
    `column_N_attribute` and `column_N_type`, shown only while the column is an
    attribute. A change of `column_N` asks the server for the column's row again.
    """

    contact_list = forms.ModelChoiceField(
        label=_("Add the contacts to a list"),
        queryset=ContactList.objects.none(),
        required=False,
        empty_label=_("No list"),
    )
    new_list_name = forms.CharField(
        label=_("or to a new list named"), max_length=100, required=False
    )
    consent_channel = forms.ChoiceField(
        label=_("Record consent on"),
        choices=[("", _("No channel (leave consent as it is)")), *ConsentChannel.choices],
        required=False,
    )
    consent_status = forms.ChoiceField(
        label=_("Consent"), choices=[("", "—"), *ConsentStatus.choices], required=False
    )
    consent_source = forms.CharField(
        label=_("Source of the consent"),
        max_length=100,
        required=False,
        help_text=_("Where the contacts gave it, e.g. “Signup form 2025”."),
    )

    def __init__(self, contact_import: ContactImport, preview: Preview, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.contact_import = contact_import
        self.preview = preview
        self.fields["contact_list"].queryset = ContactList.objects.for_workspace(
            contact_import.workspace
        )
        url = reverse("contacts:import_mapping", args=[contact_import.pk])
        suggestions = imports.suggest_mapping(preview)
        for index, header in enumerate(preview.header):
            suggestion = suggestions[index]
            label = imports.column_label(preview.header, index)
            target = forms.ChoiceField(
                label=_("Import column %(column)s as") % {"column": label},
                choices=TARGET_CHOICES,
                required=False,
                initial=suggestion.get("field") or (ATTRIBUTE if ATTRIBUTE in suggestion else ""),
            )
            target.widget.attrs.update(
                {
                    "aria-label": target.label,
                    "hx-get": url,
                    "hx-trigger": "change",
                    "hx-target": f"#column-{index}",
                    "hx-swap": "outerHTML",
                    "hx-include": "closest tr",
                    "hx-vals": json.dumps({"column": index}),
                }
            )
            self.fields[f"column_{index}"] = target
            self.fields[f"column_{index}_attribute"] = forms.CharField(
                label=_("Attribute name"),
                max_length=imports.MAX_ATTRIBUTE_NAME_LENGTH,
                required=False,
                initial=suggestion.get(ATTRIBUTE) or imports.attribute_name_for(header, index),
            )
            self.fields[f"column_{index}_type"] = forms.ChoiceField(
                label=_("Type"),
                choices=AttributeType.choices,
                required=False,
                initial=suggestion.get("type") or AttributeType.STRING,
            )
        self.order_fields([name for name in self.fields if name.startswith("column_")])
        # An attribute's name and type only mean something while the column is an
        # attribute; otherwise they ride along hidden, so switching back keeps them.
        for column in self.columns:
            for name in (f"column_{column.index}_attribute", f"column_{column.index}_type"):
                field = self.fields[name]
                if column.is_attribute:
                    field.widget.attrs["aria-label"] = f"{field.label} ({column.header})"
                else:
                    field.widget = forms.HiddenInput()

    @property
    def columns(self) -> list[ColumnMapping]:
        return [self.column(index) for index in range(len(self.preview.header))]

    def column(self, index: int) -> ColumnMapping:
        if not 0 <= index < len(self.preview.header):
            raise IndexError(index)
        return ColumnMapping(
            index=index,
            header=self.preview.header[index],
            samples=self.preview.samples(index),
            target=self[f"column_{index}"],
            attribute=self[f"column_{index}_attribute"],
            type=self[f"column_{index}_type"],
        )

    def clean(self):
        data = super().clean()
        columns = []
        for index in range(len(self.preview.header)):
            target = data.get(f"column_{index}") or ""
            if target == ATTRIBUTE:
                columns.append(
                    {
                        "column": index,
                        ATTRIBUTE: (data.get(f"column_{index}_attribute") or "").strip(),
                        "type": data.get(f"column_{index}_type") or "",
                    }
                )
            elif target:
                columns.append({"column": index, "field": target})
        problems = imports.mapping_problems(columns, self.preview.header)
        if data.get("contact_list") and (data.get("new_list_name") or "").strip():
            problems.append(_("Choose an existing list or name a new one, not both."))
        if bool(data.get("consent_channel")) != bool(data.get("consent_status")):
            problems.append(_("To record consent, choose both the channel and the consent."))
        for problem in problems:
            self.add_error(None, problem)
        data["columns"] = columns
        data["new_list_name"] = (data.get("new_list_name") or "").strip()
        return data
