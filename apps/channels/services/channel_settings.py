"""A workspace's channels as its owners set them up: a provider from the registry, the
provider's settings, its secrets (kept apart, never shown back), a rate limit, the default
for each type, and deleting a channel no message went through."""

import json

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import ProtectedError
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from apps.accounts.models import Workspace
from apps.channels.choices import ChannelType
from apps.channels.models import Channel, Message
from apps.channels.providers import PROVIDERS, Provider
from apps.channels.services.outbox import default_channel


class ChannelProblems(Exception):
    """Problems by field: `channel` for the channel's own fields, `settings` for the
    provider's."""

    def __init__(self, channel: dict[str, list[str]], settings: dict[str, list[str]]):
        super().__init__(channel, settings)
        self.channel = channel
        self.settings = settings


class ChannelInUse(Exception):
    """Messages went through the channel: it can be deactivated, not deleted."""


def workspace_channels(workspace: Workspace) -> list[Channel]:
    """Every channel of the workspace, the server's email channel included (made on first
    sight, as a first send would)."""
    default_channel(workspace, ChannelType.EMAIL)
    return list(Channel.objects.for_workspace(workspace).order_by("type", "name"))


def providers_by_type() -> list[tuple[str, str, list[type[Provider]]]]:
    """(type, its label, its providers) for every type some provider sends."""
    return [
        (value, label, [p for p in PROVIDERS.values() if p.channel_type == value])
        for value, label in ChannelType.choices
        if any(p.channel_type == value for p in PROVIDERS.values())
    ]


def provider_of(channel: Channel) -> type[Provider] | None:
    return PROVIDERS.get(channel.provider)


def secrets_set(channel: Channel) -> list[str]:
    """Names of the secrets the channel holds (never their values)."""
    return sorted(name for name, value in (channel.secrets or {}).items() if value)


def new_channel(workspace: Workspace, provider: type[Provider]) -> Channel:
    return Channel(workspace=workspace, type=provider.channel_type, provider=provider.key)


@transaction.atomic
def save_channel(
    channel: Channel,
    *,
    name: str,
    settings: dict,
    new_secrets: dict,
    rate_per_second: int | None = None,
    is_default: bool = False,
    is_active: bool = True,
) -> Channel:
    """Save the channel with the provider's settings. A secret left empty keeps the one
    held; raises ChannelProblems with every problem found, saving nothing."""
    provider = PROVIDERS.get(channel.provider)
    problems: dict[str, list[str]] = {}
    name = name.strip()
    taken = Channel.objects.for_workspace(channel.workspace).filter(name__iexact=name)
    if not name:
        problems["name"] = [_("Give the channel a name.")]
    elif taken.exclude(pk=channel.pk).exists():
        problems["name"] = [_("Another channel is called %(name)s.") % {"name": name}]
    # What the form does not ask for stays as it is (a push channel's VAPID keys, say; all
    # of a provider no longer installed); a secret typed replaces the one held.
    secret_fields = provider.secret_fields if provider is not None else ()
    typed = {k: v for k, v in new_secrets.items() if k in secret_fields and v not in (None, "")}
    secrets = {**(channel.secrets or {}), **typed}
    config = dict(channel.config or {})
    settings_problems: dict[str, list[str]] = {}
    if provider is not None:
        config.update(_plain({k: v for k, v in settings.items() if k not in secret_fields}))
        settings_problems = provider.check_settings(config, secrets) or {}
    if problems or settings_problems:
        raise ChannelProblems(problems, settings_problems)
    if is_default:
        # One default per type: the one chosen now takes over.
        Channel.objects.for_workspace(channel.workspace).filter(
            type=channel.type, is_default=True
        ).exclude(pk=channel.pk).update(is_default=False)
    channel.name, channel.config, channel.secrets = name, config, secrets
    channel.rate_per_second = rate_per_second
    channel.is_default, channel.is_active = is_default, is_active
    channel.save()
    if channel.type == ChannelType.PUSH:
        # A push channel signs with the workspace's VAPID key pair, made once, never typed.
        from apps.channels.services.push import ensure_vapid_keys

        ensure_vapid_keys(channel)
    return channel


def _plain(values: dict) -> dict:
    """JSON-ready settings (a form may clean to dates or decimals)."""
    return json.loads(json.dumps(values, cls=DjangoJSONEncoder))


def delete_channel(channel: Channel) -> None:
    """Delete a channel no message went through; raises ChannelInUse otherwise."""
    sent = Message.objects.filter(channel=channel).count()
    if sent:
        raise ChannelInUse(
            ngettext(
                "%(name)s cannot be deleted: %(count)s message went through it. "
                "Deactivate it instead.",
                "%(name)s cannot be deleted: %(count)s messages went through it. "
                "Deactivate it instead.",
                sent,
            )
            % {"name": channel.name, "count": sent}
        )
    try:
        with transaction.atomic():
            channel.delete()
    except ProtectedError:  # a message was queued through it just now
        raise ChannelInUse(
            _("%(name)s cannot be deleted: messages went through it.") % {"name": channel.name}
        ) from None
