"""Webhook: each message is a signed JSON POST to a URL of the workspace's (its own system,
a CRM, a chat tool), so every contact is reachable and no consent applies.

The receiver checks `X-Orchestra-Signature: t=<unix time>,v1=<hex>`, where the hex is the
HMAC-SHA256 of "<t>.<raw body>" with the channel's signing secret, and refuses old `t`s.
This module also holds the HTTP helpers the SMS providers share.
"""

import hashlib
import hmac
import json
import time

import requests
from django import forms
from django.core.serializers.json import DjangoJSONEncoder
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from apps.channels.choices import ChannelType
from apps.channels.providers.base import Outgoing, PermanentError, Provider, TransientError

DEFAULT_TIMEOUT = 10.0
USER_AGENT = "Orchestra"


# Shared by the HTTP providers ------------------------------------------------------------


def http_request(
    session: requests.Session, method: str, url: str, *, timeout: float, **kwargs
) -> requests.Response:
    """The answer when it is a 2xx. Timeouts, connection errors, 429 and 5xx raise
    TransientError (worth another try); any other answer raises PermanentError with
    what the service said."""
    try:
        response = session.request(method, url, timeout=timeout, **kwargs)
    except requests.Timeout as error:
        raise TransientError(_("No answer within %(s)s seconds.") % {"s": timeout}) from error
    except requests.ConnectionError as error:
        raise TransientError(_("Could not connect: %(e)s") % {"e": error}) from error
    except requests.RequestException as error:
        raise PermanentError(str(error)) from error
    if 200 <= response.status_code < 300:
        return response
    detail = f"HTTP {response.status_code}: {service_message(response)}".strip()
    if response.status_code == 429 or response.status_code >= 500:
        raise TransientError(detail)
    raise PermanentError(detail)


def service_message(response: requests.Response) -> str:
    """What a service says about a refusal: its JSON message if it has one, else the text."""
    try:
        data = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(data, dict):
        for key in ("message", "error_message", "detail", "error", "description"):
            value = data.get(key)
            if isinstance(value, dict):
                value = value.get("message")
            if isinstance(value, str) and value:
                code = data.get("code")
                return f"{value} ({code})" if code not in (None, "") else value
    return json.dumps(data)[:200]


class HttpProvider(Provider):
    """A provider that sends over HTTP, with one session per batch."""

    def open(self) -> None:
        self.session = requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT

    def close(self) -> None:
        session = getattr(self, "session", None)
        if session is not None:
            session.close()

    @property
    def timeout(self) -> float:
        return float(self.config.get("timeout") or DEFAULT_TIMEOUT)


# The webhook provider --------------------------------------------------------------------


def signature_header(secret: str, body: bytes, timestamp: int) -> str:
    signed = f"{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


class WebhookForm(forms.Form):
    url = forms.URLField(
        label=gettext_lazy("URL"),
        max_length=2000,
        assume_scheme="https",
        help_text=gettext_lazy("Each message is posted here as JSON."),
    )
    signing_secret = forms.CharField(
        label=gettext_lazy("Signing secret"),
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text=gettext_lazy(
            "Signs each request (X-Orchestra-Signature) so the receiver knows it came from "
            "here. At least 16 characters."
        ),
    )
    timeout = forms.FloatField(
        label=gettext_lazy("Timeout (seconds)"),
        min_value=0.1,
        max_value=120,
        initial=DEFAULT_TIMEOUT,
        required=False,
    )


class Webhook(HttpProvider):
    key = "webhook"
    channel_type = ChannelType.WEBHOOK
    label = gettext_lazy("Webhook (signed JSON POST)")
    form_class = WebhookForm
    secret_fields = ("signing_secret",)

    def recipient(self, contact) -> str | None:
        # Every contact is reachable: the receiving system decides what to do with them.
        return self.config.get("url") or None

    def send(self, outgoing: Outgoing) -> str:
        secret = self.secrets.get("signing_secret")
        if not secret:
            raise PermanentError(_("The webhook channel has no signing secret."))
        payload = {
            "message_id": outgoing.message_id,
            "contact": outgoing.data.get("contact", {}),
            "body": outgoing.body,
            "context": outgoing.data.get("context", {}),
        }
        body = json.dumps(payload, cls=DjangoJSONEncoder, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Orchestra-Signature": signature_header(secret, body, int(time.time())),
            "X-Orchestra-Message-Id": str(outgoing.message_id),
        }
        http_request(
            self.session,
            "POST",
            outgoing.recipient,
            timeout=self.timeout,
            data=body,
            headers=headers,
        )
        return ""

    @classmethod
    def check_settings(cls, config: dict, secrets: dict) -> dict[str, list[str]]:
        problems = {}
        if not str(config.get("url") or "").startswith(("http://", "https://")):
            problems["url"] = [_("An http:// or https:// URL.")]
        if len(secrets.get("signing_secret") or "") < 16:
            problems["signing_secret"] = [_("A signing secret of at least 16 characters.")]
        return problems
