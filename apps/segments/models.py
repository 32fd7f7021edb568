from django.conf import settings
from django.db import models
from django.utils.timezone import now
from django.utils.translation import gettext_lazy as _

from apps.accounts.models import WorkspaceScopedModel
from apps.contacts.models import Contact


class Segment(WorkspaceScopedModel):
    """A rule over contacts whose membership Orchestra keeps current as contacts change."""

    name = models.CharField(_("name"), max_length=100)
    slug = models.SlugField(_("slug"), max_length=100)
    description = models.TextField(_("description"), blank=True)
    rule = models.JSONField(_("rule"))
    member_count = models.PositiveIntegerField(_("members"), default=0, editable=False)
    refreshed_at = models.DateTimeField(_("last full refresh"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("segment")
        verbose_name_plural = _("segments")
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "slug"], name="segment_unique_slug")
        ]

    def __str__(self) -> str:
        return self.name


class SegmentMembership(WorkspaceScopedModel):
    # No index of their own: (segment, contact) is unique and segment_member_contact
    # covers contact lookups; every extra index slows building a large segment.
    segment = models.ForeignKey(
        Segment,
        on_delete=models.CASCADE,
        related_name="memberships",
        verbose_name=_("segment"),
        db_index=False,
    )
    contact = models.ForeignKey(
        Contact,
        on_delete=models.CASCADE,
        related_name="segment_memberships",
        verbose_name=_("contact"),
        db_index=False,
    )
    entered_at = models.DateTimeField(_("entered"), default=now)

    class Meta:
        verbose_name = _("segment membership")
        verbose_name_plural = _("segment memberships")
        constraints = [
            models.UniqueConstraint(fields=["segment", "contact"], name="segment_member_unique")
        ]
        indexes = [models.Index(fields=["contact"], name="segment_member_contact")]

    def __str__(self) -> str:
        return f"{self.contact_id} in {self.segment_id}"


class SegmentSize(models.Model):
    """The segment's size after each full refresh, for the size-over-time chart."""

    segment = models.ForeignKey(
        Segment, on_delete=models.CASCADE, related_name="sizes", verbose_name=_("segment")
    )
    measured_at = models.DateTimeField(_("measured"), default=now)
    size = models.PositiveIntegerField(_("size"))

    class Meta:
        verbose_name = _("segment size")
        verbose_name_plural = _("segment sizes")
        ordering = ["measured_at"]
        indexes = [models.Index(fields=["segment", "measured_at"], name="segment_size_time")]

    def __str__(self) -> str:
        return f"{self.segment_id}: {self.size}"
