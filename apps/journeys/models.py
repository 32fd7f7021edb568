"""Journeys, their frozen versions, each contact's enrollment (where it is, what it waits
for, when it is due), the log of every step, and per-node counters for the stats."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.accounts.models import Workspace, WorkspaceScopedModel
from apps.channels.models import Message
from apps.contacts.models import Contact, Event
from apps.journeys.choices import EnrollmentState, JourneyStatus, StepOutcome

OPEN_STATES = [EnrollmentState.ACTIVE, EnrollmentState.WAITING]


class Journey(WorkspaceScopedModel):
    """A customer journey. `draft` is the graph being edited; publishing freezes it as a
    new version, which contacts then enter."""

    name = models.CharField(_("name"), max_length=150)
    status = models.CharField(
        _("status"), max_length=16, choices=JourneyStatus.choices, default=JourneyStatus.DRAFT
    )
    priority = models.SmallIntegerField(
        _("priority"),
        default=0,
        help_text=_("When the contact limit lets one of several messages through, the "
                    "journey with the highest priority sends."),
    )  # fmt: skip
    draft = models.JSONField(_("draft graph"), default=dict)
    live_version = models.ForeignKey(
        "JourneyVersion",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("published version"),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("journey")
        verbose_name_plural = _("journeys")
        ordering = ["-updated_at"]

    def __str__(self) -> str:
        return self.name


class JourneyVersion(models.Model):
    """A published graph, never changed afterwards; contacts finish on the version they
    entered unless moved by an explicit node mapping."""

    journey = models.ForeignKey(
        Journey, on_delete=models.CASCADE, related_name="versions", verbose_name=_("journey")
    )
    number = models.PositiveIntegerField(_("number"))
    graph = models.JSONField(_("graph"))
    published_at = models.DateTimeField(_("published"), default=timezone.now)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        verbose_name=_("published by"),
    )

    class Meta:
        verbose_name = _("journey version")
        verbose_name_plural = _("journey versions")
        ordering = ["journey", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["journey", "number"], name="journey_version_unique")
        ]

    def __str__(self) -> str:
        return f"{self.journey} v{self.number}"

    def node(self, node_id: str) -> dict | None:
        return next((n for n in self.graph.get("nodes", []) if n.get("id") == node_id), None)


class Enrollment(WorkspaceScopedModel):
    """One contact's way through one journey: the node it is at, and when it is due next
    (a time, an awaited event, or both: the event or its timeout)."""

    workspace = models.ForeignKey(
        Workspace,
        on_delete=models.CASCADE,
        verbose_name=_("workspace"),
        db_index=False,  # covered by enrollment_contact_open and the journey's own index
    )
    journey = models.ForeignKey(
        Journey, on_delete=models.CASCADE, related_name="enrollments", verbose_name=_("journey")
    )
    version = models.ForeignKey(
        JourneyVersion,
        on_delete=models.CASCADE,
        related_name="enrollments",
        verbose_name=_("version"),
        db_index=False,  # covered by enrollment_version_node
    )
    contact = models.ForeignKey(
        Contact,
        on_delete=models.CASCADE,
        related_name="enrollments",
        verbose_name=_("contact"),
        db_index=False,  # covered by enrollment_contact_open
    )
    # A keyed entry (a cart id) lets one contact be in several instances at once.
    key = models.CharField(_("key"), max_length=200, blank=True, default="")
    state = models.CharField(
        _("state"), max_length=16, choices=EnrollmentState.choices, default=EnrollmentState.ACTIVE
    )
    node_id = models.CharField(_("step"), max_length=100)
    due_at = models.DateTimeField(_("due"), null=True, blank=True)
    awaiting_event = models.CharField(_("waiting for"), max_length=200, blank=True)
    holdout = models.BooleanField(_("holdout"), default=False)
    # How often each node was visited, so a step repeated in a loop is told apart from a
    # retried one (the message idempotency key carries the visit).
    visits = models.JSONField(_("visits"), default=dict, blank=True)
    entry_event = models.JSONField(_("entry event"), default=dict, blank=True)
    entered_at = models.DateTimeField(_("entered"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated"), default=timezone.now)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    exit_reason = models.CharField(_("exit reason"), max_length=200, blank=True)
    converted_at = models.DateTimeField(_("converted"), null=True, blank=True)

    class Meta:
        verbose_name = _("enrollment")
        verbose_name_plural = _("enrollments")
        ordering = ["-entered_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["journey", "contact", "key"],
                condition=Q(state__in=OPEN_STATES),
                name="enrollment_one_open_per_key",
            )
        ]
        indexes = [
            # What the beat tick claims: open enrollments whose time has come.
            models.Index(
                fields=["due_at"],
                condition=Q(state__in=OPEN_STATES, due_at__isnull=False),
                name="enrollment_due",
            ),
            # A contact's events resume its waits, pull it to goals and apply exits.
            models.Index(
                fields=["contact"],
                condition=Q(state__in=OPEN_STATES),
                name="enrollment_contact_open",
            ),
            models.Index(fields=["version", "node_id"], name="enrollment_version_node"),
            # Re-entry rules look at a contact's past enrollments in a journey.
            models.Index(fields=["journey", "contact", "-entered_at"], name="enrollment_history"),
        ]

    def __str__(self) -> str:
        return f"{self.contact_id} in {self.journey_id} at {self.node_id} ({self.state})"


class JourneyStep(models.Model):
    """The log: each node a contact passed and what happened there."""

    enrollment = models.ForeignKey(
        Enrollment, on_delete=models.CASCADE, related_name="steps", verbose_name=_("enrollment")
    )
    node_id = models.CharField(_("step"), max_length=100)
    outcome = models.CharField(_("outcome"), max_length=16, choices=StepOutcome.choices)
    detail = models.CharField(_("detail"), max_length=300, blank=True)
    message = models.ForeignKey(
        Message,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("message"),
    )
    at = models.DateTimeField(_("when"), default=timezone.now)

    class Meta:
        verbose_name = _("journey step")
        verbose_name_plural = _("journey steps")
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.node_id}: {self.outcome}"


class NodeStats(models.Model):
    """Per-node counters of a journey version, kept current by the engine in each batch,
    so the stats and the canvas never count the step log."""

    journey = models.ForeignKey(
        Journey, on_delete=models.CASCADE, related_name="node_stats", verbose_name=_("journey")
    )
    version = models.ForeignKey(
        JourneyVersion, on_delete=models.CASCADE, related_name="+", verbose_name=_("version")
    )
    node_id = models.CharField(_("step"), max_length=100)
    entered = models.BigIntegerField(_("entered"), default=0)
    waiting = models.BigIntegerField(_("waiting now"), default=0)
    completed = models.BigIntegerField(_("completed"), default=0)
    exited = models.BigIntegerField(_("exited"), default=0)
    converted = models.BigIntegerField(_("converted"), default=0)
    # {"yes": 10, "no": 4}: how many took each branch (edges on the canvas).
    branches = models.JSONField(_("branches taken"), default=dict)

    class Meta:
        verbose_name = _("journey step numbers")
        verbose_name_plural = _("journey step numbers")
        constraints = [
            models.UniqueConstraint(fields=["version", "node_id"], name="node_stats_unique")
        ]

    def __str__(self) -> str:
        return f"{self.version} {self.node_id}"


class PendingJourneyEvent(models.Model):
    """An event some journey listens for, stored and not yet applied to the journeys.
    Ingest writes the row in the statement that stores the event; the engine deletes it
    in the transaction that applies the event. So each event reaches the journeys exactly
    once, whichever process dies when: a worker that dies before its commit leaves the rows
    here (its transaction is rolled back), and one that commits has applied them."""

    # No constraints to the events or the workspaces: every stored event would pay for
    # their checks (a key-share lock on the event row, and on the workspace row, which every
    # ingest request would share). Each row lives seconds; one whose event has gone (the
    # contact erased meanwhile) is simply deleted when claimed.
    event = models.OneToOneField(
        Event,
        on_delete=models.DO_NOTHING,
        primary_key=True,
        db_constraint=False,
        related_name="+",
        verbose_name=_("event"),
    )
    workspace = models.ForeignKey(
        Workspace,
        on_delete=models.CASCADE,
        db_constraint=False,
        db_index=False,  # covered by pending_event_workspace
        related_name="+",
        verbose_name=_("workspace"),
    )
    created_at = models.DateTimeField(_("stored"), default=timezone.now)

    class Meta:
        verbose_name = _("pending journey event")
        verbose_name_plural = _("pending journey events")
        indexes = [
            # A worker claims a workspace's oldest; the sweep lists the workspaces.
            models.Index(fields=["workspace", "event"], name="pending_event_workspace"),
        ]

    def __str__(self) -> str:
        return f"{self.event_id} ({self.workspace_id})"
