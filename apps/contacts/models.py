from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex, OpClass
from django.db import models
from django.db.models import Q
from django.db.models.functions import Upper
from django.utils.timezone import now
from django.utils.translation import gettext_lazy as _

from apps.accounts.models import Workspace, WorkspaceScopedModel, validate_timezone
from apps.contacts.choices import ConsentChannel, ConsentStatus, EventSource, ImportStatus


class Contact(WorkspaceScopedModel):
    """One customer of a workspace, known by external id, email or only anonymous ids."""

    workspace = models.ForeignKey(
        Workspace,
        on_delete=models.CASCADE,
        verbose_name=_("workspace"),
        db_index=False,  # covered by contact_workspace_newest
    )

    external_id = models.CharField(_("external id"), max_length=255, null=True, blank=True)
    email = models.EmailField(_("email"), max_length=254, null=True, blank=True)
    phone = models.CharField(_("phone"), max_length=20, null=True, blank=True)
    first_name = models.CharField(_("first name"), max_length=100, blank=True)
    last_name = models.CharField(_("last name"), max_length=100, blank=True)
    timezone = models.CharField(
        _("time zone"), max_length=64, blank=True, validators=[validate_timezone]
    )
    locale = models.CharField(_("locale"), max_length=16, blank=True)
    attributes = models.JSONField(_("attributes"), default=dict, blank=True)
    created_at = models.DateTimeField(_("created"), default=now)
    updated_at = models.DateTimeField(_("updated"), default=now)
    last_seen_at = models.DateTimeField(_("last seen"), null=True, blank=True)

    class Meta:
        verbose_name = _("contact")
        verbose_name_plural = _("contacts")
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "external_id"],
                condition=Q(external_id__isnull=False),
                name="contact_unique_external_id",
            ),
            models.UniqueConstraint(
                fields=["workspace", "email"],
                condition=Q(email__isnull=False),
                name="contact_unique_email",
            ),
        ]
        indexes = [
            models.Index(fields=["workspace", "-id"], name="contact_workspace_newest"),
            GinIndex(
                fields=["attributes"], name="contact_attributes", opclasses=["jsonb_path_ops"]
            ),
            # Search is by prefix (istartswith), which these serve at any size.
            models.Index(
                OpClass(Upper("email"), name="text_pattern_ops"), name="contact_email_prefix"
            ),
            models.Index(
                OpClass(Upper("first_name"), name="text_pattern_ops"), name="contact_first_prefix"
            ),
            models.Index(
                OpClass(Upper("last_name"), name="text_pattern_ops"), name="contact_last_prefix"
            ),
        ]

    def __str__(self) -> str:
        return self.display_name

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    @property
    def display_name(self) -> str:
        return self.full_name or self.email or self.external_id or f"#{self.pk} ({_('anonymous')})"


class AnonymousId(WorkspaceScopedModel):
    """A device or browser id seen before the person was known; it points at their contact."""

    anonymous_id = models.CharField(_("anonymous id"), max_length=255)
    contact = models.ForeignKey(
        Contact, on_delete=models.CASCADE, related_name="anonymous_ids", verbose_name=_("contact")
    )
    created_at = models.DateTimeField(_("first seen"), default=now)

    class Meta:
        verbose_name = _("anonymous id")
        verbose_name_plural = _("anonymous ids")
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "anonymous_id"], name="anonymous_id_unique"
            )
        ]

    def __str__(self) -> str:
        return self.anonymous_id


class ContactMerge(WorkspaceScopedModel):
    """The record of a profile merged into another (identify or alias)."""

    contact = models.ForeignKey(
        Contact, on_delete=models.CASCADE, related_name="merges", verbose_name=_("kept contact")
    )
    merged_contact_id = models.BigIntegerField(_("merged contact id"))
    merged_anonymous_ids = ArrayField(
        models.CharField(max_length=255), default=list, verbose_name=_("anonymous ids moved")
    )
    events_moved = models.PositiveIntegerField(_("events moved"), default=0)
    source = models.CharField(_("source"), max_length=16, choices=EventSource.choices)
    merged_at = models.DateTimeField(_("merged"), default=now)

    class Meta:
        verbose_name = _("contact merge")
        verbose_name_plural = _("contact merges")
        ordering = ["-merged_at"]

    def __str__(self) -> str:
        return f"#{self.merged_contact_id} → #{self.contact_id}"


class Event(WorkspaceScopedModel):
    """Something a contact did or that happened to them, at `occurred_at`."""

    workspace = models.ForeignKey(
        Workspace,
        on_delete=models.CASCADE,
        verbose_name=_("workspace"),
        # Covered by event_name_time. No constraint either: the contact's foreign key keeps
        # every event in a live workspace, and each stored event is spared a second check.
        db_index=False,
        db_constraint=False,
    )

    contact = models.ForeignKey(
        Contact,
        on_delete=models.CASCADE,
        related_name="events",
        verbose_name=_("contact"),
        db_index=False,  # covered by event_contact_name_time
    )
    name = models.CharField(_("name"), max_length=200)
    properties = models.JSONField(_("properties"), default=dict, blank=True)
    occurred_at = models.DateTimeField(_("occurred"))
    received_at = models.DateTimeField(_("received"), default=now)
    source = models.CharField(
        _("source"), max_length=16, choices=EventSource.choices, default=EventSource.API
    )
    message_id = models.CharField(_("message id"), max_length=255, null=True, blank=True)

    class Meta:
        verbose_name = _("event")
        verbose_name_plural = _("events")
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "message_id"],
                condition=Q(message_id__isnull=False),
                name="event_unique_message_id",
            )
        ]
        indexes = [
            # "this contact's events of this name since T" (segments, journeys, timeline)
            models.Index(fields=["contact", "name", "occurred_at"], name="event_contact_name_time"),
            models.Index(fields=["contact", "-occurred_at"], name="event_contact_timeline"),
            models.Index(fields=["workspace", "name", "occurred_at"], name="event_name_time"),
        ]

    def __str__(self) -> str:
        return f"{self.name} @ {self.occurred_at:%Y-%m-%d %H:%M}"


class Consent(WorkspaceScopedModel):
    """A contact's current permission to be messaged on one channel."""

    contact = models.ForeignKey(
        Contact, on_delete=models.CASCADE, related_name="consents", verbose_name=_("contact")
    )
    channel = models.CharField(_("channel"), max_length=16, choices=ConsentChannel.choices)
    status = models.CharField(
        _("status"), max_length=16, choices=ConsentStatus.choices, default=ConsentStatus.UNKNOWN
    )
    source = models.CharField(_("source"), max_length=100, blank=True)
    updated_at = models.DateTimeField(_("changed"), default=now)

    class Meta:
        verbose_name = _("consent")
        verbose_name_plural = _("consents")
        constraints = [
            models.UniqueConstraint(fields=["contact", "channel"], name="consent_unique_channel")
        ]
        indexes = [models.Index(fields=["workspace", "channel", "status"], name="consent_status")]

    def __str__(self) -> str:
        return f"{self.channel}: {self.status}"


class ConsentChange(WorkspaceScopedModel):
    """Append-only history of consent: who said what, through which source, when."""

    contact = models.ForeignKey(
        Contact, on_delete=models.CASCADE, related_name="consent_changes", verbose_name=_("contact")
    )
    channel = models.CharField(_("channel"), max_length=16, choices=ConsentChannel.choices)
    status = models.CharField(_("status"), max_length=16, choices=ConsentStatus.choices)
    source = models.CharField(_("source"), max_length=100, blank=True)
    changed_at = models.DateTimeField(_("changed"), default=now)

    class Meta:
        verbose_name = _("consent change")
        verbose_name_plural = _("consent changes")
        ordering = ["-changed_at", "-id"]
        indexes = [models.Index(fields=["contact", "-changed_at"], name="consent_change_contact")]

    def __str__(self) -> str:
        return f"{self.channel} → {self.status} ({self.source})"


class ContactList(WorkspaceScopedModel):
    """A static list: contacts are added and removed explicitly (imports, UI, API, journeys)."""

    name = models.CharField(_("name"), max_length=100)
    slug = models.SlugField(_("slug"), max_length=100)
    description = models.TextField(_("description"), blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("list")
        verbose_name_plural = _("lists")
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "slug"], name="contact_list_unique_slug")
        ]

    def __str__(self) -> str:
        return self.name


class ListMembership(WorkspaceScopedModel):
    contact_list = models.ForeignKey(
        ContactList, on_delete=models.CASCADE, related_name="memberships", verbose_name=_("list")
    )
    contact = models.ForeignKey(
        Contact,
        on_delete=models.CASCADE,
        related_name="list_memberships",
        verbose_name=_("contact"),
    )
    added_at = models.DateTimeField(_("added"), default=now)
    source = models.CharField(_("source"), max_length=16, choices=EventSource.choices)

    class Meta:
        verbose_name = _("list membership")
        verbose_name_plural = _("list memberships")
        constraints = [
            models.UniqueConstraint(fields=["contact_list", "contact"], name="list_member_unique")
        ]
        indexes = [models.Index(fields=["contact"], name="list_member_contact")]

    def __str__(self) -> str:
        return f"{self.contact_id} in {self.contact_list_id}"


class ErasureRecord(WorkspaceScopedModel):
    """Proof that a contact was erased, keeping nothing that identifies the person."""

    contact_id_erased = models.BigIntegerField(_("erased contact id"))
    events_deleted = models.PositiveIntegerField(_("events deleted"))
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("requested by"),
    )
    via = models.CharField(_("via"), max_length=16, choices=EventSource.choices)
    erased_at = models.DateTimeField(_("erased"), default=now)

    class Meta:
        verbose_name = _("erasure record")
        verbose_name_plural = _("erasure records")
        ordering = ["-erased_at"]

    def __str__(self) -> str:
        return f"#{self.contact_id_erased} erased {self.erased_at:%Y-%m-%d}"


def import_upload_path(instance: "ContactImport", filename: str) -> str:
    return f"imports/{instance.workspace_id}/{now():%Y%m%d%H%M%S}-{filename}"


class ContactImport(WorkspaceScopedModel):
    """A CSV file being imported: its column mapping, progress and the rows that failed."""

    file = models.FileField(_("file"), upload_to=import_upload_path)
    original_name = models.CharField(_("file name"), max_length=255)
    status = models.CharField(
        _("status"), max_length=16, choices=ImportStatus.choices, default=ImportStatus.UPLOADED
    )
    # {"columns": {"Email": {"field": "email"}, "Plan": {"attribute": "plan", "type": "string"}}}
    mapping = models.JSONField(_("column mapping"), default=dict, blank=True)
    contact_list = models.ForeignKey(
        ContactList,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("add to list"),
    )
    consent_channel = models.CharField(
        _("consent channel"), max_length=16, choices=ConsentChannel.choices, blank=True
    )
    consent_status = models.CharField(
        _("consent status"), max_length=16, choices=ConsentStatus.choices, blank=True
    )
    consent_source = models.CharField(_("consent source"), max_length=100, blank=True)
    total_rows = models.PositiveIntegerField(_("rows"), default=0)
    processed_rows = models.PositiveIntegerField(_("rows processed"), default=0)
    created_count = models.PositiveIntegerField(_("created"), default=0)
    updated_count = models.PositiveIntegerField(_("updated"), default=0)
    unchanged_count = models.PositiveIntegerField(_("unchanged"), default=0)
    failed_count = models.PositiveIntegerField(_("failed"), default=0)
    errors = models.JSONField(_("failed rows"), default=list, blank=True)  # [{"line", "reason"}]
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        verbose_name = _("contact import")
        verbose_name_plural = _("contact imports")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.original_name

    @property
    def progress_percent(self) -> int:
        if not self.total_rows:
            return 100 if self.status == ImportStatus.DONE else 0
        return min(100, round(100 * self.processed_rows / self.total_rows))
