"""The fast paths of ingest (events and bulk upsert) store exactly what the plain ones did."""

import datetime as dt

import pytest
from django.db import connection
from django.urls import reverse
from hypothesis import given, settings
from hypothesis import strategies as st

from apps.contacts.models import Contact, Event
from apps.contacts.services.events import EVENT_FIELDS, _clean_usual_event, clean_event
from tests.contacts.factories import ContactFactory

EVENTS_URL = reverse("api:event-list")
BULK_URL = reverse("api:contact-bulk")
NOW = dt.datetime(2026, 5, 1, 12, 0, tzinfo=dt.UTC)

texts = st.one_of(
    st.none(),
    st.sampled_from(["", "  ", " u1 ", "x" * 255, " " + "x" * 255, "x" * 256, "ann@example.com"]),
    st.text(max_size=20),
)
values = st.one_of(
    texts,
    st.integers(),
    st.booleans(),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
    st.sampled_from(["2026-03-01T10:00:00+01:00", "2026-03-01 10:00", "2026-03-01",
                     "2026-03-01T10:00:00Z", "yesterday", "2026-02-30T10:00:00"]),
)  # fmt: skip


@given(st.dictionaries(st.sampled_from([*sorted(EVENT_FIELDS), "colour"]), values))
@settings(max_examples=500, deadline=None)
def test_the_quick_check_accepts_only_what_the_full_check_accepts_and_stores_the_same(item):
    quick = _clean_usual_event(item, NOW)
    if quick is not None:
        assert clean_event(item, NOW) == (quick, {})


@pytest.fixture
def api(workspace, api_key_for):
    return api_key_for(workspace, ["ingest", "read", "write"])


def test_contacts_named_with_quotes_backslashes_and_commas_are_found_again(api, workspace):
    names = ['a"b', "c\\d", "e,f", "{g}", "ünï ✓", "NULL", "h'i"]
    events = [{"external_id": name, "name": "seen"} for name in names]
    assert api.post(EVENTS_URL, {"events": events}, format="json").json()["accepted"] == 7
    assert api.post(EVENTS_URL, {"events": events}, format="json").json()["accepted"] == 7
    assert sorted(Contact.objects.values_list("external_id", flat=True)) == sorted(names)
    for contact in Contact.objects.all():
        assert contact.events.count() == 2


# Outside a transaction, as in production, events of known contacts take the one-statement
# path; inside one (every other test) they take the path that may create contacts.
both_paths = pytest.mark.parametrize(
    "autocommit",
    [False, pytest.param(True, marks=pytest.mark.django_db(transaction=True))],
    ids=["in-transaction", "autocommit"],
)


@both_paths
def test_events_of_known_contacts_move_last_seen_forward_and_never_back(api, workspace, autocommit):
    assert connection.in_atomic_block is not autocommit
    ann = ContactFactory(workspace=workspace, external_id="ann", email="ann@example.com")
    later, earlier = "2026-04-02T10:00:00+00:00", "2026-04-01T10:00:00+00:00"
    api.post(EVENTS_URL, {"email": "ANN@example.com", "name": "a", "occurred_at": later},
             format="json")  # fmt: skip
    api.post(EVENTS_URL, {"external_id": "ann", "name": "b", "occurred_at": earlier},
             format="json")  # fmt: skip
    ann.refresh_from_db()
    assert ann.last_seen_at == dt.datetime(2026, 4, 2, 10, tzinfo=dt.UTC)
    assert Contact.objects.count() == 1
    assert sorted(ann.events.values_list("name", flat=True)) == ["a", "b"]


@both_paths
def test_unstorable_text_for_a_known_contact_is_rejected_by_index_and_the_rest_stored(
    api, workspace, autocommit
):
    assert connection.in_atomic_block is not autocommit
    ContactFactory(workspace=workspace, external_id="ann")
    response = api.post(
        EVENTS_URL,
        {"events": [{"external_id": "ann", "name": "ok"},
                    {"external_id": "ann", "name": "bad\x00name"},
                    {"external_id": "ann", "name": "fine", "properties": {"k": "v"}}]},
        format="json",
    )  # fmt: skip
    body = response.json()
    assert body["accepted"] == 2
    assert [item["index"] for item in body["rejected"]] == [1]
    assert sorted(Event.objects.values_list("name", flat=True)) == ["fine", "ok"]


def test_bulk_upsert_stores_every_profile_field_of_new_and_changed_contacts(api, workspace):
    known = ContactFactory(
        workspace=workspace, external_id="u1", email="u1@example.com", phone=None,
        first_name="Ann", last_name="Old", timezone="Europe/Copenhagen", locale="da",
        attributes={"plan": "free", "seats": 2},
    )  # fmt: skip
    created_at, updated_at = known.created_at, known.updated_at
    response = api.post(
        BULK_URL,
        {"contacts": [
            {"external_id": "u1", "email": "ann@example.com", "phone": "+45 20 12 34 56",
             "last_name": "New", "timezone": "Europe/Stockholm", "locale": "sv",
             "attributes": {"plan": "pro", "seats": None, "vip": True}},
            {"external_id": "u2", "email": "Bo@Example.com", "first_name": "Bo",
             "timezone": "Europe/Oslo", "attributes": {"plan": "team"}},
        ]},
        format="json",
    )  # fmt: skip
    assert response.json() == {"created": 1, "updated": 1, "unchanged": 0, "rejected": []}
    known.refresh_from_db()
    assert (known.email, known.phone, known.first_name, known.last_name, known.timezone,
            known.locale) == ("ann@example.com", "+4520123456", "Ann", "New",
                              "Europe/Stockholm", "sv")  # fmt: skip
    assert known.attributes == {"plan": "pro", "vip": True}
    assert known.created_at == created_at
    assert known.updated_at > updated_at
    bo = Contact.objects.get(external_id="u2")
    assert (bo.workspace, bo.email, bo.first_name, bo.timezone, bo.attributes) == (
        workspace,
        "bo@example.com",
        "Bo",
        "Europe/Oslo",
        {"plan": "team"},
    )
    assert bo.last_seen_at is None


def test_bulk_upsert_reports_each_unknown_time_zone(api):
    response = api.post(
        BULK_URL,
        {"contacts": [{"external_id": "u1", "timezone": "Mars/Olympus"},
                      {"external_id": "u2", "timezone": "Europe/Copenhagen"},
                      {"external_id": "u3", "timezone": "Mars/Olympus"}]},
        format="json",
    )  # fmt: skip
    body = response.json()
    assert body["created"] == 1
    assert [(item["index"], list(item["errors"])) for item in body["rejected"]] == [
        (0, ["timezone"]),
        (2, ["timezone"]),
    ]
    assert list(Contact.objects.values_list("external_id", flat=True)) == ["u2"]
