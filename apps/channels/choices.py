from django.db import models
from django.utils.translation import gettext_lazy as _


class ChannelType(models.TextChoices):
    EMAIL = "email", _("Email")
    SMS = "sms", _("SMS")
    PUSH = "push", _("Web push")
    WEBHOOK = "webhook", _("Webhook")


class MessageStatus(models.TextChoices):
    """Where a message is. Engagement (opened, clicked) moves it forward, never back."""

    QUEUED = "queued", _("Queued")
    SENDING = "sending", _("Sending")
    SENT = "sent", _("Sent")
    DELIVERED = "delivered", _("Delivered")
    OPENED = "opened", _("Opened")
    CLICKED = "clicked", _("Clicked")
    BOUNCED = "bounced", _("Bounced")
    COMPLAINED = "complained", _("Marked as spam")
    FAILED = "failed", _("Failed")
    DROPPED = "dropped", _("Not sent")


class MessageEventKind(models.TextChoices):
    """Each line of a message's history."""

    QUEUED = "queued", _("Queued")
    DEFERRED = "deferred", _("Deferred")
    SENT = "sent", _("Sent")
    RETRY = "retry", _("Will retry")
    FAILED = "failed", _("Failed")
    DROPPED = "dropped", _("Not sent")
    RELEASED = "released", _("Returned to the queue")
    DELIVERED = "delivered", _("Delivered")
    OPENED = "opened", _("Opened")
    CLICKED = "clicked", _("Clicked")
    BOUNCED = "bounced", _("Bounced")
    COMPLAINED = "complained", _("Marked as spam")
    UNSUBSCRIBED = "unsubscribed", _("Unsubscribed")


class SuppressionReason(models.TextChoices):
    HARD_BOUNCE = "hard_bounce", _("Hard bounce")
    COMPLAINT = "complaint", _("Spam complaint")
    UNSUBSCRIBED = "unsubscribed", _("Unsubscribed")
    MANUAL = "manual", _("Added by hand")


class OverLimitAction(models.TextChoices):
    DEFER = "defer", _("Send later, when the contact is under the limit")
    DROP = "drop", _("Do not send")
