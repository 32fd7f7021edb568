"""Recording events: the hot path of ingest. Validation is plain Python, contacts are
resolved in a handful of queries per batch, and events go in with one INSERT."""

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.db import DataError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.accounts.models import Workspace
from apps.contacts.choices import EventSource
from apps.contacts.normalize import (
    MAX_EVENT_NAME_LENGTH,
    MAX_ID_LENGTH,
    InvalidValue,
    normalize_identifier,
    parse_timestamp,
    unstorable_strings,
)
from apps.contacts.services.identity import (
    ANONYMOUS_ID,
    EMAIL,
    EXTERNAL_ID,
    array_literal,
    clean_contact_key,
    find_contact_ids,
    resolve_contact_ids,
)
from apps.segments import services as segments

MAX_BATCH_EVENTS = 10_000
EVENT_FIELDS = {"external_id", "email", "anonymous_id", "name", "properties", "occurred_at",
                "message_id"}  # fmt: skip

# One statement stores the events, moves each contact's last_seen_at forward and, when
# some journey listens for some of them, hands those to the journeys: a pending row each
# ({pending}, PENDING_CTE), committed with its event or not at all. Where nothing listens
# (the common case) the statement is the same as without journeys. The events travel as one
# JSON document: psycopg adapts Python lists item by item, some 20 ms of CPU per thousand
# events, against 2 ms for json.dumps of the lot.
STORE_EVENTS_SQL = """
WITH stored AS (
    INSERT INTO contacts_event
        (workspace_id, contact_id, name, properties, occurred_at, received_at, source,
         message_id)
    SELECT %(workspace)s, e.c, e.n, e.p, e.t, %(now)s, %(source)s, e.m
    FROM jsonb_to_recordset(%(rows)s::jsonb) AS e(c bigint, n text, p jsonb, t timestamptz,
                                                 m text)
    ON CONFLICT (workspace_id, message_id) WHERE message_id IS NOT NULL DO NOTHING
    RETURNING id, contact_id, name
), seen AS (
    UPDATE contacts_contact AS c SET last_seen_at = s.seen
    FROM unnest(%(seen_ids)s::bigint[], %(seen_at)s::timestamptz[]) AS s(id, seen)
    WHERE c.id = s.id AND (c.last_seen_at IS NULL OR c.last_seen_at < s.seen)
){pending}
SELECT count(*), array_agg(DISTINCT contact_id), {handed}
FROM stored
"""
# The stored events whose names journeys listen for, written down for the journeys (the
# engine deletes each row in the transaction that applies its event).
PENDING_CTE = """, pending AS (
    INSERT INTO journeys_pendingjourneyevent (event_id, workspace_id, created_at)
    SELECT id, %(workspace)s, %(now)s FROM stored WHERE name = ANY(%(listened)s::text[])
    RETURNING 1
)"""


def _for_journeys(sql: str, listened, **parts) -> str:
    """The statement with the pending rows' part when some journey listens, else without;
    {handed} answers how many were handed over."""
    if listened:
        return sql.format(pending=PENDING_CTE, handed="(SELECT count(*) FROM pending)", **parts)
    return sql.format(pending="", handed="0", **parts)


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
    key, errors = clean_contact_key(item)
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


def _clean_usual_event(item, now) -> CleanEvent | None:
    """The usual event (plain strings, named by external_id or anonymous_id, an ISO time)
    checked in one pass, or None: anything else goes through clean_event, which accepts
    every event this accepts, identically, and words the errors."""
    if type(item) is not dict or not item.keys() <= EVENT_FIELDS or item.get(EMAIL) is not None:
        return None
    external_id, anonymous_id = item.get(EXTERNAL_ID), item.get(ANONYMOUS_ID)
    if anonymous_id is not None:
        if type(anonymous_id) is not str:
            return None
        anonymous_id = anonymous_id.strip()
        if len(anonymous_id) > MAX_ID_LENGTH:
            return None
    if external_id is not None:
        if type(external_id) is not str:
            return None
        external_id = external_id.strip()
        if not external_id or len(external_id) > MAX_ID_LENGTH:
            return None
        key = (EXTERNAL_ID, external_id)
    elif anonymous_id:
        key = (ANONYMOUS_ID, anonymous_id)
    else:
        return None
    name = item.get("name")
    if type(name) is not str or len(name) > MAX_EVENT_NAME_LENGTH:
        return None
    name = name.strip()
    if not name:
        return None
    properties = item.get("properties")
    if properties is None:
        properties = {}
    elif type(properties) is not dict:
        return None
    occurred_at = item.get("occurred_at")
    if occurred_at is None:
        occurred_at = now
    elif type(occurred_at) is str:
        try:
            occurred_at = datetime.fromisoformat(occurred_at.strip())
        except ValueError:
            return None
        if occurred_at.utcoffset() is None:
            occurred_at = occurred_at.replace(tzinfo=UTC)
    else:
        return None
    message_id = item.get("message_id")
    if message_id is not None:
        if type(message_id) is not str:
            return None
        message_id = message_id.strip()
        if len(message_id) > MAX_ID_LENGTH:
            return None
        message_id = message_id or None
    return CleanEvent(key, name, properties, occurred_at, message_id)


def record_events(workspace: Workspace, items: list, source: str) -> IngestResult:
    """Store a batch of events; each bad item is reported with its index, the rest stored.

    An event whose message_id was seen before is accepted and not stored again.
    """
    now = timezone.now()
    result = IngestResult()
    events: list[CleanEvent] = []
    for index, item in enumerate(items):
        event = _clean_usual_event(item, now)
        if event is None:
            event, errors = clean_event(item, now)
            if errors:
                result.rejected.append({"index": index, "errors": errors})
                continue
        events.append(event)
    if events:
        try:
            store_events(workspace, events, source, now, result)
        except (DataError, UnicodeEncodeError):
            # PostgreSQL refuses NUL characters and lone surrogates in text; they are rare,
            # so they are looked for only when the one INSERT fails.
            events = _drop_unstorable(items, events, result)
            if events:
                store_events(workspace, events, source, now, result)
    result.accepted = len(events)
    return result


def _drop_unstorable(items: list, events: list[CleanEvent], result: IngestResult):
    rejected = {item["index"] for item in result.rejected}
    indexes = [index for index in range(len(items)) if index not in rejected]
    good = []
    for index, event in zip(indexes, events, strict=True):
        errors = unstorable_strings([event.key[1], event.name, event.properties, event.message_id])
        if errors:
            result.rejected.append({"index": index, "errors": errors})
        else:
            good.append(event)
    result.rejected.sort(key=lambda item: item["index"])
    return good


# One event for a contact that exists: finding it and storing the event in one statement.
_ONE_EVENT_TARGET = {
    EXTERNAL_ID: "SELECT id FROM contacts_contact "
    "WHERE workspace_id = %(workspace)s AND external_id = %(value)s",
    EMAIL: "SELECT id FROM contacts_contact "
    "WHERE workspace_id = %(workspace)s AND email = %(value)s",
    ANONYMOUS_ID: "SELECT contact_id AS id FROM contacts_anonymousid "
    "WHERE workspace_id = %(workspace)s AND anonymous_id = %(value)s",
}
STORE_ONE_EVENT_SQL = """
WITH target AS ({target} LIMIT 1),
stored AS (
    INSERT INTO contacts_event
        (workspace_id, contact_id, name, properties, occurred_at, received_at, source,
         message_id)
    SELECT %(workspace)s, target.id, %(name)s, %(properties)s::jsonb, %(occurred_at)s, %(now)s,
           %(source)s, %(message_id)s
    FROM target
    ON CONFLICT (workspace_id, message_id) WHERE message_id IS NOT NULL DO NOTHING
    RETURNING id, name
), seen AS (
    UPDATE contacts_contact AS c SET last_seen_at = %(occurred_at)s FROM target
    WHERE c.id = target.id AND (c.last_seen_at IS NULL OR c.last_seen_at < %(occurred_at)s)
){pending}
SELECT (SELECT id FROM target), (SELECT count(*) FROM stored), {handed}
"""


def store_events(workspace, events: list[CleanEvent], source: str, now, result=None):
    result = result or IngestResult(accepted=len(events))
    one = len(events) == 1 and not connection.in_atomic_block
    if one and _store_one_for_known_contact(workspace, events[0], source, now, result):
        return result
    keys = {event.key for event in events}
    contact_ids = find_contact_ids(workspace, keys)
    if len(contact_ids) == len(keys) and not connection.in_atomic_block:
        # Everyone is known and no transaction is open: the one statement is atomic by
        # itself, without the round trips of BEGIN and COMMIT (or of a savepoint).
        _insert_events(workspace, events, contact_ids, source, now, result)
    else:
        with transaction.atomic():
            contact_ids = resolve_contact_ids(workspace, keys, found=contact_ids)
            _insert_events(workspace, events, contact_ids, source, now, result)
    return result


def _journeys():
    """Journeys build on contacts: imported when used, so contacts import on their own."""
    from apps.journeys.services import triggers

    return triggers


def _store_one_for_known_contact(workspace, event: CleanEvent, source, now, result) -> bool:
    """The commonest request, one event of a known contact, in one round trip; False
    (nothing stored) when the contact does not exist yet."""
    journeys = _journeys()
    kind, value = event.key
    listened = journeys.listened_event_names(workspace.pk)
    with connection.cursor() as cursor:
        cursor.execute(
            _for_journeys(STORE_ONE_EVENT_SQL, listened, target=_ONE_EVENT_TARGET[kind]),
            {
                "workspace": workspace.pk,
                "value": value,
                "name": event.name,
                "properties": json.dumps(event.properties),
                "occurred_at": event.occurred_at,
                "now": now,
                "source": source,
                "message_id": event.message_id,
                "listened": list(listened),
            },
        )
        contact_id, stored, for_journeys = cursor.fetchone()
    if contact_id is None:
        return False
    result.stored = stored
    result.contact_ids = {contact_id} if stored else set()
    segments.contacts_changed(workspace.pk, result.contact_ids)
    if for_journeys:
        journeys.wake_for_events(workspace.pk)
    return True


def _insert_events(workspace, events, contact_ids: dict, source: str, now, result) -> None:
    rows = []
    latest: dict[int, datetime] = {}
    for event in events:
        contact_id = contact_ids[event.key]
        occurred_at = event.occurred_at
        rows.append({"c": contact_id, "n": event.name, "p": event.properties,
                     "t": occurred_at.isoformat(), "m": event.message_id})  # fmt: skip
        seen = latest.get(contact_id)
        if seen is None or occurred_at > seen:
            latest[contact_id] = occurred_at
    # In id order, so concurrent batches lock shared contacts in the same order.
    seen_ids = sorted(latest)
    journeys = _journeys()
    listened = journeys.listened_event_names(workspace.pk)
    with connection.cursor() as cursor:
        cursor.execute(
            _for_journeys(STORE_EVENTS_SQL, listened),
            {
                "workspace": workspace.pk,
                "now": now,
                "source": source,
                "rows": json.dumps(rows),
                "seen_ids": array_literal(map(str, seen_ids)),
                "seen_at": array_literal(latest[pk].isoformat() for pk in seen_ids),
                "listened": list(listened),
            },
        )
        stored, stored_for, for_journeys = cursor.fetchone()
    result.stored = stored
    result.contact_ids = set(stored_for or ())
    segments.contacts_changed(workspace.pk, result.contact_ids)
    if for_journeys:
        journeys.wake_for_events(workspace.pk)


SYSTEM_EVENT_SQL = """
WITH stored AS (
    INSERT INTO contacts_event (workspace_id, contact_id, name, properties, occurred_at,
                                received_at, source)
    VALUES (%(workspace)s, %(contact)s, %(name)s, %(properties)s::jsonb, %(occurred_at)s,
            %(now)s, %(source)s)
    RETURNING id, name
){pending}
SELECT {handed}
"""


def record_system_event(workspace_id: int, contact_id: int, name: str, properties: dict,
                        occurred_at=None) -> None:  # fmt: skip
    """An event Orchestra itself observed (a message opened, a link clicked), on the
    contact's timeline; the contact's segments are re-evaluated, and the journeys that
    listen for it get it."""
    journeys = _journeys()
    now = timezone.now()
    listened = [name] if name in journeys.listened_event_names(workspace_id) else []
    with connection.cursor() as cursor:
        cursor.execute(
            _for_journeys(SYSTEM_EVENT_SQL, listened),
            {"workspace": workspace_id, "contact": contact_id, "name": name,
             "properties": json.dumps(properties), "occurred_at": occurred_at or now,
             "now": now, "source": EventSource.SYSTEM, "listened": listened},
        )  # fmt: skip
    segments.contacts_changed(workspace_id, [contact_id])
    if listened:
        journeys.wake_for_events(workspace_id)
