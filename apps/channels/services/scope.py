"""What a template sees: plain data about the contact (with its segments), the event that
caused the message, and the workspace. Built for a whole batch with a few queries."""

from apps.channels.models import Message
from apps.segments.models import SegmentMembership


def contact_data(contact, segment_slugs: list[str]) -> dict:
    name = " ".join(part for part in (contact.first_name, contact.last_name) if part)
    return {
        "id": contact.pk,
        "external_id": contact.external_id or "",
        "email": contact.email or "",
        "phone": contact.phone or "",
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "name": name,
        "timezone": contact.timezone,
        "locale": contact.locale,
        "attributes": contact.attributes or {},
        "segments": segment_slugs,
        "created_at": contact.created_at.isoformat() if contact.created_at else "",
    }


def segment_slugs(contact_ids) -> dict[int, list[str]]:
    slugs: dict[int, list[str]] = {pk: [] for pk in contact_ids}
    rows = SegmentMembership.objects.filter(contact_id__in=slugs).values_list(
        "contact_id", "segment__slug"
    )
    for contact_id, slug in rows:
        slugs[contact_id].append(slug)
    return slugs


def scope_for(contact, workspace, event: dict | None = None, slugs=None) -> dict:
    """One contact's scope (previews and test sends)."""
    if slugs is None:
        slugs = segment_slugs([contact.pk])[contact.pk]
    return {
        "contact": contact_data(contact, slugs),
        "event": event or {},
        "workspace": {"name": workspace.name},
    }


def message_scopes(messages: list[Message]) -> dict[int, dict]:
    """{message id: scope} for a batch of messages."""
    slugs = segment_slugs({m.contact_id for m in messages})
    return {
        m.pk: scope_for(
            m.contact, m.channel.workspace, (m.context or {}).get("event"), slugs[m.contact_id]
        )
        for m in messages
    }
