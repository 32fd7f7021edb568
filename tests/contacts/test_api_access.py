"""The contacts API seen by an outsider (another workspace's key) and by an analyst."""

import pytest
from django.urls import reverse

from apps.contacts.models import Contact, ContactList, Event, ListMembership
from tests.contacts.factories import ContactFactory, ContactListFactory, EventFactory


@pytest.fixture
def acme_contact(workspace):
    contact = ContactFactory(
        workspace=workspace, external_id="acme-1", email="ann@acme.test", attributes={"plan": "pro"}
    )
    EventFactory(contact=contact, name="purchase")
    return contact


@pytest.fixture
def acme_list(workspace, acme_contact):
    contact_list = ContactListFactory(workspace=workspace, slug="vip")
    ListMembership.objects.create(
        workspace=workspace, contact_list=contact_list, contact=acme_contact, source="api"
    )
    return contact_list


@pytest.fixture
def outsider_api(other_workspace, api_key_for):
    return api_key_for(other_workspace, ["ingest", "read", "write"])


def snapshot(contact):
    contact.refresh_from_db()
    return (
        contact.email,
        contact.attributes,
        contact.events.count(),
        list(contact.consents.values_list("status", flat=True)),
    )


@pytest.mark.parametrize(
    ("method", "name", "body"),
    [
        ("get", "api:contact-detail", None),
        ("patch", "api:contact-detail", {"attributes": {"plan": "free"}}),
        ("put", "api:contact-detail", {"external_id": "acme-1"}),
        ("delete", "api:contact-detail", None),
        ("get", "api:contact-export", None),
        ("post", "api:contact-set-consent", {"channel": "email", "status": "unsubscribed"}),
    ],
)
def test_outsider_gets_404_for_another_workspaces_contact(
    method, name, body, acme_contact, outsider_api
):
    before = snapshot(acme_contact)
    url = reverse(name, args=[acme_contact.pk])
    response = getattr(outsider_api, method)(url, body, format="json")
    assert response.status_code == 404
    assert snapshot(acme_contact) == before


@pytest.mark.parametrize(
    ("method", "name", "body"),
    [
        ("get", "api:contactlist-detail", None),
        ("patch", "api:contactlist-detail", {"name": "Mine"}),
        ("delete", "api:contactlist-detail", None),
        ("post", "api:contactlist-members", {"contacts": []}),
    ],
)
def test_outsider_gets_404_for_another_workspaces_list(method, name, body, acme_list, outsider_api):
    response = getattr(outsider_api, method)(
        reverse(name, args=[acme_list.pk]), body, format="json"
    )
    assert response.status_code == 404
    assert ContactList.objects.get(pk=acme_list.pk).name == acme_list.name


def test_outsider_lists_and_filters_see_only_their_own_workspace(
    acme_contact, acme_list, outsider_api
):
    for url, params in [
        (reverse("api:contact-list"), {}),
        (reverse("api:contact-list"), {"q": "ann"}),
        (reverse("api:contact-list"), {"list": "vip"}),
        (reverse("api:contact-list"), {"external_id": "acme-1"}),
        (reverse("api:event-list"), {"contact": acme_contact.pk}),
        (reverse("api:contactlist-list"), {}),
    ]:
        response = outsider_api.get(url, params)
        assert response.status_code == 200
        assert response.json()["results"] == [], (url, params)


def test_outsider_writes_with_the_same_identifiers_stay_in_their_workspace(
    acme_contact, acme_list, outsider_api, other_workspace
):
    before = snapshot(acme_contact)
    outsider_api.post(
        reverse("api:contact-bulk"),
        {
            "contacts": [
                {
                    "external_id": "acme-1",
                    "email": "ann@acme.test",
                    "attributes": {"plan": "stolen"},
                }
            ]
        },
        format="json",
    )
    outsider_api.post(
        reverse("api:event-list"), {"external_id": "acme-1", "name": "fake"}, format="json"
    )
    own_list = ContactListFactory(workspace=other_workspace)
    response = outsider_api.post(
        reverse("api:contactlist-members", args=[own_list.pk]),
        {"contacts": [acme_contact.pk]},
        format="json",
    )
    assert response.json() == {"changed": 0}
    assert snapshot(acme_contact) == before
    theirs = Contact.objects.get(workspace=other_workspace, external_id="acme-1")
    assert theirs.pk != acme_contact.pk
    assert list(Event.objects.filter(contact=theirs).values_list("name", flat=True)) == ["fake"]


@pytest.mark.parametrize(
    ("method", "name", "body", "detail"),
    [
        ("post", "api:contact-list", {"external_id": "new"}, False),
        ("post", "api:contact-bulk", {"contacts": [{"external_id": "new"}]}, False),
        ("post", "api:event-list", {"external_id": "new", "name": "x"}, False),
        ("patch", "api:contact-detail", {"first_name": "X"}, True),
        ("delete", "api:contact-detail", None, True),
        ("post", "api:contact-set-consent", {"channel": "email", "status": "subscribed"}, True),
        ("post", "api:contactlist-list", {"name": "New"}, False),
    ],
)
def test_analyst_session_cannot_change_contacts(
    method, name, body, detail, acme_contact, analyst, client_for
):
    before = snapshot(acme_contact)
    url = reverse(name, args=[acme_contact.pk]) if detail else reverse(name)
    response = getattr(client_for(analyst), method)(url, body, content_type="application/json")
    assert response.status_code == 403
    assert snapshot(acme_contact) == before
    assert Contact.objects.count() == 1
    assert ContactList.objects.count() == 0


def test_analyst_session_reads_contacts(acme_contact, analyst, client_for):
    response = client_for(analyst).get(reverse("api:contact-list"))
    assert [row["id"] for row in response.json()["results"]] == [acme_contact.pk]


def test_marketer_session_may_change_contacts_with_csrf(acme_contact, marketer, client_for):
    client = client_for(marketer)
    response = client.patch(
        reverse("api:contact-detail", args=[acme_contact.pk]),
        {"first_name": "Ann"},
        content_type="application/json",
    )
    assert response.status_code == 200
