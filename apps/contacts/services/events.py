"""Recording events: the hot path of ingest. Validation is plain Python, contacts are
resolved in a handful of queries per batch, and events go in with one INSERT."""

import json
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.accounts.models import Workspace
from apps.contacts.normalize import (
    MAX_EVENT_NAME_LENGTH,
    InvalidValue,
    normalize_email,
    normalize_identifier,
    parse_timestamp,
)
from apps.contacts.services.identity import (
    ANONYMOUS_ID,
    EMAIL,
    EXTERNAL_ID,
    resolve_contact_ids,
)

MAX_BATCH_EVENTS = 10_000
EVENT_FIELDS = {"external_id", "email", "anonymous_id", "name", "properties", "occurred_at",
                "message_id"}  # fmt: skip


@dataclass
class CleanEvent:
    key: tuple[str, str]  # how the contact is named: (external_id | email | anonymous_id, value)
    name: str
    properties: dict
    occurred_at: object
    message_id: str | None


@dataclass
class IngestResult:
    accepted: int = 0
    rejected: list[dict] = field(default_factory=list)
    stored: int = 0  # accepted minus resent duplicates
    contact_ids: set[int] = field(default_factory=set)

    def as_json(self) -> dict:
        return {"accepted": self.accepted, "rejected": self.rejected}


def clean_event(item, now) -> tuple[CleanEvent | None, dict]:
    """One event of the API contract, checked: (event, {}) or (None, errors by field)."""
    if not isinstance(item, dict):
        return None, {"non_field_errors": [_("Each event must be a JSON object.")]}
    errors: dict[str, list[str]] = {}
    key = None
    for kind, normalizer in (
        (EXTERNAL_ID, normalize_identifier),
        (EMAIL, normalize_email),
        (ANONYMOUS_ID, normalize_identifier),
    ):
        try:
            value = normalizer(item.get(kind))
        except InvalidValue as exc:
            errors[kind] = [str(exc)]
            continue
        if value and key is None:
            key = (kind, value)
    if key is None and not errors:
        errors["non_field_errors"] = [_("Name the contact by external_id, email or anonymous_id.")]
    name = item.get("name")
    if not isinstance(name, str) or not name.strip():
        errors["name"] = [_("The event name is required.")]
    elif len(name) > MAX_EVENT_NAME_LENGTH:
        errors["name"] = [_("At most %(n)d characters.") % {"n": MAX_EVENT_NAME_LENGTH}]
    properties = item.get("properties") or {}
    if not isinstance(properties, dict):
        errors["properties"] = [_("Must be an object.")]
    try:
        occurred_at = parse_timestamp(item.get("occurred_at"), default=now)
    except InvalidValue as exc:
        errors["occurred_at"] = [str(exc)]
    try:
        message_id = normalize_identifier(item.get("message_id"))
    except InvalidValue as exc:
        errors["message_id"] = [str(exc)]
    unknown = set(item) - EVENT_FIELDS
    for name_ in sorted(unknown):
        errors[name_] = [_("Unknown field.")]
    if errors:
        return None, errors
    return CleanEvent(key, name.strip(), properties, occurred_at, message_id), {}


def record_events(workspace: Workspace, items: list, source: str) -> IngestResult:
    """Store a batch of events; each bad item is reported with its index, the rest stored.

    An event whose message_id was seen before is accepted and not stored again.
    """
    now = timezone.now()
    result = IngestResult()
    events: list[CleanEvent] = []
    for index, item in enumerate(items):
        event, errors = clean_event(item, now)
        if errors:
            result.rejected.append({"index": index, "errors": errors})
        else:
            events.append(event)
    result.accepted = len(events)
    if events:
        store_events(workspace, events, source, now, result)
    return result


def store_events(workspace, events: list[CleanEvent], source: str, now, result=None):
    result = result or IngestResult(accepted=len(events))
    with transaction.atomic():
        contact_ids = resolve_contact_ids(workspace, {event.key for event in events})
        ids = [contact_ids[event.key] for event in events]
        with connection.cursor() as cursor:
            cursor.execute(
                """
                INSERT INTO contacts_event
                    (workspace_id, contact_id, name, properties, occurred_at, received_at,
                     source, message_id)
                SELECT %s, e.contact_id, e.name, e.properties::jsonb, e.occurred_at, %s, %s,
                       e.message_id
                FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::timestamptz[], %s::text[])
                     AS e(contact_id, name, properties, occurred_at, message_id)
                ON CONFLICT (workspace_id, message_id) WHERE message_id IS NOT NULL DO NOTHING
                RETURNING contact_id
                """,
                [
                    workspace.pk,
                    now,
                    source,
                    ids,
                    [event.name for event in events],
                    [json.dumps(event.properties) for event in events],
                    [event.occurred_at for event in events],
                    [event.message_id for event in events],
                ],
            )
            stored_for = [row[0] for row in cursor.fetchall()]
            result.stored = len(stored_for)
            result.contact_ids = set(stored_for)
            latest: dict[int, object] = {}
            for contact_id, event in zip(ids, events, strict=True):
                if contact_id not in latest or event.occurred_at > latest[contact_id]:
                    latest[contact_id] = event.occurred_at
            # In id order, so concurrent batches lock shared contacts in the same order.
            seen = dict(sorted(latest.items()))
            cursor.execute(
                """
                UPDATE contacts_contact AS c SET last_seen_at = s.seen
                FROM unnest(%s::bigint[], %s::timestamptz[]) AS s(id, seen)
                WHERE c.id = s.id AND (c.last_seen_at IS NULL OR c.last_seen_at < s.seen)
                """,
                [list(seen), list(seen.values())],
            )
    return result
