"""/api/v1/contacts/: CRUD with filters, bulk upsert, consent, export and erasure."""

import pytest
from django.urls import reverse

from apps.contacts.models import (
    Consent,
    ConsentChange,
    Contact,
    ContactList,
    ErasureRecord,
    Event,
    ListMembership,
)
from apps.contacts.services.consent import set_consent
from tests.contacts.factories import ContactFactory, ContactListFactory, EventFactory

LIST_URL = reverse("api:contact-list")
BULK_URL = reverse("api:contact-bulk")


@pytest.fixture
def api(workspace, api_key_for):
    return api_key_for(workspace, ["ingest", "read", "write"])


def detail(contact):
    return reverse("api:contact-detail", args=[contact.pk])


def test_create_returns_the_contract_shape_with_normalised_values(api, workspace):
    response = api.post(
        LIST_URL,
        {
            "external_id": "u1",
            "email": " Ann@Example.COM ",
            "phone": "+45 20 12 34 56",
            "first_name": "Ann",
            "timezone": "Europe/Copenhagen",
            "locale": "da-DK",
            "attributes": {"plan": "pro", "seats": 3, "beta": True},
        },
        format="json",
    )
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {
        "id",
        "external_id",
        "email",
        "phone",
        "first_name",
        "last_name",
        "timezone",
        "locale",
        "attributes",
        "created_at",
        "updated_at",
    }
    assert body["email"] == "ann@example.com"
    assert body["phone"] == "+4520123456"
    assert body["attributes"] == {"plan": "pro", "seats": 3, "beta": True}
    assert Contact.objects.get().workspace == workspace


def test_create_names_every_bad_field(api):
    response = api.post(
        LIST_URL,
        {"email": "nope", "phone": "12", "timezone": "Mars/Base", "attributes": [1], "shoe": 42},
        format="json",
    )
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert set(errors) == {"email", "phone", "timezone", "attributes", "shoe"}
    assert Contact.objects.count() == 0


def test_duplicate_email_or_external_id_is_refused(api, workspace):
    ContactFactory(workspace=workspace, external_id="u1", email="ann@example.com")
    response = api.post(LIST_URL, {"email": "ANN@example.com"}, format="json")
    assert response.status_code == 400
    assert "email" in response.json()["errors"]
    response = api.post(LIST_URL, {"external_id": "u1"}, format="json")
    assert "external_id" in response.json()["errors"]
    assert Contact.objects.count() == 1


def test_patch_merges_attributes_and_null_removes_one(api, workspace):
    contact = ContactFactory(workspace=workspace, attributes={"plan": "free", "seats": 1})
    response = api.patch(
        detail(contact),
        {"attributes": {"plan": "pro", "seats": None}, "first_name": "Bo"},
        format="json",
    )
    assert response.status_code == 200
    contact.refresh_from_db()
    assert contact.attributes == {"plan": "pro"}
    assert contact.first_name == "Bo"


def test_put_replaces_the_whole_profile(api, workspace):
    contact = ContactFactory(workspace=workspace, first_name="Ann", attributes={"plan": "free"})
    response = api.put(
        detail(contact),
        {"external_id": contact.external_id, "attributes": {"tier": 2}},
        format="json",
    )
    assert response.status_code == 200
    contact.refresh_from_db()
    assert (contact.first_name, contact.email, contact.attributes) == ("", None, {"tier": 2})


def test_filters_search_list_consent_and_attribute(api, workspace):
    ann = ContactFactory(
        workspace=workspace,
        email="ann@shop.test",
        first_name="Ann",
        attributes={"plan": "pro", "seats": 5},
    )
    bo = ContactFactory(
        workspace=workspace, email="bo@shop.test", first_name="Bo", attributes={"plan": "free"}
    )
    vip = ContactListFactory(workspace=workspace, slug="vip")
    ListMembership.objects.create(workspace=workspace, contact_list=vip, contact=bo, source="api")
    set_consent(ann, "email", "subscribed", "test")
    set_consent(bo, "email", "unsubscribed", "test")

    def ids(**params):
        return {row["id"] for row in api.get(LIST_URL, params).json()["results"]}

    assert ids(q="ann") == {ann.pk}
    assert ids(q="ANN@sh") == {ann.pk}
    assert ids(q=bo.external_id) == {bo.pk}
    assert ids(list="vip") == {bo.pk}
    assert ids(consent_channel="email", consent_status="subscribed") == {ann.pk}
    assert ids(consent_channel="sms", consent_status="unknown") == {ann.pk, bo.pk}
    assert ids(attribute="plan", value="pro") == {ann.pk}
    assert ids(attribute="seats", value="5") == {ann.pk}
    assert ids(attribute="seats") == {ann.pk}
    assert ids(email="BO@shop.test") == {bo.pk}


def test_list_is_cursor_paginated(api, workspace):
    ContactFactory.create_batch(5, workspace=workspace)
    first = api.get(LIST_URL, {"page_size": 2}).json()
    assert len(first["results"]) == 2
    seen = [row["id"] for row in first["results"]]
    page = first
    while page["next"]:
        page = api.get(page["next"]).json()
        seen += [row["id"] for row in page["results"]]
    assert seen == sorted(Contact.objects.values_list("id", flat=True), reverse=True)


class TestBulk:
    def test_creates_updates_and_reports_unchanged(self, api, workspace):
        ContactFactory(workspace=workspace, external_id="u1", email="old@example.com")
        ContactFactory(
            workspace=workspace, external_id="u2", email="same@example.com", first_name="Same"
        )
        response = api.post(
            BULK_URL,
            {
                "contacts": [
                    {"external_id": "u1", "email": "new@example.com"},
                    {"external_id": "u2", "email": "same@example.com", "first_name": "Same"},
                    {"email": "fresh@example.com", "attributes": {"plan": "pro"}},
                ]
            },
            format="json",
        )
        assert response.status_code == 200
        assert response.json() == {"created": 1, "updated": 1, "unchanged": 1, "rejected": []}
        assert Contact.objects.get(external_id="u1").email == "new@example.com"
        assert Contact.objects.get(email="fresh@example.com").attributes == {"plan": "pro"}

    def test_matches_by_email_when_no_external_id_and_adds_the_external_id(self, api, workspace):
        contact = ContactFactory(workspace=workspace, external_id=None, email="ann@example.com")
        api.post(
            BULK_URL,
            {"contacts": [{"external_id": "crm-1", "email": "Ann@Example.com"}]},
            format="json",
        )
        contact.refresh_from_db()
        assert contact.external_id == "crm-1"
        assert Contact.objects.count() == 1

    def test_resending_the_same_batch_changes_nothing(self, api):
        batch = {
            "contacts": [
                {"external_id": f"u{i}", "email": f"u{i}@example.com", "attributes": {"n": i}}
                for i in range(50)
            ]
        }
        assert api.post(BULK_URL, batch, format="json").json()["created"] == 50
        stamps = dict(Contact.objects.values_list("external_id", "updated_at"))
        again = api.post(BULK_URL, batch, format="json").json()
        assert again == {"created": 0, "updated": 0, "unchanged": 50, "rejected": []}
        assert dict(Contact.objects.values_list("external_id", "updated_at")) == stamps

    def test_reports_each_bad_item_and_stores_the_rest(self, api, workspace):
        ContactFactory(workspace=workspace, external_id="taken", email="taken@example.com")
        response = api.post(
            BULK_URL,
            {
                "contacts": [
                    {"external_id": "ok-1"},
                    {"first_name": "No identifier"},
                    {"external_id": "x", "email": "broken"},
                    {"external_id": "other", "email": "taken@example.com"},
                    [],
                    {"email": "ok-2@example.com"},
                ]
            },
            format="json",
        )
        body = response.json()
        assert body["created"] == 2
        assert [item["index"] for item in body["rejected"]] == [1, 2, 3, 4]
        assert "belongs to" in body["rejected"][2]["errors"]["email"][0]
        assert Contact.objects.count() == 3

    def test_the_same_contact_twice_in_a_batch_is_one_contact(self, api):
        body = api.post(
            BULK_URL,
            {
                "contacts": [
                    {"external_id": "u1", "first_name": "A"},
                    {"external_id": "u1", "last_name": "B"},
                ]
            },
            format="json",
        ).json()
        assert body["created"] == 1
        contact = Contact.objects.get()
        assert (contact.first_name, contact.last_name) == ("A", "B")

    def test_limits(self, api):
        response = api.post(BULK_URL, {"contacts": [{"external_id": "u"}] * 10_001}, format="json")
        assert response.status_code == 413
        assert api.post(BULK_URL, {"people": []}, format="json").status_code == 400

    def test_ingest_key_may_bulk_upsert_but_not_read(self, workspace, api_key_for):
        ingest = api_key_for(workspace, ["ingest"])
        assert (
            ingest.post(BULK_URL, {"contacts": [{"external_id": "u"}]}, format="json").status_code
            == 200
        )
        assert ingest.get(LIST_URL).status_code == 403
        contact = Contact.objects.get()
        assert ingest.get(detail(contact)).status_code == 403
        assert ingest.patch(detail(contact), {"first_name": "x"}, format="json").status_code == 403


def test_consent_endpoint_records_history(api, workspace):
    contact = ContactFactory(workspace=workspace)
    url = reverse("api:contact-set-consent", args=[contact.pk])
    response = api.post(
        url, {"channel": "email", "status": "subscribed", "source": "form"}, format="json"
    )
    assert response.json() == {"channel": "email", "status": "subscribed", "changed": True}
    again = api.post(url, {"channel": "email", "status": "subscribed"}, format="json")
    assert again.json()["changed"] is False
    api.post(url, {"channel": "email", "status": "unsubscribed"}, format="json")
    assert Consent.objects.get(contact=contact).status == "unsubscribed"
    assert list(
        ConsentChange.objects.filter(contact=contact)
        .order_by("id")
        .values_list("status", flat=True)
    ) == ["subscribed", "unsubscribed"]
    bad = api.post(url, {"channel": "fax", "status": "maybe"}, format="json")
    assert set(bad.json()["errors"]) == {"channel", "status"}


def test_export_gives_everything_about_the_contact(api, workspace):
    contact = ContactFactory(workspace=workspace, email="ann@example.com")
    EventFactory(contact=contact, name="purchase", properties={"amount": 5})
    set_consent(contact, "sms", "subscribed", "shop")
    response = api.get(reverse("api:contact-export", args=[contact.pk]))
    assert response.status_code == 200
    assert "attachment" in response["Content-Disposition"]
    data = response.json()
    assert data["contact"]["email"] == "ann@example.com"
    assert [e["name"] for e in data["events"]] == ["purchase"]
    assert data["consent"][0]["channel"] == "sms"
    assert data["consent_history"][0]["status"] == "subscribed"


def test_delete_erases_the_contact_and_keeps_a_record_without_pii(api, workspace):
    contact = ContactFactory(workspace=workspace, email="ann@example.com", external_id="ann-1")
    EventFactory.create_batch(3, contact=contact)
    set_consent(contact, "email", "subscribed", "form")
    pk = contact.pk
    assert api.delete(detail(contact)).status_code == 204
    assert not Contact.objects.filter(pk=pk).exists()
    assert Event.objects.count() == 0
    assert ConsentChange.objects.count() == 0
    record = ErasureRecord.objects.get()
    assert (record.contact_id_erased, record.events_deleted, record.via) == (pk, 3, "api")
    stored = " ".join(str(v) for v in ErasureRecord.objects.values().get().values())
    assert "ann" not in stored


def test_lists_api_adds_and_removes_members(api, workspace, other_workspace):
    contact = ContactFactory(workspace=workspace)
    foreign = ContactFactory(workspace=other_workspace)
    created = api.post(reverse("api:contactlist-list"), {"name": "VIP customers"}, format="json")
    assert created.status_code == 201
    assert created.json()["slug"] == "vip-customers"
    url = reverse("api:contactlist-members", args=[created.json()["id"]])
    response = api.post(url, {"contacts": [contact.pk, foreign.pk]}, format="json")
    assert response.json() == {"changed": 1}  # the other workspace's contact is not added
    assert api.post(url, {"contacts": [contact.pk]}, format="json").json() == {"changed": 0}
    assert api.delete(url, {"contacts": [contact.pk]}, format="json").json() == {"changed": 1}
    assert ListMembership.objects.count() == 0
    assert ContactList.objects.get().workspace == workspace
