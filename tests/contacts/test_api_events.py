"""POST /api/v1/events/: one event or a batch, each bad item reported, resends stored once."""

import datetime as dt

import pytest
from django.urls import reverse

from apps.contacts.models import AnonymousId, Contact, Event
from tests.contacts.factories import ContactFactory

URL = reverse("api:event-list")


@pytest.fixture
def api(workspace, api_key_for):
    return api_key_for(workspace, ["ingest"])


def test_one_event_creates_the_contact_on_first_sight(api, workspace):
    response = api.post(
        URL,
        {
            "external_id": "u1",
            "name": "purchase",
            "properties": {"amount": 120},
            "occurred_at": "2026-03-01T10:00:00+01:00",
            "message_id": "order-1",
        },
        format="json",
    )
    assert response.status_code == 200
    assert response.json() == {"accepted": 1, "rejected": []}
    event = Event.objects.get()
    assert (event.name, event.properties, event.message_id) == (
        "purchase",
        {"amount": 120},
        "order-1",
    )
    assert event.occurred_at == dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
    assert event.source == "api"
    assert event.workspace == workspace
    contact = Contact.objects.get()
    assert contact.external_id == "u1"
    assert event.contact == contact
    assert contact.last_seen_at == event.occurred_at


def test_events_find_existing_contacts_by_external_id_email_and_anonymous_id(api, workspace):
    known = ContactFactory(workspace=workspace, external_id="k1", email="kim@example.test")
    visitor = ContactFactory(workspace=workspace, external_id=None, email=None)
    AnonymousId.objects.create(workspace=workspace, anonymous_id="anon-7", contact=visitor)
    response = api.post(
        URL,
        {
            "events": [
                {"external_id": "k1", "name": "a"},
                {"email": "KIM@example.test", "name": "b"},
                {"anonymous_id": "anon-7", "name": "c"},
                {"anonymous_id": "anon-new", "name": "d"},
            ]
        },
        format="json",
    )
    assert response.json() == {"accepted": 4, "rejected": []}
    assert set(Event.objects.filter(contact=known).values_list("name", flat=True)) == {"a", "b"}
    assert list(Event.objects.filter(contact=visitor).values_list("name", flat=True)) == ["c"]
    new_visitor = AnonymousId.objects.get(anonymous_id="anon-new").contact
    assert (new_visitor.external_id, new_visitor.email) == (None, None)
    assert Contact.objects.count() == 3


def test_each_bad_item_is_reported_with_its_index_and_the_good_ones_stored(api):
    response = api.post(
        URL,
        {
            "events": [
                {"external_id": "u1", "name": "ok"},
                {"name": "no-contact"},
                {"external_id": "u1"},
                {"email": "not-an-email", "name": "x"},
                {"external_id": "u1", "name": "x", "occurred_at": "yesterday"},
                {"external_id": "u1", "name": "x", "properties": [1, 2]},
                "not an object",
                {"external_id": "u1", "name": "x", "colour": "red"},
                {"external_id": "u1", "name": "also-ok"},
            ]
        },
        format="json",
    )
    assert response.status_code == 200
    body = response.json()
    assert body["accepted"] == 2
    rejected = {item["index"]: item["errors"] for item in body["rejected"]}
    assert list(rejected) == [1, 2, 3, 4, 5, 6, 7]
    assert "non_field_errors" in rejected[1]
    assert "name" in rejected[2]
    assert "email" in rejected[3]
    assert "occurred_at" in rejected[4]
    assert "properties" in rejected[5]
    assert "non_field_errors" in rejected[6]
    assert "colour" in rejected[7]
    assert sorted(Event.objects.values_list("name", flat=True)) == ["also-ok", "ok"]


def test_a_batch_where_everything_is_wrong_answers_400_and_stores_nothing(api):
    response = api.post(URL, {"events": [{"name": "x"}, {}]}, format="json")
    assert response.status_code == 400
    assert response.json()["accepted"] == 0
    assert Event.objects.count() == 0
    assert Contact.objects.count() == 0


def test_a_resent_event_is_accepted_and_not_stored_twice(api):
    event = {"external_id": "u1", "name": "purchase", "message_id": "m-1"}
    assert api.post(URL, event, format="json").json()["accepted"] == 1
    assert api.post(URL, {"events": [event, event]}, format="json").json()["accepted"] == 2
    assert Event.objects.count() == 1


def test_message_ids_are_unique_per_workspace_only(api, other_workspace, api_key_for):
    event = {"external_id": "u1", "name": "purchase", "message_id": "m-1"}
    api.post(URL, event, format="json")
    api_key_for(other_workspace, ["ingest"]).post(URL, event, format="json")
    assert Event.objects.count() == 2
    assert Event.objects.values("workspace").distinct().count() == 2


def test_events_without_a_time_get_the_time_of_arrival(api):
    before = dt.datetime.now(dt.UTC)
    api.post(URL, {"external_id": "u1", "name": "x"}, format="json")
    event = Event.objects.get()
    assert before <= event.occurred_at <= dt.datetime.now(dt.UTC)
    assert event.received_at == event.occurred_at


def test_more_than_ten_thousand_events_get_413(api):
    events = [{"external_id": "u1", "name": "x"}] * 10_001
    response = api.post(URL, {"events": events}, format="json")
    assert response.status_code == 413
    assert "10000" in response.json()["detail"].replace(",", "")
    assert Event.objects.count() == 0


def test_an_oversized_body_gets_413_before_it_is_read(api, settings):
    settings.MAX_REQUEST_BYTES = 1000
    response = api.post(URL, {"events": [{"external_id": "u1", "name": "x" * 2000}]}, format="json")
    assert response.status_code == 413
    assert "limit is 1000" in response.json()["detail"]


def test_malformed_json_is_a_clear_400(api):
    response = api.post(URL, data="{not json", content_type="application/json")
    assert response.status_code == 400
    assert "JSON" in response.json()["detail"]


def test_events_list_filters_by_contact_and_name(workspace, api_key_for):
    ann = ContactFactory(workspace=workspace, external_id="ann")
    ingest = api_key_for(workspace, ["ingest"])
    ingest.post(
        URL,
        {
            "events": [
                {"external_id": "ann", "name": "purchase"},
                {"external_id": "ann", "name": "page"},
                {"external_id": "bo", "name": "purchase"},
            ]
        },
        format="json",
    )
    reader = api_key_for(workspace, ["read"])
    response = reader.get(URL, {"contact": ann.pk, "name": "purchase"})
    assert response.status_code == 200
    results = response.json()["results"]
    assert [(r["contact"], r["name"]) for r in results] == [(ann.pk, "purchase")]


def test_ingest_key_cannot_read_events(api):
    assert api.get(URL).status_code == 403


def test_read_key_cannot_track(workspace, api_key_for):
    response = api_key_for(workspace, ["read"]).post(
        URL, {"external_id": "u", "name": "x"}, format="json"
    )
    assert response.status_code == 403
    assert Event.objects.count() == 0


def test_write_key_may_track(workspace, api_key_for):
    response = api_key_for(workspace, ["write"]).post(
        URL, {"external_id": "u", "name": "x"}, format="json"
    )
    assert response.status_code == 200


def test_text_postgresql_cannot_store_is_a_rejected_item_not_a_500(api):
    response = api.post(
        URL,
        {
            "events": [
                {"external_id": "u1", "name": "ok"},
                {"external_id": "u1", "name": "bad", "properties": {"note": "a\u0000b"}},
            ]
        },
        format="json",
    )
    assert response.status_code == 200
    body = response.json()
    assert body["accepted"] == 1
    assert body["rejected"][0]["index"] == 1
    assert "NUL" in body["rejected"][0]["errors"]["non_field_errors"][0]
    assert list(Event.objects.values_list("name", flat=True)) == ["ok"]


def _post_raw(api, body: bytes):
    return api.generic("POST", URL, body, content_type="application/json")


def test_lone_surrogate_is_a_rejected_item_and_the_rest_of_the_batch_is_stored(api):
    body = (
        b'{"events": [{"external_id": "u1", "name": "ok"},'
        b' {"external_id": "u1", "name": "bad", "properties": {"note": "a\\ud800b"}}]}'
    )
    response = _post_raw(api, body)
    assert response.status_code == 200
    assert response.json()["rejected"][0]["index"] == 1
    assert list(Event.objects.values_list("name", flat=True)) == ["ok"]


def test_integers_past_64_bits_are_stored_digit_for_digit(api):
    big = "123456789012345678901234567890"
    body = b'{"external_id": "u1", "name": "big", "properties": {"n": %s}}' % big.encode()
    assert _post_raw(api, body).status_code == 200
    assert Event.objects.get().properties == {"n": int(big)}


@pytest.mark.parametrize("body", [b'{"external_id": "u", "name": "x", "properties": {"v": NaN}}',
                                  b'{"external_id": "u", "name": "x"', b"\xff\xfe"])  # fmt: skip
def test_a_body_that_is_not_json_is_refused_whole(api, body):
    response = _post_raw(api, body)
    assert response.status_code == 400
    assert "JSON parse error" in response.json()["detail"]
    assert not Event.objects.exists()
