"""What happens to a message after it is sent: delivered, opened, clicked, bounced, marked
as spam, unsubscribed. Each becomes a status on the message, a line of its history and an
event on the contact (so segments, journeys and reports can use it); unsubscribes and hard
bounces change consent and suppression at once.

Every function is safe to call twice (providers resend webhooks; people click twice): the
status only moves forward, and a repeat adds no second contact event for delivery, bounce,
complaint or unsubscribe. Opens and clicks are counted each time on the history, and the
contact event is recorded on the first.
"""

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext

from apps.channels.choices import (
    ChannelType,
    MessageEventKind,
    MessageStatus,
    SuppressionReason,
)
from apps.channels.models import Message, MessageEvent, Suppression
from apps.contacts.choices import ConsentChannel, ConsentStatus
from apps.contacts.services.consent import set_consent

# How far each status is along the way; a later report never moves a message back.
PROGRESS = {
    MessageStatus.QUEUED: 0,
    MessageStatus.SENDING: 1,
    MessageStatus.DROPPED: 2,
    MessageStatus.FAILED: 2,
    MessageStatus.SENT: 3,
    MessageStatus.DELIVERED: 4,
    MessageStatus.OPENED: 5,
    MessageStatus.CLICKED: 6,
    MessageStatus.BOUNCED: 7,
    MessageStatus.COMPLAINED: 8,
}
CONTACT_EVENTS = {
    MessageEventKind.DELIVERED: "message_delivered",
    MessageEventKind.OPENED: "message_opened",
    MessageEventKind.CLICKED: "message_clicked",
    MessageEventKind.BOUNCED: "message_bounced",
    MessageEventKind.COMPLAINED: "message_complained",
    MessageEventKind.FAILED: "message_failed",
    MessageEventKind.UNSUBSCRIBED: "unsubscribed",
}


def mark_delivered(message: Message, at=None, detail: str = "") -> bool:
    return _track(message, MessageEventKind.DELIVERED, MessageStatus.DELIVERED, at, detail,
                  timestamp="delivered_at")  # fmt: skip


def mark_opened(message: Message, at=None, detail: str = "") -> bool:
    return _track(message, MessageEventKind.OPENED, MessageStatus.OPENED, at, detail,
                  timestamp="opened_at", repeatable=True)  # fmt: skip


def mark_clicked(message: Message, url: str, at=None) -> bool:
    """A click proves an open too (the mail client may have blocked the pixel): the first
    click of a message never opened records the open as well."""
    if not MessageEvent.objects.filter(message=message, kind=MessageEventKind.OPENED).exists():
        mark_opened(message, at, gettext("Implied by a click"))
    return _track(message, MessageEventKind.CLICKED, MessageStatus.CLICKED, at, url,
                  timestamp="clicked_at", repeatable=True, properties={"url": url})  # fmt: skip


def note_deferred(message: Message, at=None, detail: str = "") -> bool:
    """The provider could not deliver yet and tries again (a soft bounce, a full mailbox):
    a line of history only; a later delivery or bounce says how it ended."""
    MessageEvent.objects.create(message=message, kind=MessageEventKind.DEFERRED,
                                detail=detail[:2000], at=at or timezone.now())  # fmt: skip
    return True


def mark_failed_delivery(message: Message, at=None, detail: str = "") -> bool:
    """A provider reports that a sent message did not arrive (an SMS 'undelivered')."""
    return _track(message, MessageEventKind.FAILED, MessageStatus.FAILED, at, detail,
                  allow_back=True)  # fmt: skip


def mark_bounced(message: Message, hard: bool, at=None, detail: str = "") -> bool:
    """A hard bounce suppresses the address on the channel; a soft one is only recorded."""
    changed = _track(message, MessageEventKind.BOUNCED, MessageStatus.BOUNCED, at, detail,
                     properties={"hard": hard})  # fmt: skip
    if hard:
        suppress(message, SuppressionReason.HARD_BOUNCE)
    return changed


def mark_complained(message: Message, at=None, detail: str = "") -> bool:
    changed = _track(message, MessageEventKind.COMPLAINED, MessageStatus.COMPLAINED, at, detail)
    suppress(message, SuppressionReason.COMPLAINT)
    _unsubscribe_contact(message, "complaint")
    return changed


@transaction.atomic
def unsubscribe(message: Message, source: str = "unsubscribe link", at=None) -> bool:
    """The contact leaves the message's channel: consent becomes unsubscribed at once."""
    # Locked, so that two posts at once (a mail client's one-click and a person) record once.
    Message.objects.select_for_update().values_list("pk", flat=True).get(pk=message.pk)
    changed = _history_once(message, MessageEventKind.UNSUBSCRIBED, source, at)
    if changed:
        _contact_event(message, MessageEventKind.UNSUBSCRIBED, at, {"source": source})
    _unsubscribe_contact(message, source)
    return changed


def message_for_provider_id(provider_message_id: str, recipient: str = "") -> Message | None:
    """The message a provider reports on, by the id it gave when it accepted it (an ESP's
    own id, or our Message-ID header for SMTP, with or without its angle brackets). When
    the report names its recipient, the message must have been sent to that address."""
    provider_message_id = (provider_message_id or "").strip()
    if not provider_message_id:
        return None
    bare = provider_message_id.strip("<>")
    candidates = {provider_message_id, bare, f"<{bare}>"}
    found = (
        Message.objects.select_related("channel", "contact", "template_version__template")
        .filter(provider_message_id__in=candidates)
        .exclude(provider_message_id="")
        .order_by("-pk")
    )
    for message in found[:10]:
        if not recipient or message.recipient.lower() == recipient.strip().lower():
            return message
    return None


def suppress(message: Message, reason: str) -> None:
    if message.recipient:
        Suppression.objects.get_or_create(
            workspace_id=message.workspace_id,
            channel_type=message.channel.type,
            address=message.recipient,
            defaults={"reason": reason, "message": message},
        )


def _unsubscribe_contact(message: Message, source: str) -> None:
    channel_type = message.channel.type
    if channel_type in ConsentChannel.values and channel_type != ChannelType.WEBHOOK:
        set_consent(message.contact, channel_type, ConsentStatus.UNSUBSCRIBED, source[:100])


@transaction.atomic
def _track(message, kind, status, at, detail, *, timestamp=None, repeatable=False,
           allow_back=False, properties=None) -> bool:  # fmt: skip
    """Move the message forward to `status` (never back), add the history line, and record
    the contact event the first time. Answers whether this was the first such report."""
    at = at or timezone.now()
    locked = Message.objects.select_for_update().get(pk=message.pk)
    first = not MessageEvent.objects.filter(message=locked, kind=kind).exists()
    if not first and not repeatable:
        return False
    updates = []
    if allow_back or PROGRESS[status] > PROGRESS[locked.status]:
        locked.status = status
        updates.append("status")
    if timestamp and getattr(locked, timestamp) is None:
        setattr(locked, timestamp, at)
        updates.append(timestamp)
    if kind == MessageEventKind.CLICKED and locked.opened_at is None:
        locked.opened_at = at
        updates.append("opened_at")
    if updates:
        locked.save(update_fields=updates)
    MessageEvent.objects.create(message=locked, kind=kind, detail=detail[:2000], at=at)
    if first:  # the caller's row, whose channel and template are loaded
        _contact_event(message, kind, at, properties or {})
    message.status = locked.status
    return first


def _history_once(message, kind, detail, at) -> bool:
    if MessageEvent.objects.filter(message=message, kind=kind).exists():
        return False
    MessageEvent.objects.create(message=message, kind=kind, detail=detail[:2000],
                                at=at or timezone.now())  # fmt: skip
    return True


def _contact_event(message: Message, kind: str, at, properties: dict) -> None:
    """message_delivered, message_opened, … on the contact's timeline, naming the message,
    its channel and its journey; the contact's segments are re-evaluated."""
    # Imported here: contact events start journeys, whose sends import the providers, and
    # the SMS provider imports this module (a cycle at import time otherwise).
    from apps.contacts.services.events import record_system_event

    properties = {
        "message_id": message.pk,
        "channel": message.channel.type,
        "template": message.template_version.template.slug,
        **({"journey_id": message.journey_id} if message.journey_id else {}),
        **({"node_id": message.node_id} if message.node_id else {}),
        **properties,
    }
    record_system_event(message.workspace_id, message.contact_id, CONTACT_EVENTS[kind],
                        properties, at)  # fmt: skip
