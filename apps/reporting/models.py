"""Rollups: what the dashboards and reports read, one row per day (in the workspace's time
zone) and dimension, kept current by a Celery task from the raw tables' new rows (see
services.rollups). Pages never scan raw events."""

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.accounts.models import WorkspaceScopedModel
from apps.reporting.choices import AttributionModel


class MessageDaily(WorkspaceScopedModel):
    """Per day, channel, journey and step: what happened to the messages."""

    day = models.DateField(_("day"))
    channel = models.CharField(_("channel"), max_length=16)
    journey_id = models.BigIntegerField(_("journey"), default=0, help_text=_("0: no journey"))
    node_id = models.CharField(_("journey step"), max_length=100, blank=True)
    sent = models.BigIntegerField(_("sent"), default=0)
    delivered = models.BigIntegerField(_("delivered"), default=0)
    opens = models.BigIntegerField(_("opens"), default=0)
    unique_opens = models.BigIntegerField(_("unique opens"), default=0)
    clicks = models.BigIntegerField(_("clicks"), default=0)
    unique_clicks = models.BigIntegerField(_("unique clicks"), default=0)
    bounced = models.BigIntegerField(_("bounced"), default=0)
    complained = models.BigIntegerField(_("marked as spam"), default=0)
    failed = models.BigIntegerField(_("failed"), default=0)
    dropped = models.BigIntegerField(_("not sent"), default=0)
    unsubscribed = models.BigIntegerField(_("unsubscribed"), default=0)

    class Meta:
        verbose_name = _("messages per day")
        verbose_name_plural = _("messages per day")
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "day", "channel", "journey_id", "node_id"],
                name="message_daily_unique",
            )
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.channel} {self.journey_id}/{self.node_id}"


class JourneyDaily(WorkspaceScopedModel):
    """Per day, journey, step and outcome (entered, sent, branched to "yes", converted…)."""

    day = models.DateField(_("day"))
    journey_id = models.BigIntegerField(_("journey"))
    node_id = models.CharField(_("journey step"), max_length=100)
    # A step's outcome; "split_converted": the goal reached after taking `branch` at this
    # (branching) step, for A/B results.
    outcome = models.CharField(_("outcome"), max_length=16)
    branch = models.CharField(_("branch"), max_length=100, blank=True)
    holdout = models.BooleanField(_("holdout group"), default=False)
    count = models.BigIntegerField(_("count"), default=0)

    class Meta:
        verbose_name = _("journey steps per day")
        verbose_name_plural = _("journey steps per day")
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "journey_id", "day", "node_id", "outcome", "branch",
                        "holdout"],
                name="journey_daily_unique",
            )
        ]  # fmt: skip

    def __str__(self) -> str:
        return f"{self.day} {self.journey_id}/{self.node_id} {self.outcome}"


class EventDaily(WorkspaceScopedModel):
    """Per day and event name: how many, and the revenue they carried (a numeric `revenue`,
    else `amount`, property)."""

    day = models.DateField(_("day"))
    name = models.CharField(_("event"), max_length=200)
    count = models.BigIntegerField(_("count"), default=0)
    revenue = models.DecimalField(_("revenue"), max_digits=20, decimal_places=2, default=0)

    class Meta:
        verbose_name = _("events per day")
        verbose_name_plural = _("events per day")
        constraints = [
            models.UniqueConstraint(fields=["workspace", "day", "name"], name="event_daily_unique")
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.name}"


class SegmentDaily(WorkspaceScopedModel):
    """Per day and segment: contacts who entered and who left it."""

    day = models.DateField(_("day"))
    segment = models.CharField(_("segment"), max_length=100)
    entered = models.BigIntegerField(_("entered"), default=0)
    exited = models.BigIntegerField(_("exited"), default=0)

    class Meta:
        verbose_name = _("segment changes per day")
        verbose_name_plural = _("segment changes per day")
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "day", "segment"], name="segment_daily_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.segment}"


class RollupWatermark(models.Model):
    """How far each raw table has been rolled up: every row with an id up to `last_id`
    is counted, once."""

    source = models.CharField(_("source table"), max_length=100, primary_key=True)
    last_id = models.BigIntegerField(_("last id counted"), default=0)
    updated_at = models.DateTimeField(_("updated"), default=timezone.now)

    class Meta:
        verbose_name = _("rollup watermark")
        verbose_name_plural = _("rollup watermarks")

    def __str__(self) -> str:
        return f"{self.source} ≤ {self.last_id}"


def default_conversion_events() -> list[str]:
    return ["purchase"]


class AttributionSettings(models.Model):
    """What counts as a conversion in a workspace, and how far back a message gets credit
    for it. A workspace without a row uses the defaults."""

    workspace = models.OneToOneField(
        "accounts.Workspace",
        on_delete=models.CASCADE,
        related_name="attribution_settings",
        verbose_name=_("workspace"),
    )
    conversion_events = models.JSONField(
        _("conversion events"),
        default=default_conversion_events,
        help_text=_('Event names that count as conversions, such as ["purchase"].'),
    )
    lookback_days = models.PositiveSmallIntegerField(_("lookback window (days)"), default=7)
    half_life_hours = models.PositiveSmallIntegerField(
        _("time-decay half-life (hours)"),
        default=48,
        help_text=_("Under time decay, a message sent this long before the conversion gets "
                    "half the credit of one sent just before it."),
    )  # fmt: skip

    class Meta:
        verbose_name = _("attribution settings")
        verbose_name_plural = _("attribution settings")

    def __str__(self) -> str:
        return str(self.workspace)


class AttributionDaily(WorkspaceScopedModel):
    """Per day, attribution model, channel, journey and step: the share of conversions and
    revenue credited to the messages sent there. Conversions no message touched are
    credited to channel "" (direct)."""

    day = models.DateField(_("day"))
    model = models.CharField(
        _("attribution model"), max_length=16, choices=AttributionModel.choices
    )
    channel = models.CharField(_("channel"), max_length=16, blank=True)
    journey_id = models.BigIntegerField(_("journey"), default=0, help_text=_("0: no journey"))
    node_id = models.CharField(_("journey step"), max_length=100, blank=True)
    conversions = models.FloatField(_("conversions credited"), default=0)
    revenue = models.DecimalField(_("revenue credited"), max_digits=20, decimal_places=4,
                                  default=0)  # fmt: skip

    class Meta:
        verbose_name = _("attribution per day")
        verbose_name_plural = _("attribution per day")
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "day", "model", "channel", "journey_id", "node_id"],
                name="attribution_daily_unique",
            )
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.model} {self.channel} {self.journey_id}/{self.node_id}"


class InsightSnapshot(WorkspaceScopedModel):
    """The customer insight page's numbers for a workspace, as computed at `computed_at`
    by a Celery task (services.insight); the page and the API read the latest one."""

    workspace = models.ForeignKey(
        "accounts.Workspace",
        on_delete=models.CASCADE,
        verbose_name=_("workspace"),
        db_index=False,  # covered by insight_snapshot_latest
    )
    computed_at = models.DateTimeField(_("computed"), default=timezone.now)
    seconds = models.FloatField(_("seconds to compute"), default=0)
    data = models.JSONField(_("numbers"), default=dict)

    class Meta:
        verbose_name = _("insight snapshot")
        verbose_name_plural = _("insight snapshots")
        indexes = [
            models.Index(fields=["workspace", "-computed_at"], name="insight_snapshot_latest")
        ]

    def __str__(self) -> str:
        return f"{self.workspace_id} @ {self.computed_at:%Y-%m-%d %H:%M}"


class CustomerRfm(WorkspaceScopedModel):
    """A customer's RFM cell as of the latest insight snapshot: how recently (1-5) and how
    often (1-5) they bought, with their purchases and revenue. Kept so that a cell of the
    grid lists exactly the contacts it counted, without scanning events."""

    workspace = models.ForeignKey(
        "accounts.Workspace",
        on_delete=models.CASCADE,
        verbose_name=_("workspace"),
        db_index=False,  # covered by customer_rfm_cell
    )
    contact = models.OneToOneField(
        "contacts.Contact",
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="+",
        verbose_name=_("contact"),
        # Rewritten set-wise while contacts may be merged away: a row left by a contact
        # deleted meanwhile is removed by the next refresh and never shown (pages join
        # the contacts).
        db_constraint=False,
    )
    recency = models.PositiveSmallIntegerField(_("recency score"))
    frequency = models.PositiveSmallIntegerField(_("frequency score"))
    purchases = models.PositiveIntegerField(_("purchases"))
    revenue = models.DecimalField(_("revenue"), max_digits=20, decimal_places=2, default=0)
    last_purchase_at = models.DateTimeField(_("last purchase"), null=True, blank=True)

    class Meta:
        verbose_name = _("customer RFM cell")
        verbose_name_plural = _("customer RFM cells")
        indexes = [
            models.Index(
                fields=["workspace", "recency", "frequency", "-contact"], name="customer_rfm_cell"
            )
        ]

    def __str__(self) -> str:
        return f"{self.contact_id}: R{self.recency} F{self.frequency}"
