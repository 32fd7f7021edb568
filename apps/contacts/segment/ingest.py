"""Segment messages (https://segment.com/docs/connections/spec/) as Orchestra's identity
calls and events: `userId` is our external_id, `anonymousId` our anonymous_id and
`messageId` the event's message_id."""

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import DataError, IntegrityError, transaction
from django.utils.translation import gettext as _

from apps.accounts.models import Workspace
from apps.contacts.choices import EventSource
from apps.contacts.models import Contact
from apps.contacts.normalize import (
    MAX_EVENT_NAME_LENGTH,
    InvalidValue,
    normalize_identifier,
    normalize_timezone,
    parse_timestamp,
    unstorable_strings,
)
from apps.contacts.services import identity
from apps.contacts.services.events import MAX_BATCH_EVENTS, CleanEvent, store_events
from apps.contacts.services.identity import ANONYMOUS_ID, EXTERNAL_ID
from apps.contacts.services.profiles import apply_profile, clean_profile

MAX_BATCH_MESSAGES = MAX_BATCH_EVENTS
IDENTITY_TYPES = ("identify", "alias")
EVENT_TYPES = ("track", "page", "screen", "group")
# Traits that are profile fields, Segment's camelCase spelling read first.
TRAIT_FIELDS = {
    "email": "email",
    "phone": "phone",
    "firstName": "first_name",
    "first_name": "first_name",
    "lastName": "last_name",
    "last_name": "last_name",
}
PROFILE_TRAITS = {*TRAIT_FIELDS, "name"}
# What an identify or alias may write to the database as text (checked for NUL characters).
IDENTITY_TEXT_FIELDS = ("userId", "anonymousId", "previousId", "traits")
PAGE_CONTEXT_FIELDS = ("url", "path", "title", "referrer")
MAX_LOCALE_LENGTH = 16
IDENTITY_RETRIES = 3


@dataclass
class IngestResult:
    accepted: int = 0
    rejected: list[dict] = field(default_factory=list)


def parse_sent_at(value) -> dt.datetime | None:
    """A message's or a batch's `sentAt`: when the client's clock says it sent it."""
    if value in (None, ""):
        return None
    return parse_timestamp(value)


def ingest_messages(
    workspace: Workspace,
    messages: list,
    received_at: dt.datetime,
    sent_at: dt.datetime | None = None,
    context: dict | None = None,
) -> IngestResult:
    """Apply Segment messages to the workspace; each bad one is reported by its index
    while the others are kept.

    Identify and alias messages are applied first, one at a time in the order sent,
    so that the events of the same batch find the contacts as they are merged. Then
    every track, page, screen and group message is stored with one store_events call.
    `sent_at` and `context` are the batch's, for the messages that have none of their
    own. A resent messageId is accepted and not stored twice.
    """
    reader = MessageReader(received_at, sent_at, context)
    result = IngestResult()
    identity_messages: list[tuple[int, dict]] = []
    events: list[tuple[int, CleanEvent]] = []
    group_ids: list[tuple[int, tuple[str, str], str]] = []  # (index, contact key, groupId)
    for index, message in enumerate(messages):
        kind = message.get("type") if isinstance(message, dict) else None
        if kind in IDENTITY_TYPES:
            identity_messages.append((index, message))
            continue
        build = EVENT_BUILDERS.get(kind) if isinstance(kind, str) else None
        if build is not None:
            event, errors = build(message, reader)
            if not errors:
                events.append((index, event))
                if kind == "group":
                    group_ids.append((index, event.key, reader.group_id(message)))
                continue
        elif isinstance(message, dict) and kind is None:
            errors = {"type": [_("The type is required.")]}
        elif isinstance(message, dict):
            errors = {
                "type": [
                    _("Unknown type %(type)s; one of %(types)s.")
                    % {"type": kind, "types": ", ".join(IDENTITY_TYPES + EVENT_TYPES)}
                ]
            }
        else:
            errors = {"non_field_errors": [_("Each message must be a JSON object.")]}
        result.rejected.append({"index": index, "errors": errors})

    for index, message in identity_messages:
        apply = apply_identify if message["type"] == "identify" else apply_alias
        stored_text = [message.get(name) for name in IDENTITY_TEXT_FIELDS]
        stored_text.append(reader.context(message).get("locale"))
        errors = unstorable_strings(stored_text) or apply(workspace, message, reader)
        if errors:
            result.rejected.append({"index": index, "errors": errors})
        else:
            result.accepted += 1

    if events:
        stored = _store(workspace, events, group_ids, received_at, result)
        result.accepted += stored
    result.rejected.sort(key=lambda item: item["index"])
    return result


def _store(
    workspace: Workspace,
    events: list[tuple[int, CleanEvent]],
    group_ids: list[tuple[int, tuple[str, str], str]],
    received_at: dt.datetime,
    result: IngestResult,
) -> int:
    """Store the events in one go; answers how many were accepted."""
    try:
        with transaction.atomic():
            store_events(workspace, [e for _i, e in events], EventSource.SEGMENT, received_at)
            if group_ids:
                set_group_ids(workspace, group_ids)
        return len(events)
    except (DataError, UnicodeEncodeError) as exc:
        # PostgreSQL refuses NUL characters and lone surrogates in text and jsonb. They are
        # rare, so they are looked for only when the one INSERT fails, not in every event.
        failure = exc
    good, bad = [], set()
    for index, event in events:
        errors = unstorable_strings([event.key[1], event.name, event.properties, event.message_id])
        if errors:
            result.rejected.append({"index": index, "errors": errors})
            bad.add(index)
        else:
            good.append((index, event))
    if not bad:
        raise failure  # not a character problem: let it be seen
    group_ids = [group for group in group_ids if group[0] not in bad]
    return _store(workspace, good, group_ids, received_at, result) if good else 0


def set_group_ids(workspace: Workspace, group_ids: list[tuple[int, tuple[str, str], str]]) -> None:
    """Set each contact's `group_id` attribute from (index, contact key, groupId) in batch
    order; the last group call of the batch wins."""
    contact_ids = identity.find_contact_ids(workspace, {key for _i, key, _group in group_ids})
    latest = {contact_ids[key]: group_id for _i, key, group_id in group_ids}
    contacts = (
        Contact.objects.for_workspace(workspace)
        .filter(pk__in=latest)
        .order_by("pk")  # concurrent batches lock shared contacts in the same order
        .select_for_update()
    )
    for contact in contacts:
        if apply_profile(contact, {"attributes": {"group_id": latest[contact.pk]}}):
            contact.save(update_fields=["attributes", "updated_at"])


class MessageReader:
    """Reads what every message carries: who it is about, when, and in what context."""

    def __init__(
        self, received_at: dt.datetime, sent_at: dt.datetime | None, context: object
    ) -> None:
        self.received_at = received_at
        self.sent_at = sent_at
        self.batch_context = context if isinstance(context, dict) else {}
        self._sent_at_by_text: dict[str, dt.datetime | None] = {}

    def ids(self, message: dict, errors: dict) -> tuple[str | None, str | None]:
        found = []
        for name in ("userId", "anonymousId"):
            try:
                found.append(normalize_identifier(message.get(name)))
            except InvalidValue as exc:
                errors[name] = [str(exc)]
                found.append(None)
        return found[0], found[1]

    def contact_key(self, message: dict, errors: dict) -> tuple[str, str] | None:
        """The contact an event is about: by userId when given (even with an anonymousId,
        which only an identify links), else by anonymousId."""
        user_id, anonymous_id = self.ids(message, errors)
        if user_id:
            return (EXTERNAL_ID, user_id)
        if anonymous_id:
            return (ANONYMOUS_ID, anonymous_id)
        if not errors:
            errors["userId"] = [_("Give a userId or an anonymousId.")]
        return None

    def occurred_at(self, message: dict, errors: dict) -> dt.datetime | None:
        """`timestamp`, else `originalTimestamp`, else now; moved by the difference between
        our clock and the sender's (received_at - sentAt), as Segment does."""
        name = "timestamp" if message.get("timestamp") not in (None, "") else "originalTimestamp"
        text = message.get(name)
        if text in (None, ""):
            return self.received_at
        try:
            occurred_at = parse_timestamp(text)
        except InvalidValue as exc:
            errors[name] = [str(exc)]
            return None
        try:
            sent_at = self.message_sent_at(message)
        except InvalidValue as exc:
            errors["sentAt"] = [str(exc)]
            return None
        if sent_at is None:
            return occurred_at
        try:
            return occurred_at + (self.received_at - sent_at)
        except OverflowError:
            errors[name] = [_("Out of range once corrected for the sender's clock (sentAt).")]
            return None

    def message_sent_at(self, message: dict) -> dt.datetime | None:
        text = message.get("sentAt")
        if text in (None, ""):
            return self.sent_at
        if not isinstance(text, str):
            return parse_sent_at(text)  # raises the reason
        # Clients send one sentAt for many messages; parse it once.
        if text not in self._sent_at_by_text:
            self._sent_at_by_text[text] = parse_sent_at(text)
        return self._sent_at_by_text[text]

    def context(self, message: dict) -> dict:
        own = message.get("context")
        if not isinstance(own, dict):
            return self.batch_context
        return {**self.batch_context, **own} if self.batch_context else own

    def group_id(self, message: dict) -> str | None:
        return normalize_identifier(message.get("groupId"))


def _event(
    message: dict, reader: MessageReader, name: str, properties: dict
) -> tuple[CleanEvent | None, dict]:
    """The CleanEvent for a message with this name and properties, or its errors."""
    errors: dict[str, list[str]] = {}
    key = reader.contact_key(message, errors)
    occurred_at = reader.occurred_at(message, errors)
    try:
        message_id = normalize_identifier(message.get("messageId"))
    except InvalidValue as exc:
        errors["messageId"] = [str(exc)]
    if errors:
        return None, errors
    return CleanEvent(key, name, properties, occurred_at, message_id), {}


def _object(message: dict, name: str, errors: dict) -> dict:
    value = message.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        errors[name] = [_("Must be an object.")]
        return {}
    return value


def build_track(message: dict, reader: MessageReader) -> tuple[CleanEvent | None, dict]:
    errors: dict[str, list[str]] = {}
    name = message.get("event")
    if not isinstance(name, str) or not name.strip():
        errors["event"] = [_("The event name is required.")]
    elif len(name) > MAX_EVENT_NAME_LENGTH:
        errors["event"] = [_("At most %(n)d characters.") % {"n": MAX_EVENT_NAME_LENGTH}]
    properties = _object(message, "properties", errors)
    event, more = _event(message, reader, name.strip() if not errors else "", properties)
    return (None, {**errors, **more}) if errors or more else (event, {})


def build_view(message: dict, reader: MessageReader) -> tuple[CleanEvent | None, dict]:
    """page and screen: the properties with the view's name and category, and the page's
    url, path, title and referrer from context.page (the properties win when both have one)."""
    errors: dict[str, list[str]] = {}
    own = _object(message, "properties", errors)
    page = reader.context(message).get("page")
    properties = {}
    if isinstance(page, dict):
        properties = {key: page[key] for key in PAGE_CONTEXT_FIELDS if page.get(key) is not None}
    properties.update(own)
    for name in ("name", "category"):
        value = message.get(name)
        if value is None:
            continue
        if isinstance(value, str):
            properties[name] = value
        else:
            errors[name] = [_("Must be a string.")]
    event, more = _event(message, reader, message["type"], properties)
    return (None, {**errors, **more}) if errors or more else (event, {})


def build_group(message: dict, reader: MessageReader) -> tuple[CleanEvent | None, dict]:
    errors: dict[str, list[str]] = {}
    try:
        group_id = reader.group_id(message)
    except InvalidValue as exc:
        errors["groupId"] = [str(exc)]
    else:
        if group_id is None:
            errors["groupId"] = [_("The groupId is required.")]
    traits = _object(message, "traits", errors)
    properties = {} if errors else {"group_id": group_id, **traits}
    event, more = _event(message, reader, "group", properties)
    return (None, {**errors, **more}) if errors or more else (event, {})


EVENT_BUILDERS = {"track": build_track, "page": build_view, "screen": build_view,
                  "group": build_group}  # fmt: skip


def apply_identify(workspace: Workspace, message: dict, reader: MessageReader) -> dict:
    """Link the anonymous id to the person and set the traits; answers errors by field."""
    errors: dict[str, list[str]] = {}
    user_id, anonymous_id = reader.ids(message, errors)
    if not errors and not (user_id or anonymous_id):
        errors["userId"] = [_("Give a userId or an anonymousId.")]
    traits = _object(message, "traits", errors)
    if errors:
        return errors
    data, origin = profile_from_traits(traits, reader.context(message), errors)
    values, profile_errors = clean_profile(data)
    for name, problems in profile_errors.items():
        errors[origin.get(name, name)] = problems
    if errors:
        return errors
    return _retrying(
        lambda: identity.identify(
            workspace,
            external_id=user_id,
            anonymous_id=anonymous_id,
            values=values,
            source=EventSource.SEGMENT,
        )
    )


def profile_from_traits(traits: dict, context: dict, errors: dict) -> tuple[dict, dict]:
    """Profile input for clean_profile from the traits, and which trait each field came from
    (for error messages). Traits that are not profile fields become attributes."""
    data: dict = {}
    origin: dict[str, str] = {"attributes": "traits"}
    for trait, name in TRAIT_FIELDS.items():
        if trait in traits and name not in data:
            data[name] = traits[trait]
            origin[name] = f"traits.{trait}"
    full_name = traits.get("name")
    if isinstance(full_name, str):
        first, _sep, last = full_name.strip().partition(" ")
        for name, part in (("first_name", first), ("last_name", last.strip())):
            if name not in data and part:
                data[name] = part
                origin[name] = "traits.name"
    elif full_name is not None:
        errors["traits.name"] = [_("Must be a string.")]
    attributes = {key: value for key, value in traits.items() if key not in PROFILE_TRAITS}
    if attributes:
        data["attributes"] = attributes
    # The client library fills in context.timezone and context.locale by itself; an odd
    # value there (a browser may say Etc/Unknown) is left out rather than failing the call.
    try:
        zone = normalize_timezone(context.get("timezone"))
    except InvalidValue:
        zone = ""
    if zone:
        data["timezone"] = zone
    locale = context.get("locale")
    if isinstance(locale, str) and 0 < len(locale.strip()) <= MAX_LOCALE_LENGTH:
        data["locale"] = locale.strip()
    return data, origin


def apply_alias(workspace: Workspace, message: dict, reader: MessageReader) -> dict:
    """`previousId` (an anonymous id or an old userId) and `userId` are one person."""
    errors: dict[str, list[str]] = {}
    ids = {}
    for name in ("previousId", "userId"):
        try:
            ids[name] = normalize_identifier(message.get(name))
        except InvalidValue as exc:
            errors[name] = [str(exc)]
            continue
        if ids[name] is None:
            errors[name] = [_("This field is required.")]
    if errors:
        return errors
    return _retrying(
        lambda: identity.alias(
            workspace,
            previous_id=ids["previousId"],
            user_id=ids["userId"],
            source=EventSource.SEGMENT,
        )
    )


def _retrying(call: Callable[[], object]) -> dict:
    for attempt in range(IDENTITY_RETRIES):
        try:
            call()
            return {}
        except identity.IdentityError as exc:
            return {"non_field_errors": [str(exc)]}
        except IntegrityError:
            # Two requests introduced the same person at once; the retry finds the winner.
            if attempt == IDENTITY_RETRIES - 1:
                raise
    raise AssertionError("unreachable")
