from django.db import transaction
from django.utils import timezone

from apps.contacts.choices import ConsentChannel, ConsentStatus
from apps.contacts.models import Consent, ConsentChange, Contact


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
    return consent, True


def consent_by_channel(contact: Contact) -> dict[str, Consent | None]:
    """Every channel, with the contact's consent or None (unknown)."""
    current = {c.channel: c for c in contact.consents.all()}
    return {channel: current.get(channel) for channel in ConsentChannel.values}
