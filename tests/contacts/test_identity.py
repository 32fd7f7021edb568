"""Identity: identify, alias and merge, as Segment-style tracking produces them."""

import datetime as dt

import pytest

from apps.contacts.models import AnonymousId, Consent, Contact, ContactMerge, Event, ListMembership
from apps.contacts.services import identity
from apps.contacts.services.consent import set_consent
from tests.contacts.factories import ContactFactory, ContactListFactory, EventFactory


def anonymous_contact(workspace, anonymous_id, **fields):
    contact = ContactFactory(workspace=workspace, external_id=None, email=None, **fields)
    AnonymousId.objects.create(workspace=workspace, anonymous_id=anonymous_id, contact=contact)
    return contact


def test_identify_merges_the_anonymous_profile_into_the_known_contact(workspace):
    known = ContactFactory(workspace=workspace, external_id="u1", attributes={"plan": "free"})
    visitor = anonymous_contact(workspace, "anon-1", attributes={"plan": "pro", "utm": "ad"})
    EventFactory.create_batch(2, contact=visitor, name="page_viewed")
    vip = ContactListFactory(workspace=workspace)
    ListMembership.objects.create(
        workspace=workspace, contact_list=vip, contact=visitor, source="api"
    )
    set_consent(visitor, "push", "subscribed", "browser")

    contact = identity.identify(
        workspace,
        external_id="u1",
        anonymous_id="anon-1",
        values={"first_name": "Ann"},
        source="segment",
    )
    assert contact.pk == known.pk
    assert not Contact.objects.filter(pk=visitor.pk).exists()
    assert Event.objects.filter(contact=known).count() == 2
    assert AnonymousId.objects.get(anonymous_id="anon-1").contact == known
    assert ListMembership.objects.get().contact == known
    assert Consent.objects.get().contact == known
    merge = ContactMerge.objects.get()
    assert (merge.contact, merge.merged_contact_id, merge.events_moved) == (known, visitor.pk, 2)
    assert merge.merged_anonymous_ids == ["anon-1"]
    contact.refresh_from_db()
    assert contact.first_name == "Ann"
    # identify's own values were written last, so the known profile is the newer one
    assert contact.attributes == {"plan": "free", "utm": "ad"}


def test_in_a_merge_the_more_recently_updated_profile_wins(workspace):
    now = dt.datetime.now(dt.UTC)
    kept = ContactFactory(workspace=workspace, attributes={"plan": "free", "a": 1})
    merged = ContactFactory(
        workspace=workspace, external_id=None, email=None, attributes={"plan": "pro", "b": 2}
    )
    Contact.objects.filter(pk=kept.pk).update(updated_at=now - dt.timedelta(days=1))
    Contact.objects.filter(pk=merged.pk).update(updated_at=now)
    kept.refresh_from_db()
    merged.refresh_from_db()
    identity.merge_contacts(kept, merged, "api")
    kept.refresh_from_db()
    assert kept.attributes == {"plan": "pro", "a": 1, "b": 2}


def test_identify_makes_an_anonymous_visitor_known(workspace):
    visitor = anonymous_contact(workspace, "anon-2")
    contact = identity.identify(
        workspace,
        external_id="u9",
        anonymous_id="anon-2",
        values={"email": "nine@example.com"},
        source="segment",
    )
    assert contact.pk == visitor.pk
    assert (contact.external_id, contact.email) == ("u9", "nine@example.com")
    assert ContactMerge.objects.count() == 0


def test_identify_creates_and_links_a_new_person(workspace):
    contact = identity.identify(
        workspace, external_id="u3", anonymous_id="anon-3", values={}, source="segment"
    )
    assert AnonymousId.objects.get(anonymous_id="anon-3").contact == contact
    again = identity.identify(
        workspace, external_id="u3", anonymous_id="anon-3", values={}, source="segment"
    )
    assert again.pk == contact.pk
    assert Contact.objects.count() == 1


def test_identify_refuses_to_join_two_known_people(workspace):
    ContactFactory(workspace=workspace, external_id="u1", email="ann@example.com")
    with pytest.raises(identity.IdentityError):
        identity.identify(
            workspace,
            external_id="u2",
            anonymous_id=None,
            values={"email": "ann@example.com"},
            source="segment",
        )
    assert Contact.objects.count() == 1


def test_alias_merges_the_previous_id_into_the_user(workspace):
    user = ContactFactory(workspace=workspace, external_id="user-1")
    visitor = anonymous_contact(workspace, "anon-9")
    EventFactory(contact=visitor, name="cart")
    contact = identity.alias(workspace, previous_id="anon-9", user_id="user-1", source="segment")
    assert contact.pk == user.pk
    assert Event.objects.get().contact == user
    assert ContactMerge.objects.get().merged_contact_id == visitor.pk


def test_alias_renames_an_external_id_when_the_new_one_is_unknown(workspace):
    contact = ContactFactory(workspace=workspace, external_id="old-id")
    result = identity.alias(workspace, previous_id="old-id", user_id="new-id", source="api")
    assert result.pk == contact.pk
    contact.refresh_from_db()
    assert contact.external_id == "new-id"


def test_resolving_unknown_keys_creates_each_contact_once(workspace):
    keys = {("external_id", "e1"), ("email", "m@example.com"), ("anonymous_id", "a1")}
    first = identity.resolve_contact_ids(workspace, keys)
    second = identity.resolve_contact_ids(workspace, keys)
    assert first == second
    assert len(set(first.values())) == 3
    assert Contact.objects.count() == 3


def test_merging_contacts_of_two_workspaces_is_refused(workspace, other_workspace):
    a = ContactFactory(workspace=workspace)
    b = ContactFactory(workspace=other_workspace)
    with pytest.raises(ValueError):
        identity.merge_contacts(a, b)
