"""Creating and updating contacts: one at a time or ten thousand at once, matched by
external id, then email."""

import json
from dataclasses import dataclass, field

from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.accounts.models import Workspace
from apps.contacts.models import Contact
from apps.contacts.normalize import (
    InvalidValue,
    check_attributes,
    normalize_email,
    normalize_identifier,
    normalize_phone,
    normalize_text,
    normalize_timezone,
)
from apps.contacts.services.identity import array_literal
from apps.segments import services as segments

MAX_BULK_CONTACTS = 10_000
PROFILE_FIELDS = ["external_id", "email", "phone", "first_name", "last_name", "timezone", "locale"]


FIELD_NORMALIZERS = {
    "external_id": normalize_identifier,
    "email": normalize_email,
    "phone": normalize_phone,
    "first_name": lambda value: normalize_text(value, 100),
    "last_name": lambda value: normalize_text(value, 100),
    "timezone": normalize_timezone,
    "locale": lambda value: normalize_text(value, 16),
    "attributes": check_attributes,
}
WRITE_RETRIES = 3


def clean_profile(data) -> tuple[dict, dict]:
    """Normalise the profile fields present in `data`: (values, errors by field)."""
    if not isinstance(data, dict):
        return {}, {"non_field_errors": [_("Each contact must be a JSON object.")]}
    values, errors = {}, {}
    for name, normalizer in FIELD_NORMALIZERS.items():
        if name not in data:
            continue
        try:
            values[name] = normalizer(data[name])
        except InvalidValue as exc:
            errors[name] = [str(exc)]
    unknown = set(data) - set(FIELD_NORMALIZERS) - {"id", "created_at", "updated_at"}
    for name in sorted(unknown):
        errors[name] = [_("Unknown field; put custom data in attributes.")]
    return values, errors


def apply_profile(contact: Contact, values: dict) -> bool:
    """Set the given values on the contact (attributes merge; a null attribute removes it).

    Answers whether anything changed, so an identical re-send writes nothing.
    """
    changed = False
    for name, value in values.items():
        if name == "attributes":
            merged = dict(contact.attributes)
            for key, item in value.items():
                if item is None:
                    merged.pop(key, None)
                else:
                    merged[key] = item
            if merged != contact.attributes:
                contact.attributes = merged
                changed = True
        elif getattr(contact, name) != value:
            setattr(contact, name, value)
            changed = True
    if changed:
        contact.updated_at = timezone.now()
    return changed


@dataclass
class UpsertResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[dict] = field(default_factory=list)
    contact_ids: list[int | None] = field(default_factory=list)  # per item, None when rejected

    def as_json(self) -> dict:
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": self.rejected,
        }


def upsert_contacts(workspace: Workspace, items: list) -> UpsertResult:
    """Create or update many contacts, each matched by external_id, else by email.

    Each item that cannot be stored is reported with its index; the others are
    written. Concurrent upserts of the same new contact are retried, not lost.
    """
    for attempt in range(WRITE_RETRIES):
        try:
            with transaction.atomic():
                return _upsert_contacts(workspace, items)
        except IntegrityError:
            if attempt == WRITE_RETRIES - 1:
                raise
    raise AssertionError("unreachable")


def _upsert_contacts(workspace: Workspace, items: list) -> UpsertResult:
    result = UpsertResult(contact_ids=[None] * len(items))
    cleaned: list[tuple[int, dict]] = []
    for index, item in enumerate(items):
        values, errors = clean_profile(item)
        if not errors and not (values.get("external_id") or values.get("email")):
            errors = {"non_field_errors": [_("Give an external_id or an email to match on.")]}
        if errors:
            result.rejected.append({"index": index, "errors": errors})
        else:
            cleaned.append((index, values))

    external_ids = {v["external_id"] for _i, v in cleaned if v.get("external_id")}
    emails = {v["email"] for _i, v in cleaned if v.get("email")}
    found = _find_contacts(workspace, external_ids, emails)
    # One instance per row, so a contact found by both keys is recognised as itself.
    by_external_id = {c.external_id: c for c in found if c.external_id}
    by_email = {c.email: c for c in found if c.email}

    # Keyed by id(contact): several items may name one contact; counts are of contacts.
    new: dict[int, Contact] = {}
    matched: dict[int, Contact] = {}
    changed: dict[int, Contact] = {}
    for index, values in cleaned:
        contact = by_external_id.get(values.get("external_id")) or by_email.get(values.get("email"))
        problem = _identity_conflict(contact, values, by_email)
        if problem:
            result.rejected.append({"index": index, "errors": problem})
            continue
        if contact is None:
            contact = Contact(workspace=workspace)
            new[id(contact)] = contact
        elif id(contact) not in new:
            matched[id(contact)] = contact
        old_email = contact.email
        if apply_profile(contact, values) and id(contact) not in new:
            changed[id(contact)] = contact
        if contact.external_id:
            by_external_id[contact.external_id] = contact
        if old_email and old_email != contact.email:
            by_email.pop(old_email, None)
        if contact.email:
            by_email[contact.email] = contact
        result.contact_ids[index] = contact
    _insert_contacts(list(new.values()))
    _update_contacts(list(changed.values()))
    result.created, result.updated = len(new), len(changed)
    result.unchanged = len(matched) - len(changed)
    segments.contacts_changed(workspace.pk, [c.pk for c in [*new.values(), *changed.values()]])
    result.contact_ids = [c.pk if isinstance(c, Contact) else None for c in result.contact_ids]
    result.rejected.sort(key=lambda item: item["index"])
    return result


# Two lists joined by OR are searched value by value for every row (PostgreSQL hashes such
# a list only when it stands alone): ten thousand ids took seconds, the UNION milliseconds.
FIND_CONTACTS_SQL = """
SELECT * FROM contacts_contact WHERE id IN (
    SELECT id FROM contacts_contact WHERE workspace_id = %s AND external_id = ANY(%s::text[])
    UNION
    SELECT id FROM contacts_contact WHERE workspace_id = %s AND email = ANY(%s::text[])
)
"""


def _find_contacts(workspace: Workspace, external_ids: set, emails: set) -> list[Contact]:
    """The workspace's contacts with any of these external ids or emails, in one query whose
    values travel as array literals (the ORM's IN lists cost more than the lookup)."""
    if not external_ids and not emails:
        return []
    params = [workspace.pk, array_literal(external_ids), workspace.pk, array_literal(emails)]
    return list(Contact.objects.raw(FIND_CONTACTS_SQL, params))


# New and changed profiles go to PostgreSQL as one JSON document each: bulk_create and
# bulk_update adapt every value as its own parameter, and bulk_update's CASE per field
# compares each row with every id of its batch.
INSERT_CONTACTS_SQL = """
INSERT INTO contacts_contact
    (workspace_id, external_id, email, phone, first_name, last_name, timezone, locale,
     attributes, created_at, updated_at, last_seen_at)
SELECT c.workspace_id, c.external_id, c.email, c.phone, c.first_name, c.last_name, c.timezone,
       c.locale, c.attributes, c.created_at, c.updated_at, c.last_seen_at
FROM jsonb_to_recordset(%s::jsonb) AS c(
    workspace_id bigint, external_id text, email text, phone text, first_name text,
    last_name text, timezone text, locale text, attributes jsonb, created_at timestamptz,
    updated_at timestamptz, last_seen_at timestamptz)
RETURNING id, external_id, email
"""
UPDATE_CONTACTS_SQL = """
UPDATE contacts_contact AS c
SET external_id = u.external_id, email = u.email, phone = u.phone, first_name = u.first_name,
    last_name = u.last_name, timezone = u.timezone, locale = u.locale,
    attributes = u.attributes, updated_at = u.updated_at
FROM jsonb_to_recordset(%s::jsonb) AS u(
    id bigint, external_id text, email text, phone text, first_name text, last_name text,
    timezone text, locale text, attributes jsonb, updated_at timestamptz)
WHERE c.id = u.id
"""


def _profile_row(contact: Contact) -> dict:
    row = {name: getattr(contact, name) for name in PROFILE_FIELDS}
    row["attributes"] = contact.attributes
    row["updated_at"] = contact.updated_at.isoformat()
    return row


def _insert_contacts(contacts: list[Contact]) -> None:
    """Create the contacts and give each its id. A unique violation (a concurrent upsert
    created one of them) raises IntegrityError, as bulk_create would."""
    if not contacts:
        return
    rows = []
    for contact in contacts:
        row = _profile_row(contact)
        row["workspace_id"] = contact.workspace_id
        row["created_at"] = contact.created_at.isoformat()
        row["last_seen_at"] = contact.last_seen_at and contact.last_seen_at.isoformat()
        rows.append(row)
    by_external_id = {c.external_id: c for c in contacts if c.external_id is not None}
    by_email = {c.email: c for c in contacts if c.external_id is None}
    with connection.cursor() as cursor:
        cursor.execute(INSERT_CONTACTS_SQL, [json.dumps(rows)])
        for pk, external_id, email in cursor.fetchall():
            contact = by_external_id[external_id] if external_id is not None else by_email[email]
            contact.pk = pk
            contact._state.adding = False
            contact._state.db = connection.alias


def _update_contacts(contacts: list[Contact]) -> None:
    if not contacts:
        return
    # In id order, which the plan (a loop over the document) keeps: concurrent upserts then
    # lock the contacts they share in the same order.
    rows = [{"id": c.pk, **_profile_row(c)} for c in sorted(contacts, key=lambda c: c.pk)]
    with connection.cursor() as cursor:
        cursor.execute(UPDATE_CONTACTS_SQL, [json.dumps(rows)])


def _identity_conflict(contact: Contact | None, values: dict, by_email: dict) -> dict | None:
    """An item may not take an email that another contact already has, nor re-key a contact."""
    if contact is None:
        return None
    new_external_id = values.get("external_id")
    if new_external_id and contact.external_id and contact.external_id != new_external_id:
        return {
            "email": [
                _("This email belongs to the contact with external_id %(other)s.")
                % {"other": contact.external_id}
            ]
        }
    owner = by_email.get(values.get("email"))
    if owner is not None and owner is not contact:
        return {"email": [_("Another contact already has this email.")]}
    return None


def create_contact(workspace: Workspace, data: dict) -> tuple[Contact | None, dict]:
    """One new contact from API or UI input: (contact, {}) or (None, errors by field)."""
    values, errors = clean_profile(data)
    if errors:
        return None, errors
    contact = Contact(workspace=workspace)
    apply_profile(contact, values)
    problem = _duplicate_identity(contact)
    if problem:
        return None, problem
    contact.save()
    segments.contacts_changed(workspace.pk, [contact.pk])
    return contact, {}


def update_contact(contact: Contact, data: dict) -> dict:
    """Change some fields of one contact; answers the errors by field (empty when saved)."""
    values, errors = clean_profile(data)
    if errors:
        return errors
    if not apply_profile(contact, values):
        return {}
    problem = _duplicate_identity(contact)
    if problem:
        contact.refresh_from_db()
        return problem
    contact.save(update_fields=[*values.keys() - {"attributes"}, "attributes", "updated_at"])
    segments.contacts_changed(contact.workspace_id, [contact.pk])
    return {}


def _duplicate_identity(contact: Contact) -> dict | None:
    others = Contact.objects.for_workspace(contact.workspace).exclude(pk=contact.pk)
    if contact.external_id and others.filter(external_id=contact.external_id).exists():
        return {"external_id": [_("Another contact already has this external_id.")]}
    if contact.email and others.filter(email=contact.email).exists():
        return {"email": [_("Another contact already has this email.")]}
    return None
