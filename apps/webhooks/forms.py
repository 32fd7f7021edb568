from django import forms
from django.utils.translation import gettext_lazy as _

from apps.webhooks.choices import ALL_EVENTS, DeliveryStatus, WebhookEventType
from apps.webhooks.models import WebhookSubscription

EVENT_TYPE_CHOICES = [
    (ALL_EVENTS, _("All events, including types added later")),
    *WebhookEventType.choices,
]


class WebhookSubscriptionForm(forms.ModelForm):
    url = forms.URLField(
        label=_("URL"),
        max_length=2000,
        assume_scheme="https",
        widget=forms.URLInput(attrs={"placeholder": "https://example.com/hooks"}),
        help_text=_("Orchestra POSTs each event there as JSON, signed with the secret."),
    )
    event_types = forms.MultipleChoiceField(
        label=_("Events to send"),
        choices=EVENT_TYPE_CHOICES,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": _("Choose at least one event type.")},
    )

    class Meta:
        model = WebhookSubscription
        fields = ["url", "description", "event_types", "is_active"]
        help_texts = {
            "is_active": _("A disabled subscription receives nothing until enabled again."),
        }

    def __init__(self, *args, creating: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if creating:
            del self.fields["is_active"]


class DeliveryFilterForm(forms.Form):
    status = forms.ChoiceField(
        label=_("Status"),
        choices=[("", _("All statuses")), *DeliveryStatus.choices],
        required=False,
    )
