from django import forms
from django.utils.translation import gettext_lazy as _

from apps.accounts.choices import Role, Scope
from apps.accounts.models import TIMEZONE_CHOICES, Workspace


class WorkspaceForm(forms.ModelForm):
    timezone = forms.ChoiceField(label=_("Time zone"), choices=TIMEZONE_CHOICES)

    class Meta:
        model = Workspace
        fields = ["name", "timezone", "default_from_name", "default_from_email", "default_reply_to"]


class MemberInviteForm(forms.Form):
    email = forms.EmailField(label=_("Email address"))
    role = forms.ChoiceField(label=_("Role"), choices=Role.choices, initial=Role.MARKETER)


class MembershipRoleForm(forms.Form):
    role = forms.ChoiceField(label=_("Role"), choices=Role.choices)


class ApiKeyForm(forms.Form):
    name = forms.CharField(
        label=_("Name"), max_length=100, help_text=_("What uses the key, e.g. “Website tracking”.")
    )
    scopes = forms.MultipleChoiceField(
        label=_("Scopes"),
        choices=Scope.choices,
        widget=forms.CheckboxSelectMultiple,
        initial=[Scope.INGEST],
    )
