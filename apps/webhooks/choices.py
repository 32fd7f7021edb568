from django.db import models
from django.utils.translation import gettext_lazy as _


class DeliveryStatus(models.TextChoices):
    """Pending: not tried yet (or replayed); failed: the last try failed and another is due
    at `next_attempt_at`; succeeded and given up are final."""

    PENDING = "pending", _("Pending")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed, will retry")
    GIVEN_UP = "given_up", _("Given up")


class WebhookEventType(models.TextChoices):
    CONTACT_CREATED = "contact.created", _("Contact created")
    CONTACT_UPDATED = "contact.updated", _("Contact updated")
    SEGMENT_ENTERED = "segment.entered", _("Entered a segment")
    SEGMENT_EXITED = "segment.exited", _("Left a segment")
    JOURNEY_ENROLLED = "journey.enrolled", _("Enrolled in a journey")
    JOURNEY_COMPLETED = "journey.completed", _("Completed a journey")
    JOURNEY_EXITED = "journey.exited", _("Exited a journey")
    MESSAGE_SENT = "message.sent", _("Message sent")
    MESSAGE_DELIVERED = "message.delivered", _("Message delivered")
    MESSAGE_OPENED = "message.opened", _("Message opened")
    MESSAGE_CLICKED = "message.clicked", _("Message clicked")
    MESSAGE_BOUNCED = "message.bounced", _("Message bounced")
    CONTACT_UNSUBSCRIBED = "contact.unsubscribed", _("Contact unsubscribed")
    CONVERSION = "conversion", _("Conversion")


# A subscription to "*" receives every event type, including ones added later.
ALL_EVENTS = "*"
# What the test button sends; never produced by the feed.
PING = "ping"
