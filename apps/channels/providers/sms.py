"""SMS over an HTTP gateway: a generic JSON gateway, or Twilio's REST API. The contact's
phone (E.164) is the address. Gateways report deliveries back to /hooks/ (views/hooks.py):
the JSON gateway to a URL carrying a per-channel token, Twilio to a URL it signs."""

import base64
import hashlib
import hmac

from django import forms
from django.conf import settings
from django.core.validators import RegexValidator
from django.urls import reverse
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from apps.channels.choices import ChannelType
from apps.channels.models import Channel, Message
from apps.channels.providers.base import Outgoing, PermanentError
from apps.channels.providers.webhook import DEFAULT_TIMEOUT, HttpProvider, http_request
from apps.channels.services import tracking

TWILIO_API = "https://api.twilio.com"
RECEIPT_TOKEN_SALT = "orchestra.hooks.sms"  # noqa: S105 (a salt, not a secret)
DELIVERED = {"delivered"}
NOT_DELIVERED = {"failed", "undelivered"}


class SmsProvider(HttpProvider):
    channel_type = ChannelType.SMS

    def recipient(self, contact) -> str | None:
        return contact.phone or None

    def receipt_url(self) -> str:
        """Where the gateway reports deliveries (shown on the channel's settings)."""
        raise NotImplementedError


def _timeout_field():
    return forms.FloatField(
        label=gettext_lazy("Timeout (seconds)"),
        min_value=0.1,
        max_value=120,
        initial=DEFAULT_TIMEOUT,
        required=False,
    )


# A generic JSON gateway ------------------------------------------------------------------


class HttpJsonSmsForm(forms.Form):
    url = forms.URLField(
        label=gettext_lazy("Gateway URL"),
        max_length=2000,
        assume_scheme="https",
        help_text=gettext_lazy('Receives a POST of {"to", "from", "body", "reference"}.'),
    )
    from_number = forms.CharField(
        label=gettext_lazy("Sender"),
        max_length=34,
        help_text=gettext_lazy("A phone number (+4520123456) or a sender name."),
    )
    token = forms.CharField(
        label=gettext_lazy("Bearer token"),
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text=gettext_lazy("Sent as Authorization: Bearer …; leave empty for none."),
    )
    id_field = forms.CharField(
        label=gettext_lazy("Field of the answer holding the message id"),
        max_length=100,
        initial="id",
        required=False,
        help_text=gettext_lazy("Dots reach into objects: data.id."),
    )
    timeout = _timeout_field()


class HttpJsonSms(SmsProvider):
    key = "http_json"
    label = gettext_lazy("SMS gateway (JSON over HTTP)")
    form_class = HttpJsonSmsForm
    secret_fields = ("token",)

    def send(self, outgoing: Outgoing) -> str:
        headers = {}
        if self.secrets.get("token"):
            headers["Authorization"] = f"Bearer {self.secrets['token']}"
        payload = {
            "to": outgoing.recipient,
            "from": self.config.get("from_number", ""),
            "body": outgoing.body,
            "reference": str(outgoing.message_id),
        }
        response = http_request(
            self.session,
            "POST",
            self.config.get("url"),
            timeout=self.timeout,
            json=payload,
            headers=headers,
        )
        return _answer_field(response, self.config.get("id_field") or "id")

    def receipt_url(self) -> str:
        token = receipt_token(self.channel)
        return settings.SITE_URL + reverse("hooks:sms", args=[self.channel.pk, token])


def _answer_field(response, path: str) -> str:
    try:
        value = response.json()
    except ValueError:
        return ""
    for name in path.split("."):
        value = value.get(name) if isinstance(value, dict) else None
    return "" if value is None or isinstance(value, dict | list) else str(value)[:255]


def receipt_token(channel: Channel) -> str:
    """The secret part of a JSON gateway's receipt URL, derived from the channel and the
    server's SECRET_KEY (so nothing has to be stored, and it cannot be guessed)."""
    return salted_hmac(RECEIPT_TOKEN_SALT, str(channel.pk), algorithm="sha256").hexdigest()


def receipt_token_matches(channel: Channel, token: str) -> bool:
    return constant_time_compare(receipt_token(channel), token)


# Twilio ----------------------------------------------------------------------------------


class TwilioSmsForm(forms.Form):
    account_sid = forms.CharField(
        label=gettext_lazy("Account SID"),
        max_length=34,
        validators=[
            RegexValidator(r"^AC[0-9a-fA-F]{32}$", gettext_lazy("AC followed by 32 characters."))
        ],
    )
    auth_token = forms.CharField(
        label=gettext_lazy("Auth token"),
        required=False,
        widget=forms.PasswordInput(render_value=False),
    )
    from_number = forms.CharField(
        label=gettext_lazy("Sender"),
        max_length=34,
        help_text=gettext_lazy(
            "A Twilio phone number (+4520123456), a sender name, or a Messaging Service SID (MG…)."
        ),
    )
    base_url = forms.URLField(
        label=gettext_lazy("API address"),
        initial=TWILIO_API,
        required=False,
        assume_scheme="https",
        help_text=gettext_lazy("Leave as it is unless Twilio tells you otherwise."),
    )
    timeout = _timeout_field()


class TwilioSms(SmsProvider):
    key = "twilio"
    label = gettext_lazy("Twilio")
    form_class = TwilioSmsForm
    secret_fields = ("auth_token",)

    def send(self, outgoing: Outgoing) -> str:
        account_sid = self.config.get("account_sid", "")
        auth_token = self.secrets.get("auth_token")
        if not account_sid or not auth_token:
            raise PermanentError(_("The Twilio channel needs its account SID and auth token."))
        base_url = (self.config.get("base_url") or TWILIO_API).rstrip("/")
        sender = self.config.get("from_number", "")
        fields = {
            "To": outgoing.recipient,
            "Body": outgoing.body,
            "StatusCallback": self.receipt_url(),
        }
        if sender.startswith("MG") and len(sender) == 34:
            fields["MessagingServiceSid"] = sender
        else:
            fields["From"] = sender
        url = f"{base_url}/2010-04-01/Accounts/{account_sid}/Messages.json"
        response = http_request(
            self.session,
            "POST",
            url,
            timeout=self.timeout,
            data=fields,
            auth=(account_sid, auth_token),
        )
        return _answer_field(response, "sid")

    def receipt_url(self) -> str:
        return settings.SITE_URL + reverse("hooks:twilio", args=[self.channel.pk])

    @classmethod
    def check_settings(cls, config: dict, secrets: dict) -> dict[str, list[str]]:
        if not secrets.get("auth_token"):
            return {
                "auth_token": [
                    _("Twilio's auth token is needed to send and to check delivery reports.")
                ]
            }
        return {}


def twilio_signature(auth_token: str, url: str, params: dict[str, list[str]]) -> str:
    """Twilio's X-Twilio-Signature: HMAC-SHA1, base64, over the URL followed by each POST
    parameter's name and value, in order of name."""
    data = url + "".join(name + value for name in sorted(params) for value in sorted(params[name]))
    digest = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def twilio_signature_matches(channel: Channel, url: str, params, signature: str) -> bool:
    auth_token = (channel.secrets or {}).get("auth_token")
    if not auth_token or not signature:
        return False
    return constant_time_compare(twilio_signature(auth_token, url, params), signature)


# Delivery receipts -----------------------------------------------------------------------


def apply_receipt(
    channel: Channel, provider_message_id: str, status: str, detail: str = ""
) -> bool:
    """A gateway's report on one message of the channel: delivered, or not delivered.
    Other statuses (queued, sent, …) and unknown messages change nothing; answers whether
    the message was found and the report recorded."""
    status = (status or "").lower()
    if not provider_message_id or status not in DELIVERED | NOT_DELIVERED:
        return False
    message = (
        Message.objects.for_workspace(channel.workspace)
        .select_related("channel", "template_version__template")
        .filter(channel=channel, provider_message_id=provider_message_id)
        .first()
    )
    if message is None:
        return False
    if status in DELIVERED:
        tracking.mark_delivered(message, detail=detail)
    else:
        tracking.mark_failed_delivery(message, detail=detail or status)
    return True
