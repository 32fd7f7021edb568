"""Right of access (export everything about one contact) and erasure (delete it, keep proof)."""

from django.db import transaction

from apps.contacts.models import Contact, ErasureRecord, Event


def export_contact(contact: Contact) -> dict:
    """Everything Orchestra holds about one person, as JSON-ready data."""
    return {
        "contact": {
            "id": contact.pk,
            "external_id": contact.external_id,
            "email": contact.email,
            "phone": contact.phone,
            "first_name": contact.first_name,
            "last_name": contact.last_name,
            "timezone": contact.timezone,
            "locale": contact.locale,
            "attributes": contact.attributes,
            "created_at": contact.created_at.isoformat(),
            "updated_at": contact.updated_at.isoformat(),
            "last_seen_at": contact.last_seen_at.isoformat() if contact.last_seen_at else None,
        },
        "anonymous_ids": list(contact.anonymous_ids.values_list("anonymous_id", flat=True)),
        "consent": [
            {"channel": c.channel, "status": c.status, "source": c.source,
             "updated_at": c.updated_at.isoformat()}
            for c in contact.consents.order_by("channel")
        ],
        "consent_history": [
            {"channel": c.channel, "status": c.status, "source": c.source,
             "changed_at": c.changed_at.isoformat()}
            for c in contact.consent_changes.order_by("changed_at", "id")
        ],
        "lists": [m.contact_list.name for m in contact.list_memberships.select_related(
            "contact_list").order_by("contact_list__name")],
        "events": [
            {"name": e.name, "properties": e.properties, "occurred_at": e.occurred_at.isoformat(),
             "source": e.source, "message_id": e.message_id}
            for e in contact.events.order_by("occurred_at", "id").iterator(chunk_size=2000)
        ],
        "merges": [
            {"merged_contact_id": m.merged_contact_id, "merged_at": m.merged_at.isoformat(),
             "anonymous_ids": m.merged_anonymous_ids}
            for m in contact.merges.all()
        ],
    }  # fmt: skip


@transaction.atomic
def erase_contact(contact: Contact, requested_by=None, via: str = "ui") -> ErasureRecord:
    """Delete the contact with its events, consent, lists and ids; keep a record without PII."""
    events_deleted = Event.objects.filter(contact=contact).count()
    record = ErasureRecord.objects.create(
        workspace_id=contact.workspace_id,
        contact_id_erased=contact.pk,
        events_deleted=events_deleted,
        requested_by=requested_by,
        via=via,
    )
    contact.delete()
    return record
