from django.db import models
from django.utils.translation import gettext_lazy as _


class JourneyStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    LIVE = "live", _("Live")
    PAUSED = "paused", _("Paused")
    ARCHIVED = "archived", _("Archived")


class EnrollmentState(models.TextChoices):
    """Active: being moved on now or due at `due_at`; waiting: for an event (or its
    timeout at `due_at`); the rest are final."""

    ACTIVE = "active", _("Moving")
    WAITING = "waiting", _("Waiting for an event")
    COMPLETED = "completed", _("Completed")
    EXITED = "exited", _("Exited")


class StepOutcome(models.TextChoices):
    ENTERED = "entered", _("Entered the journey")
    DONE = "done", _("Done")
    SENT = "sent", _("Message queued")
    NOT_SENT = "not_sent", _("No message (no reachable channel)")
    WAITING = "waiting", _("Waiting")
    RESUMED = "resumed", _("The awaited event arrived")
    TIMED_OUT = "timed_out", _("Timed out")
    BRANCHED = "branched", _("Took a branch")
    CONVERTED = "converted", _("Reached the goal")
    COMPLETED = "completed", _("Completed the journey")
    EXITED = "exited", _("Exited")
    MOVED = "moved", _("Moved to a new version")
    HOLDOUT = "holdout", _("In the holdout group (receives nothing)")
    FAILED = "failed", _("Failed")
