import datetime as dt

from django.db import connection, transaction
from django.utils import timezone

from apps.accounts.models import Workspace
from apps.contacts.choices import ConsentChannel, ConsentStatus
from apps.contacts.models import Consent, ConsentChange, Contact
from apps.segments import services as segments


@transaction.atomic
def set_consent(
    contact: Contact, channel: str, status: str, source: str, at=None
) -> tuple[Consent, bool]:
    """Record a contact's consent on a channel; history gains a row when the status changes.

    A statement older than the current one (an import of last year's file) does not
    override it. Answers (consent, changed).
    """
    if channel not in ConsentChannel.values or status not in ConsentStatus.values:
        raise ValueError(f"Unknown consent {channel}/{status}.")
    at = at or timezone.now()
    consent, created = Consent.objects.select_for_update().get_or_create(
        contact=contact,
        channel=channel,
        defaults={"workspace_id": contact.workspace_id, "status": status, "source": source,
                  "updated_at": at},
    )  # fmt: skip
    if not created:
        if consent.status == status or consent.updated_at > at:
            return consent, False
        consent.status, consent.source, consent.updated_at = status, source, at
        consent.save(update_fields=["status", "source", "updated_at"])
    ConsentChange.objects.create(
        workspace_id=contact.workspace_id,
        contact=contact,
        channel=channel,
        status=status,
        source=source,
        changed_at=at,
    )
    segments.contacts_changed(contact.workspace_id, [contact.pk])
    return consent, True


def consent_by_channel(contact: Contact) -> dict[str, Consent | None]:
    """Every channel, with the contact's consent or None (unknown)."""
    current = {c.channel: c for c in contact.consents.all()}
    return {channel: current.get(channel) for channel in ConsentChannel.values}


def set_consent_bulk(
    workspace: Workspace,
    contact_ids: list[int],
    channel: str,
    status: str,
    source: str,
    at: dt.datetime | None = None,
) -> int:
    """set_consent for many contacts of the workspace in two statements; answers how many
    changed. History gains a row only where the status changed, and, as in set_consent,
    a statement older than the current one does not override it."""
    if channel not in ConsentChannel.values or status not in ConsentStatus.values:
        raise ValueError(f"Unknown consent {channel}/{status}.")
    if not contact_ids:
        return 0
    at = at or timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        # Rows are taken in id order so that two imports of overlapping files queue on
        # their locks instead of deadlocking.
        cursor.execute(
            """
            WITH changed AS (
                INSERT INTO contacts_consent
                    (workspace_id, contact_id, channel, status, source, updated_at)
                SELECT c.workspace_id, c.id, %(channel)s, %(status)s, %(source)s, %(at)s
                FROM contacts_contact c
                WHERE c.id = ANY(%(ids)s) AND c.workspace_id = %(workspace)s
                ORDER BY c.id
                ON CONFLICT (contact_id, channel) DO UPDATE
                    SET status = EXCLUDED.status,
                        source = EXCLUDED.source,
                        updated_at = EXCLUDED.updated_at
                    WHERE contacts_consent.status <> EXCLUDED.status
                      AND contacts_consent.updated_at <= EXCLUDED.updated_at
                RETURNING workspace_id, contact_id
            )
            INSERT INTO contacts_consentchange
                (workspace_id, contact_id, channel, status, source, changed_at)
            SELECT workspace_id, contact_id, %(channel)s, %(status)s, %(source)s, %(at)s
            FROM changed
            RETURNING contact_id
            """,
            {
                "channel": channel,
                "status": status,
                "source": source,
                "at": at,
                "ids": list(contact_ids),
                "workspace": workspace.pk,
            },
        )
        changed = [row[0] for row in cursor.fetchall()]
    segments.contacts_changed(workspace.pk, changed)
    return len(changed)
