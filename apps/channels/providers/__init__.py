"""The registry of provider modules: adding a way to send is adding a module here."""

from apps.channels.providers import email, push, sms, webhook
from apps.channels.providers.base import (
    Outgoing,
    PermanentError,
    Provider,
    SendError,
    TransientError,
)

PROVIDERS: dict[str, type[Provider]] = {
    provider.key: provider
    for provider in (
        email.ServerEmail,
        email.SmtpEmail,
        email.AnymailEmail,
        sms.HttpJsonSms,
        sms.TwilioSms,
        push.WebPush,
        webhook.Webhook,
    )
}

__all__ = ["PROVIDERS", "Outgoing", "PermanentError", "Provider", "SendError", "TransientError",
           "for_channel", "for_type"]  # fmt: skip


def for_channel(channel) -> Provider:
    return PROVIDERS[channel.provider](channel)


def for_type(channel_type: str) -> list[type[Provider]]:
    return [provider for provider in PROVIDERS.values() if provider.channel_type == channel_type]
