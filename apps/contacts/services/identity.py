"""Who is this? Finding contacts by external id, email or anonymous id, creating the
missing ones in bulk, and merging an anonymous profile into a known one."""

import json

from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.accounts.models import Workspace
from apps.contacts.choices import EventSource
from apps.contacts.models import (
    AnonymousId,
    Consent,
    Contact,
    ContactMerge,
    Event,
    ListMembership,
)
from apps.contacts.normalize import InvalidValue, normalize_email, normalize_identifier
from apps.segments import services as segments

EXTERNAL_ID, EMAIL, ANONYMOUS_ID = "external_id", "email", "anonymous_id"


FIND_CONTACT_IDS_SQL = {
    EXTERNAL_ID: "SELECT 'external_id', external_id, id FROM contacts_contact "
    "WHERE workspace_id = %s AND external_id = ANY(%s::text[])",
    EMAIL: "SELECT 'email', email, id FROM contacts_contact "
    "WHERE workspace_id = %s AND email = ANY(%s::text[])",
    ANONYMOUS_ID: "SELECT 'anonymous_id', anonymous_id, contact_id FROM contacts_anonymousid "
    "WHERE workspace_id = %s AND anonymous_id = ANY(%s::text[])",
}


def clean_contact_key(data: dict) -> tuple[tuple[str, str] | None, dict[str, list[str]]]:
    """How an API item names its contact: (kind, value) of the first of external_id,
    email and anonymous_id it gives, and the errors by field (every given one is checked)."""
    errors: dict[str, list[str]] = {}
    key = None
    for kind, normalizer in (
        (EXTERNAL_ID, normalize_identifier),
        (EMAIL, normalize_email),
        (ANONYMOUS_ID, normalize_identifier),
    ):
        try:
            value = normalizer(data.get(kind))
        except InvalidValue as error:
            errors[kind] = [str(error)]
            continue
        if value and key is None:
            key = (kind, value)
    if key is None and not errors:
        errors["non_field_errors"] = [_("Name the contact by external_id, email or anonymous_id.")]
    return key, errors


def find_contact_ids(workspace: Workspace, keys: set[tuple[str, str]]) -> dict:
    """{(kind, value): contact_id} for the keys that name an existing contact."""
    values: dict[str, list[str]] = {kind: [] for kind in FIND_CONTACT_IDS_SQL}
    for kind, value in keys:
        values[kind].append(value)
    queries, params = [], []
    for kind, query in FIND_CONTACT_IDS_SQL.items():
        if values[kind]:
            queries.append(query)
            params += [workspace.pk, array_literal(values[kind])]
    if not queries:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(queries), params)
        return {(kind, value): pk for kind, value, pk in cursor.fetchall()}


def resolve_contact_ids(
    workspace: Workspace, keys: set[tuple[str, str]], found: dict | None = None
) -> dict:
    """{(kind, value): contact_id} for every key, creating a contact for each unknown one.

    `found` is what find_contact_ids answered for these keys, when the caller asked it.
    Safe against concurrent callers: inserts skip conflicts and the winners are read back.
    """
    found = find_contact_ids(workspace, keys) if found is None else dict(found)
    missing = keys - found.keys()
    if not missing:
        return found
    now = timezone.now()
    known = sorted((k, v) for k, v in missing if k != ANONYMOUS_ID)
    if known:
        found.update(_create_known_contacts(workspace, known, now))
    anonymous = sorted(v for k, v in missing if k == ANONYMOUS_ID)
    if anonymous:
        found.update(_create_anonymous_contacts(workspace, anonymous, now))
    taken = missing - found.keys()  # created meanwhile by a concurrent request
    if taken:
        found.update(find_contact_ids(workspace, taken))
    return found


def array_literal(texts) -> str:
    """A PostgreSQL array literal of these strings, to send as one text parameter.

    psycopg adapts a Python list item by item (some 4 ms per thousand strings), and a
    literal lets the planner see how many values there are: with an array it cannot
    size, it may compare every row of the table with every value.
    """
    quoted = ('"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"' for text in texts)
    return "{" + ",".join(quoted) + "}"


def _create_known_contacts(workspace: Workspace, keys: list[tuple[str, str]], now) -> dict:
    """A contact for each (external_id | email, value) key, in key order so that concurrent
    callers meet in the unique indexes in the same order; answers the ones this call made."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO contacts_contact
                (workspace_id, external_id, email, first_name, last_name, timezone, locale,
                 attributes, created_at, updated_at)
            SELECT %s, k.external_id, k.email, '', '', '', '', '{}'::jsonb, %s, %s
            FROM jsonb_to_recordset(%s::jsonb) AS k(external_id text, email text)
            ON CONFLICT DO NOTHING
            RETURNING id, external_id, email
            """,
            [workspace.pk, now, now, json.dumps([{kind: value} for kind, value in keys])],
        )
        return {
            (EXTERNAL_ID, external_id) if external_id is not None else (EMAIL, email): pk
            for pk, external_id, email in cursor.fetchall()
        }


def _create_anonymous_contacts(workspace: Workspace, anonymous_ids: list[str], now) -> dict:
    """A contact for each anonymous id; answers the ones this call made."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO contacts_contact
                (workspace_id, first_name, last_name, timezone, locale, attributes,
                 created_at, updated_at)
            SELECT %s, '', '', '', '', '{}'::jsonb, %s, %s FROM generate_series(1, %s)
            RETURNING id
            """,
            [workspace.pk, now, now, len(anonymous_ids)],
        )
        contact_ids = [row[0] for row in cursor.fetchall()]
        cursor.execute(
            """
            INSERT INTO contacts_anonymousid (workspace_id, anonymous_id, contact_id, created_at)
            SELECT %s, a.anonymous_id, a.contact_id, %s
            FROM jsonb_to_recordset(%s::jsonb) AS a(anonymous_id text, contact_id bigint)
            ON CONFLICT DO NOTHING
            RETURNING anonymous_id, contact_id
            """,
            [
                workspace.pk,
                now,
                json.dumps(
                    [
                        {"anonymous_id": anonymous_id, "contact_id": contact_id}
                        for anonymous_id, contact_id in zip(anonymous_ids, contact_ids, strict=True)
                    ]
                ),
            ],
        )
        kept = {(ANONYMOUS_ID, anonymous_id): pk for anonymous_id, pk in cursor.fetchall()}
        # Another request created some of these anonymous ids first: drop our spare contacts.
        spare = list(set(contact_ids) - set(kept.values()))
        if spare:
            cursor.execute("DELETE FROM contacts_contact WHERE id = ANY(%s)", [spare])
    return kept


def is_anonymous(contact: Contact) -> bool:
    return not contact.external_id and not contact.email


@transaction.atomic
def merge_contacts(kept: Contact, merged: Contact, source: str = EventSource.API) -> ContactMerge:
    """Fold `merged` into `kept`: events, anonymous ids, lists and consent move; attributes
    merge with the more recently updated profile winning; a merge record is kept."""
    if kept.workspace_id != merged.workspace_id or kept.pk == merged.pk:
        raise ValueError("Only two different contacts of one workspace can be merged.")
    newer_wins = merged.updated_at > kept.updated_at
    for name in ("phone", "first_name", "last_name", "timezone", "locale"):
        theirs = getattr(merged, name)
        if theirs and (newer_wins or not getattr(kept, name)):
            setattr(kept, name, theirs)
    if not kept.email and merged.email:
        kept.email = merged.email
        merged.email = None
        merged.save(update_fields=["email"])  # free the unique email before kept takes it
    kept.attributes = (
        {**kept.attributes, **merged.attributes}
        if newer_wins
        else {**merged.attributes, **kept.attributes}
    )
    kept.last_seen_at = max(filter(None, [kept.last_seen_at, merged.last_seen_at]), default=None)
    kept.updated_at = timezone.now()
    kept.save()

    anonymous_ids = list(merged.anonymous_ids.values_list("anonymous_id", flat=True))
    merged.anonymous_ids.update(contact=kept)
    events_moved = Event.objects.filter(contact=merged).update(contact=kept)
    kept_lists = ListMembership.objects.filter(contact=kept).values("contact_list_id")
    ListMembership.objects.filter(contact=merged).exclude(contact_list_id__in=kept_lists).update(
        contact=kept
    )
    kept_consent = {c.channel: c for c in Consent.objects.filter(contact=kept)}
    for consent in Consent.objects.filter(contact=merged):
        mine = kept_consent.get(consent.channel)
        if mine is None:
            consent.contact = kept
            consent.save(update_fields=["contact"])
        elif consent.updated_at > mine.updated_at:
            mine.status, mine.source, mine.updated_at = (
                consent.status,
                consent.source,
                consent.updated_at,
            )
            mine.save(update_fields=["status", "source", "updated_at"])
    merged.consent_changes.update(contact=kept)
    ContactMerge.objects.filter(contact=merged).update(contact=kept)
    record = ContactMerge.objects.create(
        workspace_id=kept.workspace_id,
        contact=kept,
        merged_contact_id=merged.pk,
        merged_anonymous_ids=anonymous_ids,
        events_moved=events_moved,
        source=source,
    )
    merged.delete()
    segments.contacts_changed(kept.workspace_id, [kept.pk])
    return record


class IdentityError(ValueError):
    """The call would join two different known people; nothing was changed."""


@transaction.atomic
def identify(
    workspace: Workspace,
    *,
    external_id: str | None,
    anonymous_id: str | None,
    values: dict,
    source: str,
) -> Contact:
    """Record who a visitor is: link the anonymous id to the known contact (merging the
    anonymous profile into it) and apply the profile values.

    `values` are clean profile values (see profiles.clean_profile). The contact is
    found by external id, then email, then anonymous id; created when none matches.
    """
    from apps.contacts.services.profiles import apply_profile

    scoped = Contact.objects.for_workspace(workspace).select_for_update()
    known = None
    if external_id:
        known = scoped.filter(external_id=external_id).first()
    if known is None and values.get("email"):
        known = scoped.filter(email=values["email"]).first()
        if known is not None and external_id and known.external_id not in (None, external_id):
            raise IdentityError(
                f"The email belongs to the contact with external_id {known.external_id}."
            )
    elif values.get("email") and scoped.filter(email=values["email"]).exclude(pk=known.pk).exists():
        # Found by external id: saving another contact's email would break its uniqueness.
        raise IdentityError("Another contact already has this email.")
    anonymous_contact = None
    if anonymous_id:
        link = AnonymousId.objects.for_workspace(workspace).filter(anonymous_id=anonymous_id)
        anonymous_contact = scoped.filter(pk__in=link.values("contact_id")).first()

    if known is None and anonymous_contact is not None:
        if external_id and anonymous_contact.external_id not in (None, external_id):
            raise IdentityError("The anonymous id belongs to a contact with another external_id.")
        known, anonymous_contact = anonymous_contact, None
    if known is None:
        known = Contact(workspace=workspace)
    if external_id and not known.external_id:
        known.external_id = external_id
    apply_profile(known, values)
    known.save()
    if anonymous_contact is not None and anonymous_contact.pk != known.pk:
        if is_anonymous(anonymous_contact):
            merge_contacts(known, anonymous_contact, source)
            known.refresh_from_db()
    elif anonymous_id:
        AnonymousId.objects.get_or_create(
            workspace=workspace, anonymous_id=anonymous_id, defaults={"contact": known}
        )
    segments.contacts_changed(workspace.pk, [known.pk])
    return known


@transaction.atomic
def alias(workspace: Workspace, *, previous_id: str, user_id: str, source: str) -> Contact:
    """`previous_id` (an anonymous id or an old external id) and `user_id` are one person."""
    scoped = Contact.objects.for_workspace(workspace).select_for_update()
    previous = scoped.filter(external_id=previous_id).first()
    if previous is None:
        link = AnonymousId.objects.for_workspace(workspace).filter(anonymous_id=previous_id)
        previous = scoped.filter(pk__in=link.values("contact_id")).first()
    current = scoped.filter(external_id=user_id).first()
    if previous is None:
        return identify(
            workspace, external_id=user_id, anonymous_id=previous_id, values={}, source=source
        )
    if current is None:
        if previous.external_id in (None, previous_id):
            previous.external_id = user_id
            previous.updated_at = timezone.now()
            previous.save(update_fields=["external_id", "updated_at"])
            segments.contacts_changed(workspace.pk, [previous.pk])
            return previous
        current = Contact.objects.create(workspace=workspace, external_id=user_id)
    if current.pk != previous.pk:
        merge_contacts(current, previous, source)
        current.refresh_from_db()
    return current
