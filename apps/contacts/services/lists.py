from django.db import connection
from django.utils import timezone
from django.utils.text import slugify

from apps.accounts.models import Workspace
from apps.contacts.models import Contact, ContactList, ListMembership
from apps.segments import services as segments


def create_list(workspace: Workspace, name: str, description: str = "") -> ContactList:
    base = slugify(name) or "list"
    slug, n = base, 1
    while ContactList.objects.for_workspace(workspace).filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return ContactList.objects.create(
        workspace=workspace, name=name, slug=slug, description=description
    )


def add_to_list(contact_list: ContactList, contact_ids: list[int], source: str) -> int:
    """Add contacts (of the list's workspace) to the list; answers how many were new to it."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO contacts_listmembership
                (workspace_id, contact_list_id, contact_id, added_at, source)
            SELECT c.workspace_id, %s, c.id, %s, %s
            FROM contacts_contact c
            WHERE c.id = ANY(%s) AND c.workspace_id = %s
            ON CONFLICT DO NOTHING
            RETURNING contact_id
            """,
            [contact_list.pk, timezone.now(), source, list(contact_ids), contact_list.workspace_id],
        )
        added = [row[0] for row in cursor.fetchall()]
    segments.contacts_changed(contact_list.workspace_id, added)
    return len(added)


def remove_from_list(contact_list: ContactList, contact_ids: list[int]) -> int:
    members = ListMembership.objects.filter(contact_list=contact_list, contact_id__in=contact_ids)
    removed = list(members.values_list("contact_id", flat=True))
    members.delete()
    segments.contacts_changed(contact_list.workspace_id, removed)
    return len(removed)


def lists_of(contact: Contact):
    return ContactList.objects.filter(memberships__contact=contact).order_by("name")
