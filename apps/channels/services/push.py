"""Web push: the workspace's VAPID keys, and the browsers' subscriptions.

A workspace has one VAPID key pair, whatever number of push channels it has: a browser
subscribes with the public key, and only the matching private key may then send to it.
The private key is kept in the channel's secrets, the public key in its settings.
"""

import base64
from dataclasses import dataclass
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext as _

from apps.accounts.models import Workspace
from apps.channels.choices import ChannelType
from apps.channels.models import Channel, PushSubscription
from apps.contacts.choices import ConsentChannel, ConsentStatus
from apps.contacts.models import Contact
from apps.contacts.services.consent import set_consent
from apps.contacts.services.identity import (
    clean_contact_key,
    resolve_contact_ids,
)

PUBLIC_KEY, PRIVATE_KEY = "vapid_public_key", "vapid_private_key"
MAX_USER_AGENT = 300


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def generate_vapid_keys() -> tuple[str, str]:
    """(private, public): the raw P-256 private number and the uncompressed public point,
    base64url, as py_vapid reads the one and browsers take the other
    (applicationServerKey)."""
    key = ec.generate_private_key(ec.SECP256R1())
    private = key.private_numbers().private_value.to_bytes(32, "big")
    public = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return b64url(private), b64url(public)


def ensure_vapid_keys(channel: Channel) -> Channel:
    """Give a push channel the workspace's key pair (the one another push channel has,
    else a new one). A channel that has its keys keeps them."""
    if channel.config.get(PUBLIC_KEY) and channel.secrets.get(PRIVATE_KEY):
        return channel
    other = (
        Channel.objects.for_workspace(channel.workspace)
        .filter(type=ChannelType.PUSH)
        .exclude(pk=channel.pk)
        .order_by("pk")
    )
    keyed = next(
        (c for c in other if c.config.get(PUBLIC_KEY) and c.secrets.get(PRIVATE_KEY)), None
    )
    if keyed is not None:
        private, public = keyed.secrets[PRIVATE_KEY], keyed.config[PUBLIC_KEY]
    else:
        private, public = generate_vapid_keys()
    channel.config = {**channel.config, PUBLIC_KEY: public}
    channel.secrets = {**channel.secrets, PRIVATE_KEY: private}
    if channel.pk:
        channel.save(update_fields=["config", "secrets"])
    return channel


@transaction.atomic
def create_push_channel(workspace: Workspace, name: str, subject_email: str) -> Channel:
    """A web push channel with the workspace's VAPID keys. `subject_email` is the contact
    address push services may write to about this sender (the VAPID subject)."""
    has_default = (
        Channel.objects.for_workspace(workspace)
        .filter(type=ChannelType.PUSH, is_default=True)
        .exists()
    )
    channel = Channel(
        workspace=workspace,
        name=name,
        type=ChannelType.PUSH,
        provider="webpush",
        config={"subject_email": subject_email},
        is_default=not has_default,
    )
    ensure_vapid_keys(channel)
    channel.save()
    return channel


def vapid_public_key(workspace: Workspace) -> str | None:
    """The key browsers subscribe with: the default active push channel's."""
    channel = (
        Channel.objects.for_workspace(workspace)
        .filter(type=ChannelType.PUSH, is_active=True)
        .order_by("-is_default", "pk")
        .first()
    )
    return (channel.config or {}).get(PUBLIC_KEY) if channel else None


# Subscriptions ---------------------------------------------------------------------------


@dataclass
class CleanSubscription:
    key: tuple[str, str]  # (external_id | email | anonymous_id, value)
    endpoint: str
    p256dh: str
    auth: str


def clean_subscription(data) -> tuple[CleanSubscription | None, dict[str, list[str]]]:
    """The browser's PushSubscription JSON and who the contact is, checked."""
    if not isinstance(data, dict):
        return None, {"non_field_errors": [_("Send a JSON object.")]}
    key, errors = clean_contact_key(data)
    subscription = data.get("subscription")
    if not isinstance(subscription, dict):
        errors["subscription"] = [_("Send the browser's subscription: endpoint and keys.")]
        return None, errors
    endpoint, endpoint_errors = clean_endpoint(subscription.get("endpoint"))
    if endpoint_errors:
        errors["subscription.endpoint"] = endpoint_errors
    keys = subscription.get("keys") if isinstance(subscription.get("keys"), dict) else {}
    p256dh, auth = keys.get("p256dh"), keys.get("auth")
    if not _is_key(p256dh, 65, 200):
        errors["subscription.keys.p256dh"] = [_("The browser's P-256 public key, base64url.")]
    if not _is_key(auth, 16, 100):
        errors["subscription.keys.auth"] = [_("The browser's 16-byte auth secret, base64url.")]
    if errors:
        return None, errors
    return CleanSubscription(key, endpoint, p256dh, auth), {}


def clean_endpoint(value) -> tuple[str, list[str]]:
    schemes = settings.PUSH_ENDPOINT_SCHEMES
    if not isinstance(value, str) or len(value) > 2000:
        return "", [_("The push service's URL.")]
    parts = urlsplit(value)
    if parts.scheme not in schemes or not parts.hostname:
        return "", [_("The push service's URL (%(s)s).") % {"s": ", ".join(schemes)}]
    return value, []


def _is_key(value, size: int, max_length: int) -> bool:
    if not isinstance(value, str) or not value or len(value) > max_length:
        return False
    try:
        raw = b64url_decode(value)
    except ValueError:
        return False
    return len(raw) == size if size != 65 else (len(raw) == 65 and raw[0] == 4)


@transaction.atomic
def subscribe(
    workspace: Workspace, clean: CleanSubscription, user_agent: str = ""
) -> tuple[PushSubscription, bool]:
    """Keep the browser's subscription for the contact (created when unknown); answers
    (subscription, created). A new subscription is the contact's opt-in to push, as the
    browser has just asked them; a repeated one leaves consent as it is."""
    contact_id = resolve_contact_ids(workspace, {clean.key})[clean.key]
    subscription, created = PushSubscription.objects.update_or_create(
        workspace=workspace,
        endpoint=clean.endpoint,
        defaults={
            "contact_id": contact_id,
            "p256dh": clean.p256dh,
            "auth": clean.auth,
            "user_agent": user_agent[:MAX_USER_AGENT],
        },
    )
    if created:
        contact = Contact.objects.for_workspace(workspace).get(pk=contact_id)
        set_consent(contact, ConsentChannel.PUSH, ConsentStatus.SUBSCRIBED, "browser permission")
    return subscription, created


def unsubscribe(workspace: Workspace, endpoint: str) -> bool:
    """Forget the browser's subscription; answers whether there was one."""
    deleted, _by_model = (
        PushSubscription.objects.for_workspace(workspace).filter(endpoint=endpoint).delete()
    )
    return bool(deleted)
