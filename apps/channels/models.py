"""Channels and their providers, message templates with their versions, the outbox of
messages with each one's history, suppressions and the workspace's delivery policy."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.accounts.models import Workspace, WorkspaceScopedModel
from apps.channels.choices import (
    ChannelType,
    MessageEventKind,
    MessageStatus,
    OverLimitAction,
    SuppressionReason,
)
from apps.contacts.models import Contact


class Channel(WorkspaceScopedModel):
    """One way out of a workspace: a channel type sent through one provider module."""

    name = models.CharField(_("name"), max_length=100)
    type = models.CharField(_("type"), max_length=16, choices=ChannelType.choices)
    provider = models.CharField(_("provider"), max_length=32)
    # What the provider's form asks for. Secrets live apart and are never shown back.
    config = models.JSONField(_("settings"), default=dict, blank=True)
    secrets = models.JSONField(_("secrets"), default=dict, blank=True, editable=False)
    rate_per_second = models.PositiveIntegerField(
        _("sending rate limit (messages per second)"),
        null=True,
        blank=True,
        help_text=_("The provider's limit; leave empty for none."),
    )
    is_default = models.BooleanField(
        _("default for its type"), default=False, help_text=_("Used when a send names no channel.")
    )
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("channel")
        verbose_name_plural = _("channels")
        ordering = ["type", "name"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "name"], name="channel_unique_name"),
            models.UniqueConstraint(
                fields=["workspace", "type"],
                condition=Q(is_default=True),
                name="channel_one_default_per_type",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Template(WorkspaceScopedModel):
    """A message's content in Liquid. Saving changed content makes a new version; a message
    keeps the exact version it was rendered from."""

    slug = models.SlugField(_("slug"), max_length=100)
    name = models.CharField(_("name"), max_length=150)
    channel = models.CharField(_("channel"), max_length=16, choices=ChannelType.choices)
    subject = models.CharField(_("subject"), max_length=300, blank=True)
    preheader = models.CharField(_("preheader"), max_length=300, blank=True)
    html = models.TextField(_("HTML"), blank=True)
    text = models.TextField(
        _("text"), blank=True, help_text=_("Leave empty to derive it from the HTML.")
    )
    body = models.TextField(_("body"), blank=True)
    version = models.PositiveIntegerField(_("version"), default=0, editable=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    CONTENT_FIELDS = ("subject", "preheader", "html", "text", "body")

    class Meta:
        verbose_name = _("template")
        verbose_name_plural = _("templates")
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "slug"], name="template_unique_slug")
        ]

    def __str__(self) -> str:
        return self.name

    def content(self) -> dict:
        return {name: getattr(self, name) for name in self.CONTENT_FIELDS}


class TemplateVersion(models.Model):
    """The frozen content of one version of a template."""

    template = models.ForeignKey(
        Template, on_delete=models.CASCADE, related_name="versions", verbose_name=_("template")
    )
    number = models.PositiveIntegerField(_("number"))
    subject = models.CharField(_("subject"), max_length=300, blank=True)
    preheader = models.CharField(_("preheader"), max_length=300, blank=True)
    html = models.TextField(_("HTML"), blank=True)
    text = models.TextField(_("text"), blank=True)
    body = models.TextField(_("body"), blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        verbose_name=_("created by"),
    )

    class Meta:
        verbose_name = _("template version")
        verbose_name_plural = _("template versions")
        ordering = ["template", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["template", "number"], name="template_version_unique")
        ]

    def __str__(self) -> str:
        return f"{self.template} v{self.number}"

    def content(self) -> dict:
        return {name: getattr(self, name) for name in Template.CONTENT_FIELDS}


class Message(WorkspaceScopedModel):
    """One message to one contact: written queued (in the transaction that caused it),
    claimed by a worker, sent once, then followed through delivery and engagement."""

    workspace = models.ForeignKey(
        Workspace,
        on_delete=models.CASCADE,
        verbose_name=_("workspace"),
        db_index=False,  # covered by message_workspace_recent
    )
    contact = models.ForeignKey(
        Contact,
        on_delete=models.CASCADE,
        related_name="messages",
        verbose_name=_("contact"),
        db_index=False,  # covered by message_contact_recent
    )
    channel = models.ForeignKey(
        Channel, on_delete=models.PROTECT, related_name="messages", verbose_name=_("channel")
    )
    template_version = models.ForeignKey(
        TemplateVersion,
        on_delete=models.PROTECT,
        related_name="messages",
        verbose_name=_("template version"),
    )
    # Unique per workspace: the same cause (a journey step, an API call) never sends twice.
    idempotency_key = models.CharField(_("idempotency key"), max_length=200)
    status = models.CharField(
        _("status"), max_length=16, choices=MessageStatus.choices, default=MessageStatus.QUEUED
    )
    reason = models.CharField(_("reason"), max_length=300, blank=True)
    priority = models.SmallIntegerField(_("priority"), default=0)
    # The triggering event and whatever else the template may use (journey, node).
    context = models.JSONField(_("context"), default=dict, blank=True)
    journey_id = models.BigIntegerField(_("journey"), null=True, blank=True)
    node_id = models.CharField(_("journey step"), max_length=100, blank=True)
    recipient = models.CharField(_("recipient"), max_length=2000, blank=True)
    subject = models.CharField(_("subject"), max_length=300, blank=True)
    links = models.JSONField(_("tracked links"), default=list, blank=True)
    provider_message_id = models.CharField(_("provider's id"), max_length=255, blank=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    due_at = models.DateTimeField(_("due"), default=timezone.now)
    lease_until = models.DateTimeField(_("claimed until"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
    delivered_at = models.DateTimeField(_("delivered"), null=True, blank=True)
    opened_at = models.DateTimeField(_("opened"), null=True, blank=True)
    clicked_at = models.DateTimeField(_("clicked"), null=True, blank=True)

    class Meta:
        verbose_name = _("message")
        verbose_name_plural = _("messages")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "idempotency_key"], name="message_unique_idempotency_key"
            )
        ]
        indexes = [
            # What workers claim: due messages, most important first.
            models.Index(
                fields=["due_at"], condition=Q(status="queued"), name="message_queued_due"
            ),
            # The lease sweeper's rows.
            models.Index(
                fields=["lease_until"], condition=Q(status="sending"), name="message_sending_lease"
            ),
            # Contact pressure (sent in the last day and week) and the contact's timeline.
            models.Index(fields=["contact", "-created_at"], name="message_contact_recent"),
            models.Index(fields=["workspace", "-created_at"], name="message_workspace_recent"),
            models.Index(
                fields=["provider_message_id"],
                condition=~Q(provider_message_id=""),
                name="message_provider_id",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.channel_id} → {self.contact_id} ({self.status})"


class MessageEvent(models.Model):
    """One line of a message's history: every status change and every engagement."""

    message = models.ForeignKey(
        Message, on_delete=models.CASCADE, related_name="history", verbose_name=_("message")
    )
    kind = models.CharField(_("what"), max_length=16, choices=MessageEventKind.choices)
    detail = models.CharField(_("detail"), max_length=2000, blank=True)
    at = models.DateTimeField(_("when"), default=timezone.now)

    class Meta:
        verbose_name = _("message event")
        verbose_name_plural = _("message events")
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.kind} @ {self.at:%Y-%m-%d %H:%M:%S}"


class Suppression(WorkspaceScopedModel):
    """An address that must not be messaged on a channel type (bounced, complained, ...)."""

    channel_type = models.CharField(_("channel"), max_length=16, choices=ChannelType.choices)
    address = models.CharField(_("address"), max_length=2000)
    reason = models.CharField(_("reason"), max_length=16, choices=SuppressionReason.choices)
    message = models.ForeignKey(
        Message,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("caused by"),
    )
    created_at = models.DateTimeField(_("added"), default=timezone.now)

    class Meta:
        verbose_name = _("suppression")
        verbose_name_plural = _("suppressions")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "channel_type", "address"], name="suppression_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.address} ({self.reason})"


class DeliveryPolicy(models.Model):
    """How much a workspace may message one contact, and when."""

    workspace = models.OneToOneField(
        Workspace,
        on_delete=models.CASCADE,
        related_name="delivery_policy",
        verbose_name=_("workspace"),
    )
    max_per_day = models.PositiveIntegerField(
        _("at most per day"),
        null=True,
        blank=True,
        help_text=_("Messages to one contact in any 24 hours, across channels and journeys."),
    )
    max_per_week = models.PositiveIntegerField(
        _("at most per week"),
        null=True,
        blank=True,
        help_text=_("Messages to one contact in any 7 days, across channels and journeys."),
    )
    over_limit = models.CharField(
        _("over the limit"),
        max_length=8,
        choices=OverLimitAction.choices,
        default=OverLimitAction.DEFER,
    )
    quiet_hours_start = models.TimeField(
        _("quiet hours from"),
        null=True,
        blank=True,
        help_text=_("In the contact's time zone (the workspace's when unknown)."),
    )
    quiet_hours_end = models.TimeField(_("quiet hours until"), null=True, blank=True)
    require_opt_in = models.BooleanField(
        _("require opt-in"),
        default=True,
        help_text=_(
            "Send only to contacts subscribed on the channel. Off: also to those whose "
            "consent is unknown. Unsubscribed contacts are never messaged."
        ),
    )

    class Meta:
        verbose_name = _("delivery policy")
        verbose_name_plural = _("delivery policies")

    def __str__(self) -> str:
        return str(self.workspace)


class PushSubscription(WorkspaceScopedModel):
    """A browser's web push subscription, for one contact."""

    contact = models.ForeignKey(
        Contact,
        on_delete=models.CASCADE,
        related_name="push_subscriptions",
        verbose_name=_("contact"),
    )
    endpoint = models.URLField(_("endpoint"), max_length=2000)
    p256dh = models.CharField(_("public key"), max_length=200)
    auth = models.CharField(_("auth secret"), max_length=100)
    user_agent = models.CharField(_("browser"), max_length=300, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        verbose_name = _("push subscription")
        verbose_name_plural = _("push subscriptions")
        constraints = [
            models.UniqueConstraint(fields=["workspace", "endpoint"], name="push_unique_endpoint")
        ]

    def __str__(self) -> str:
        return self.endpoint[:60]
