"""Creating and updating contacts: one at a time or ten thousand at once, matched by
external id, then email."""

from dataclasses import dataclass, field

from django.db import IntegrityError, transaction
from django.db.models import Q
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

    scoped = Contact.objects.for_workspace(workspace)
    external_ids = {v["external_id"] for _i, v in cleaned if v.get("external_id")}
    emails = {v["email"] for _i, v in cleaned if v.get("email")}
    found = list(scoped.filter(Q(external_id__in=external_ids) | Q(email__in=emails)))
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
    Contact.objects.bulk_create(new.values(), batch_size=1000)
    Contact.objects.bulk_update(
        changed.values(), [*PROFILE_FIELDS, "attributes", "updated_at"], batch_size=1000
    )
    result.created, result.updated = len(new), len(changed)
    result.unchanged = len(matched) - len(changed)
    result.contact_ids = [c.pk if isinstance(c, Contact) else None for c in result.contact_ids]
    result.rejected.sort(key=lambda item: item["index"])
    return result


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
    return {}


def _duplicate_identity(contact: Contact) -> dict | None:
    others = Contact.objects.for_workspace(contact.workspace).exclude(pk=contact.pk)
    if contact.external_id and others.filter(external_id=contact.external_id).exists():
        return {"external_id": [_("Another contact already has this external_id.")]}
    if contact.email and others.filter(email=contact.email).exists():
        return {"email": [_("Another contact already has this email.")]}
    return None
