"""Email services reporting back: django-anymail receives each ESP's tracking webhook at
/hooks/esp/<esp>/tracking/, checks it, and turns it into one normalised event; here that
event becomes the message's status, its history and the contact's event, through
apps.channels.services.tracking.

anymail hands its events over as a Django signal (its only interface), connected in
ChannelsConfig.ready(); this receiver only finds the message and calls the service.
"""

import logging

from anymail.signals import AnymailTrackingEvent, EventType, RejectReason
from anymail.utils import get_anymail_setting

from apps.channels.choices import SuppressionReason
from apps.channels.services import tracking

log = logging.getLogger(__name__)

# A refusal for one of these reasons means the address itself is bad.
BAD_ADDRESS_REASONS = {RejectReason.BOUNCED, RejectReason.INVALID}


def webhook_is_authenticated(view_class) -> bool:
    """Whether anymail checked who sent the webhook: with the shared basic-auth secret
    (ANYMAIL_WEBHOOK_SECRET), or with the ESP's own signature (views that sign need no
    basic auth). Without either, anyone could bounce or unsubscribe anyone."""
    if get_anymail_setting("webhook_secret", default=None):
        return True
    return getattr(view_class, "warn_if_no_basic_auth", True) is False


def on_tracking_event(sender, event: AnymailTrackingEvent, esp_name: str, **kwargs) -> None:
    if not webhook_is_authenticated(sender):
        log.warning("Ignored a %s tracking webhook: set ANYMAIL_WEBHOOK_SECRET.", esp_name)
        return
    message = tracking.message_for_provider_id(event.message_id or "", event.recipient or "")
    if message is None:
        log.info("%s reported %s for an unknown message %r.", esp_name, event.event_type,
                 event.message_id)  # fmt: skip
        return
    apply_event(message, event, esp_name)


def apply_event(message, event: AnymailTrackingEvent, esp_name: str) -> None:
    """One ESP report on one of our messages."""
    at = event.timestamp
    detail = describe(event, esp_name)
    kind = event.event_type
    if kind == EventType.DELIVERED:
        tracking.mark_delivered(message, at, detail)
    elif kind == EventType.OPENED:
        tracking.mark_opened(message, at, (event.user_agent or esp_name)[:300])
    elif kind == EventType.CLICKED:
        tracking.mark_clicked(message, event.click_url or "", at)
    elif kind == EventType.BOUNCED:
        # anymail reports "bounced" when the receiving server refused for good; a refusal
        # for now ("deferred") is retried by the ESP and only noted.
        tracking.mark_bounced(message, hard=True, at=at, detail=detail)
    elif kind == EventType.DEFERRED:
        tracking.note_deferred(message, at, detail)
    elif kind == EventType.COMPLAINED:
        tracking.mark_complained(message, at, detail)
    elif kind == EventType.UNSUBSCRIBED:
        tracking.unsubscribe(message, esp_name, at)
    elif kind in (EventType.REJECTED, EventType.FAILED):
        tracking.mark_failed_delivery(message, at, detail)
        if kind == EventType.REJECTED and event.reject_reason in BAD_ADDRESS_REASONS:
            tracking.suppress(message, SuppressionReason.HARD_BOUNCE)
    # queued, sent, autoresponded, subscribed, unknown: nothing to record


def describe(event: AnymailTrackingEvent, esp_name: str) -> str:
    """The ESP's own words for the history line."""
    parts = [esp_name]
    for text in (event.description, event.mta_response):
        if text and str(text).strip() and str(text).strip() not in parts:
            parts.append(" ".join(str(text).split()))
    return ": ".join(parts[:2]) + ("" if len(parts) < 3 else f" ({parts[2]})")
