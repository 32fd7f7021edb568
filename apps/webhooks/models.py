from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.validators import URLValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.accounts.models import WorkspaceScopedModel
from apps.webhooks.choices import ALL_EVENTS, DeliveryStatus

validate_http_url = URLValidator(schemes=["http", "https"])


class WebhookSubscription(WorkspaceScopedModel):
    """A URL of the workspace's that receives the chosen events as signed JSON POSTs.

    The signing secret is stored as it is (it must be usable to sign), shown once when the
    subscription is created or its secret rotated, and never shown again."""

    url = models.URLField(_("URL"), max_length=2000, validators=[validate_http_url])
    description = models.CharField(_("description"), max_length=200, blank=True)
    event_types = ArrayField(
        models.CharField(max_length=40),
        verbose_name=_("event types"),
        help_text=_('The event types to receive; "*" for all of them.'),
    )
    secret = models.CharField(_("signing secret"), max_length=100, editable=False)
    is_active = models.BooleanField(_("active"), default=True)
    failing_since = models.DateTimeField(_("failing since"), null=True, blank=True)
    disabled_at = models.DateTimeField(_("disabled"), null=True, blank=True)
    disabled_reason = models.CharField(_("why disabled"), max_length=300, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("webhook subscription")
        verbose_name_plural = _("webhook subscriptions")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["workspace", "is_active"], name="webhook_sub_active")]

    def __str__(self) -> str:
        return self.description or self.url

    def receives(self, event_type: str) -> bool:
        return ALL_EVENTS in self.event_types or event_type in self.event_types

    @property
    def secret_hint(self) -> str:
        """Enough of the secret to tell two apart, never enough to sign."""
        return f"{self.secret[:8]}…" if self.secret else ""


class WebhookDelivery(WorkspaceScopedModel):
    """One event for one subscription: sent until the receiver answers 2xx or the retry
    schedule runs out. (subscription, event_id) is unique, so an event is queued once."""

    subscription = models.ForeignKey(
        WebhookSubscription,
        on_delete=models.CASCADE,
        related_name="deliveries",
        verbose_name=_("subscription"),
        db_index=False,  # (subscription, event_id) is unique, which serves lookups by it
    )
    event_id = models.CharField(_("event id"), max_length=100)
    event_type = models.CharField(_("event type"), max_length=40)
    payload = models.JSONField(_("payload"))
    status = models.CharField(
        _("status"), max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    last_attempt_at = models.DateTimeField(_("last attempt"), null=True, blank=True)
    request_headers = models.JSONField(_("request headers"), default=dict, blank=True)
    request_body = models.TextField(_("request body (excerpt)"), blank=True)
    response_status = models.PositiveSmallIntegerField(_("response status"), null=True, blank=True)
    response_body = models.TextField(_("response body (excerpt)"), blank=True)
    error = models.CharField(_("error"), max_length=500, blank=True)
    duration_ms = models.PositiveIntegerField(_("duration (ms)"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    delivered_at = models.DateTimeField(_("delivered"), null=True, blank=True)

    class Meta:
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "event_id"], name="webhook_delivery_unique_event"
            )
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="webhook_delivery_due",
                condition=Q(status__in=[DeliveryStatus.PENDING, DeliveryStatus.FAILED]),
            ),
            models.Index(
                fields=["subscription"],
                name="webhook_delivery_waiting",
                condition=Q(status__in=[DeliveryStatus.PENDING, DeliveryStatus.FAILED]),
            ),
            # The log, newest first, and the health counts of the last day.
            models.Index(fields=["subscription", "-id"], name="webhook_delivery_log"),
            models.Index(
                fields=["subscription", "last_attempt_at"], name="webhook_delivery_recent"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id} → {self.subscription_id}"


class WebhookFeedPosition(models.Model):
    """How far the feed has read each source: every row up to `last_id` (or, for contact
    updates, changed up to `last_at`) has become deliveries, once."""

    source = models.CharField(_("source"), max_length=100, primary_key=True)
    last_id = models.BigIntegerField(_("last id read"), default=0)
    last_at = models.DateTimeField(_("read up to"), null=True, blank=True)
    updated_at = models.DateTimeField(_("updated"), default=timezone.now)

    class Meta:
        verbose_name = _("webhook feed position")
        verbose_name_plural = _("webhook feed positions")

    def __str__(self) -> str:
        return f"{self.source} ≤ {self.last_id}"
