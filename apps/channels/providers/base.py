"""What every provider module implements. A provider turns a rendered message into a
delivery through one service (an SMTP server, an SMS gateway, a push service, a URL)."""

from dataclasses import dataclass, field

from django import forms


class SendError(Exception):
    """A send that did not go out. `permanent` errors are not retried."""

    permanent = False

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class TransientError(SendError):
    """Worth another try later: a timeout, a 4xx SMTP reply, a 5xx or 429 HTTP answer."""


class PermanentError(SendError):
    """Trying again cannot help: a refused address, a 4xx HTTP answer, bad settings."""

    permanent = True


@dataclass
class Outgoing:
    """A message ready for its provider: rendered, addressed, tracked."""

    message_id: int
    contact_id: int
    recipient: str
    subject: str = ""
    html: str = ""
    text: str = ""
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    data: dict = field(default_factory=dict)  # structured payload (webhook, push)


class Provider:
    """One way of sending a channel type. Subclasses set the class attributes, and the
    registry (apps.channels.providers) lists them."""

    key: str = ""
    channel_type: str = ""
    label = ""
    # Settings a marketer fills in, and which of them are secret (kept apart, never shown).
    form_class: type[forms.Form] = forms.Form
    secret_fields: tuple[str, ...] = ()

    def __init__(self, channel):
        self.channel = channel
        self.config = channel.config or {}
        self.secrets = channel.secrets or {}

    # A provider is used for a batch: `with provider: provider.send(...)` many times.
    def __enter__(self):
        self.open()
        return self

    def __exit__(self, *exc):
        self.close()

    def open(self) -> None:
        """Open connections a batch shares."""

    def close(self) -> None:
        """Close them; must not raise."""

    def recipient(self, contact) -> str | None:
        """This contact's address on the channel, or None when it has none."""
        raise NotImplementedError

    def send(self, outgoing: Outgoing) -> str:
        """Deliver one message; answers the provider's id for it (may be empty).
        Raises TransientError or PermanentError."""
        raise NotImplementedError

    @classmethod
    def check_settings(cls, config: dict, secrets: dict) -> dict[str, list[str]]:
        """Problems with these settings by field name (the form's own checks come first)."""
        return {}
