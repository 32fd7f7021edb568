"""The Segment-compatible ingest API (/v1/...), driven by the real analytics-python client
and by plain HTTP against a live server, checked row by row in the database."""

import datetime as dt
import gzip
import json
import uuid
from base64 import b64encode

import pytest
from django.urls import reverse
from segment.analytics.client import Client
from segment.analytics.request import APIError, post

from apps.accounts.services import create_api_key
from apps.contacts.models import AnonymousId, Contact, ContactMerge, Event
from tests.contacts.factories import ContactFactory, EventFactory

# The real client needs a live server, and so committed rows; the other tests post in-process.
live = pytest.mark.django_db(transaction=True)

T0 = dt.datetime(2026, 3, 1, 10, 0, tzinfo=dt.UTC)


@pytest.fixture
def raw_key(workspace):
    return create_api_key(workspace, "Acme site", ["ingest"])[1]


@pytest.fixture
def analytics(live_server, raw_key):
    """analytics-python as a partner would configure it, sending each call at once."""
    return Client(raw_key, host=live_server.url, sync_mode=True, max_retries=0)


@pytest.fixture
def send(client, raw_key):
    """send(name, body, key=..., headers=...): POST to the URL named segment-<name>, in-process,
    with the key as the basic user (key=False sends none)."""

    def post_json(name, body, key=None, headers=None):
        headers = dict(headers or {})
        key = raw_key if key is None else key
        if key:
            headers.setdefault("Authorization", "Basic " + b64encode(f"{key}:".encode()).decode())
        return client.generic(
            "POST",
            reverse(f"segment-{name}"),
            body if isinstance(body, bytes | str) else json.dumps(body),
            content_type=headers.pop("Content-Type", "application/json"),
            headers=headers,
        )

    return post_json


def events(workspace):
    return list(
        Event.objects.for_workspace(workspace)
        .order_by("id")
        .values_list("contact__external_id", "name", "properties", "source", "message_id")
    )


def test_the_paths_are_segments(db):
    assert [reverse(f"segment-{name}") for name in ("identify", "track", "batch")] == [
        "/v1/identify",
        "/v1/track",
        "/v1/batch",
    ]


class TestIdentify:
    @live
    def test_traits_become_profile_fields_and_attributes(self, analytics, workspace):
        analytics.identify(
            "u1",
            {"email": "Ann@Example.com", "name": "Ann Marie Lee", "phone": "+4520123456",
             "plan": "pro", "logins": 3, "address": {"city": "Aarhus"}},
            context={"timezone": "Europe/Copenhagen", "locale": "da-DK"},
        )  # fmt: skip
        contact = Contact.objects.get()
        assert contact.workspace == workspace
        assert (contact.external_id, contact.email, contact.phone) == (
            "u1",
            "ann@example.com",
            "+4520123456",
        )
        assert (contact.first_name, contact.last_name) == ("Ann", "Marie Lee")
        assert (contact.timezone, contact.locale) == ("Europe/Copenhagen", "da-DK")
        assert contact.attributes == {"plan": "pro", "logins": 3, "address": {"city": "Aarhus"}}
        assert Event.objects.count() == 0

    @live
    def test_a_second_identify_updates_the_same_contact(self, analytics):
        analytics.identify("u1", {"firstName": "Ann", "last_name": "Lee", "plan": "free"})
        analytics.identify("u1", {"first_name": "Annie", "plan": "pro", "name": "Not Used"})
        contact = Contact.objects.get()
        assert (contact.first_name, contact.last_name) == ("Annie", "Used")
        assert contact.attributes == {"plan": "pro"}

    @live
    def test_camel_case_traits_win_over_snake_case(self, analytics):
        analytics.identify("u1", {"first_name": "snake", "firstName": "Camel"})
        assert Contact.objects.get().first_name == "Camel"

    @live
    def test_an_identify_after_anonymous_visits_merges_them_into_the_known_contact(
        self, analytics, workspace
    ):
        known = ContactFactory(workspace=workspace, external_id="u1", email="ann@acme.test")
        analytics.track(anonymous_id="anon-1", event="Viewed Pricing", message_id="m1")
        analytics.page(anonymous_id="anon-1", name="Home", message_id="m2")
        visitor = AnonymousId.objects.get(anonymous_id="anon-1").contact
        assert visitor.pk != known.pk

        analytics.identify("u1", {"plan": "pro"}, anonymous_id="anon-1")

        assert list(Contact.objects.values_list("pk", flat=True)) == [known.pk]
        assert sorted(Event.objects.filter(contact=known).values_list("name", flat=True)) == [
            "Viewed Pricing",
            "page",
        ]
        merge = ContactMerge.objects.get()
        assert (merge.contact_id, merge.merged_contact_id, merge.events_moved) == (
            known.pk,
            visitor.pk,
            2,
        )
        assert (merge.merged_anonymous_ids, merge.source) == (["anon-1"], "segment")
        assert AnonymousId.objects.get().contact_id == known.pk
        known.refresh_from_db()
        assert known.attributes == {"plan": "pro"}

    def test_an_invalid_trait_is_refused_by_name_and_nothing_is_stored(self, send):
        response = send("identify", {"userId": "u1", "traits": {"email": "not-an-email"}})
        assert response.status_code == 400
        body = response.json()
        assert body["success"] is False
        assert body["detail"] == "The message was not accepted."
        assert list(body["errors"]) == ["traits.email"]
        assert Contact.objects.count() == 0

    def test_an_email_of_another_contact_is_refused_not_a_server_error(self, send, workspace):
        ContactFactory(workspace=workspace, external_id="u1", email="ann@acme.test")
        ContactFactory(workspace=workspace, external_id="u2", email="bo@acme.test")
        response = send("identify", {"userId": "u2", "traits": {"email": "ann@acme.test"}})
        assert response.status_code == 400
        assert list(response.json()["errors"]) == ["non_field_errors"]
        assert Contact.objects.get(external_id="u2").email == "bo@acme.test"

    def test_an_odd_browser_time_zone_is_left_out_not_refused(self, send):
        response = send(
            "identify",
            {"userId": "u1", "traits": {"firstName": "Ann"}, "context": {"timezone": "Etc/Nope"}},
        )
        assert response.json() == {"success": True}
        assert (Contact.objects.get().first_name, Contact.objects.get().timezone) == ("Ann", "")


class TestEvents:
    @live
    def test_track_page_screen_and_group_store_their_events(self, analytics, workspace):
        analytics.track("u1", "Order Completed", {"revenue": 120, "currency": "DKK"},
                        message_id="t1")  # fmt: skip
        analytics.page(
            "u1",
            category="Docs",
            name="Pricing",
            properties={"plan_shown": "pro", "title": "Own title"},
            context={"page": {"url": "https://ex.test/pricing", "path": "/pricing",
                              "title": "Pricing", "referrer": "https://search.test/",
                              "search": "?q=1"}},
            message_id="p1",
        )  # fmt: skip
        analytics.screen("u1", name="Basket", properties={"items": 2}, message_id="s1")
        analytics.group("u1", "acme-inc", {"name": "Acme Inc", "employees": 120}, message_id="g1")

        assert events(workspace) == [
            ("u1", "Order Completed", {"revenue": 120, "currency": "DKK"}, "segment", "t1"),
            ("u1", "page", {"url": "https://ex.test/pricing", "path": "/pricing",
                            "title": "Own title", "referrer": "https://search.test/",
                            "plan_shown": "pro", "name": "Pricing", "category": "Docs"},
             "segment", "p1"),
            ("u1", "screen", {"items": 2, "name": "Basket"}, "segment", "s1"),
            ("u1", "group", {"group_id": "acme-inc", "name": "Acme Inc", "employees": 120},
             "segment", "g1"),
        ]  # fmt: skip
        contact = Contact.objects.get()
        assert contact.attributes == {"group_id": "acme-inc"}
        assert contact.last_seen_at == Event.objects.latest("occurred_at").occurred_at

    @live
    def test_a_track_with_both_ids_names_the_contact_by_user_id_only(self, analytics):
        analytics.track("u1", "Clicked", anonymous_id="anon-1")
        contact = Contact.objects.get()
        assert contact.external_id == "u1"
        assert AnonymousId.objects.count() == 0
        assert Event.objects.get().contact == contact

    @live
    def test_an_anonymous_track_creates_an_anonymous_contact(self, analytics):
        analytics.track(anonymous_id="anon-1", event="Viewed")
        link = AnonymousId.objects.get()
        assert (link.anonymous_id, link.contact.external_id, link.contact.email) == (
            "anon-1",
            None,
            None,
        )
        assert Event.objects.get().contact == link.contact

    @live
    def test_a_resent_message_id_is_stored_once(self, analytics, send):
        for _attempt in range(2):
            analytics.track("u1", "Order Completed", {"revenue": 1}, message_id="order-1")
        response = send("track", {"userId": "u1", "event": "Order Completed",
                                  "messageId": "order-1"})  # fmt: skip
        assert response.json() == {"success": True}
        assert Event.objects.count() == 1

    @live
    def test_timestamp_is_corrected_for_the_senders_clock(self, live_server, raw_key):
        """The client's clock runs an hour fast: it stamped the event and sent it at
        client times an hour ahead of ours, so the event happened an hour earlier."""
        now = dt.datetime.now(dt.UTC)
        message = {"type": "track", "userId": "u1", "event": "Skewed",
                   "timestamp": T0.isoformat(), "messageId": str(uuid.uuid4())}  # fmt: skip
        post(raw_key, live_server.url, batch=[message], sentAt=now + dt.timedelta(hours=1))
        occurred_at = Event.objects.get().occurred_at
        expected = T0 - dt.timedelta(hours=1)
        assert abs(occurred_at - expected) < dt.timedelta(seconds=10)
        assert occurred_at < T0 - dt.timedelta(minutes=59)

    def test_original_timestamp_and_a_batch_sent_at_apply_when_the_message_has_none(self, send):
        sent_at = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=30)  # a clock 30 min slow
        response = send(
            "batch",
            {"sentAt": sent_at.isoformat(),
             "batch": [{"type": "track", "userId": "u1", "event": "a",
                        "originalTimestamp": T0.isoformat()},
                       {"type": "track", "userId": "u1", "event": "b",
                        "timestamp": T0.isoformat(), "sentAt": T0.isoformat()}]},
        )  # fmt: skip
        assert response.json() == {"success": True, "accepted": 2, "rejected": []}
        times = dict(Event.objects.values_list("name", "occurred_at"))
        assert abs(times["a"] - (T0 + dt.timedelta(minutes=30))) < dt.timedelta(seconds=10)
        # b's own sentAt equals its timestamp: it happened as it was received.
        assert abs(times["b"] - Event.objects.get(name="b").received_at) < dt.timedelta(seconds=1)

    def test_without_timestamps_the_event_happened_when_received(self, send):
        send("track", {"userId": "u1", "event": "now"})
        event = Event.objects.get()
        assert event.occurred_at == event.received_at

    def test_an_invalid_track_is_refused_field_by_field(self, send):
        response = send("track", {"properties": [1], "timestamp": "yesterday"})
        assert response.status_code == 400
        body = response.json()
        assert (body["success"], body["detail"]) == (False, "The message was not accepted.")
        assert set(body["errors"]) == {"event", "properties", "userId", "timestamp"}
        assert Event.objects.count() == 0 and Contact.objects.count() == 0

    def test_a_nul_character_rejects_only_that_message(self, send):
        response = send(
            "batch",
            {"batch": [{"type": "track", "userId": "u1", "event": "ok"},
                       {"type": "track", "userId": "u1", "event": "bad",
                        "properties": {"note": "a\u0000b"}}]},
        )  # fmt: skip
        assert response.status_code == 200
        assert response.json()["rejected"][0]["index"] == 1
        assert list(Event.objects.values_list("name", flat=True)) == ["ok"]


class TestAlias:
    @live
    def test_alias_merges_the_anonymous_profile_into_the_user(self, analytics, workspace):
        user = ContactFactory(workspace=workspace, external_id="u1")
        analytics.track(anonymous_id="anon-1", event="Added to Cart")
        visitor = AnonymousId.objects.get().contact

        analytics.alias("anon-1", "u1")

        assert list(Contact.objects.values_list("pk", flat=True)) == [user.pk]
        assert Event.objects.get().contact_id == user.pk
        merge = ContactMerge.objects.get()
        assert (merge.contact_id, merge.merged_contact_id, merge.events_moved, merge.source) == (
            user.pk,
            visitor.pk,
            1,
            "segment",
        )

    def test_alias_needs_both_ids(self, send):
        response = send("alias", {"userId": "u1"})
        assert response.status_code == 400
        assert list(response.json()["errors"]) == ["previousId"]


class TestBatch:
    def test_bad_items_are_reported_by_index_and_good_ones_stored(self, send, workspace):
        response = send(
            "batch",
            {"batch": [
                {"type": "track", "userId": "u1", "event": "Signed Up", "messageId": "m1"},
                {"type": "track", "userId": "u1"},
                "not an object",
                {"type": "explode", "userId": "u1"},
                {"type": "identify", "userId": "u1", "traits": {"email": "ann@acme.test"}},
                {"type": "identify", "traits": {"plan": "x"}},
                {"type": "page", "anonymousId": "anon-1", "name": "Home"},
            ]},
        )  # fmt: skip
        assert response.status_code == 200
        body = response.json()
        assert (body["success"], body["accepted"]) == (True, 3)
        assert [(item["index"], list(item["errors"])) for item in body["rejected"]] == [
            (1, ["event"]),
            (2, ["non_field_errors"]),
            (3, ["type"]),
            (5, ["userId"]),
        ]
        assert events(workspace) == [
            ("u1", "Signed Up", {}, "segment", "m1"),
            (None, "page", {"name": "Home"}, "segment", None),
        ]
        assert Contact.objects.get(external_id="u1").email == "ann@acme.test"

    def test_identifies_come_first_so_the_batchs_events_find_the_person(self, send, workspace):
        send(
            "batch",
            {"batch": [{"type": "track", "anonymousId": "anon-1", "event": "Viewed"},
                       {"type": "identify", "userId": "u1", "anonymousId": "anon-1"}]},
        )  # fmt: skip
        assert events(workspace) == [("u1", "Viewed", {}, "segment", None)]
        assert Contact.objects.count() == 1

    def test_a_batch_of_only_bad_items_answers_400(self, send):
        response = send("batch", {"batch": [{"type": "track"}, {"type": "nope"}]})
        assert response.status_code == 400
        body = response.json()
        assert (body["success"], body["accepted"]) == (False, 0)
        assert [item["index"] for item in body["rejected"]] == [0, 1]

    @live
    def test_the_python_client_in_the_background_sends_batches(self, live_server, raw_key):
        background = Client(raw_key, host=live_server.url, upload_size=50, max_retries=0)
        for number in range(120):
            background.track(f"u{number % 7}", "Tick", {"n": number})
        background.flush()
        background.join()
        assert Event.objects.count() == 120
        assert Contact.objects.count() == 7
        assert sorted(Event.objects.values_list("properties__n", flat=True)) == list(range(120))

    def test_more_than_ten_thousand_messages_answer_413(self, send):
        item = {"type": "track", "userId": "u1", "event": "e"}
        response = send("batch", {"batch": [item] * 10_001})
        assert response.status_code == 413
        assert response.json()["success"] is False
        assert Event.objects.count() == 0


class TestWire:
    @live
    def test_gzip_compressed_bodies_are_read(self, live_server, raw_key):
        zipped = Client(raw_key, host=live_server.url, sync_mode=True, gzip=True, max_retries=0)
        zipped.track("u1", "Compressed", {"ok": True})
        assert Event.objects.get().properties == {"ok": True}

    def test_an_oversized_body_answers_413(self, send, settings):
        settings.MAX_REQUEST_BYTES = 2_000
        response = send("track", {"userId": "u1", "event": "big", "properties": {"x": "y" * 3000}})
        assert response.status_code == 413
        assert response.json()["success"] is False
        assert Event.objects.count() == 0

    def test_a_gzip_bomb_is_stopped_at_the_limit(self, send, settings):
        settings.MAX_REQUEST_BYTES = 10_000
        body = json.dumps({"userId": "u1", "event": "bomb", "properties": {"x": "y" * 100_000}})
        compressed = gzip.compress(body.encode())
        assert len(compressed) < 10_000
        response = send("track", compressed, headers={"Content-Encoding": "gzip"})
        assert response.status_code == 413
        assert Event.objects.count() == 0

    @pytest.mark.parametrize(
        ("body", "headers"),
        [
            (b"{not json", {}),
            (b"\x1f\x8b broken", {"Content-Encoding": "gzip"}),
            (b'{"userId": "u1", "event": "e", "properties": {"x": NaN}}', {}),
            (b"[" * 100_000, {}),
        ],
    )
    def test_malformed_bodies_answer_400_json(self, send, body, headers):
        response = send("track", body, headers=headers)
        assert response.status_code == 400
        assert response.json()["success"] is False
        assert Event.objects.count() == 0

    @pytest.mark.parametrize(
        ("name", "body", "field"),
        [
            ("batch", {"batch": {"type": "track"}}, "batch"),
            ("batch", {"batch": [], "sentAt": "soon"}, "sentAt"),
            ("track", [{"userId": "u1", "event": "e"}], "non_field_errors"),
        ],
    )
    def test_a_body_of_the_wrong_shape_answers_400_naming_the_field(self, send, name, body, field):
        response = send(name, body)
        assert response.status_code == 400
        assert (response.json()["success"], list(response.json()["errors"])) == (False, [field])

    def test_analytics_js_posts_text_plain_to_one_letter_paths_with_the_key_in_the_body(
        self, send, raw_key, workspace
    ):
        """What analytics.js sends: /v1/<first letter of the type>, or /v1/b when batching,
        Content-Type text/plain (no CORS preflight), writeKey and sentAt in the body."""
        browser = {"Content-Type": "text/plain", "Origin": "https://shop.test"}
        sent_at = dt.datetime.now(dt.UTC).isoformat()
        page = {"type": "page", "anonymousId": "anon-1", "name": "Home", "writeKey": raw_key,
                "sentAt": sent_at, "context": {"page": {"path": "/", "url": "https://shop.test/"}},
                "properties": {}, "messageId": "ajs-1"}  # fmt: skip
        batch = {"writeKey": raw_key, "sentAt": sent_at, "batch": [
            {"type": "identify", "userId": "u1", "anonymousId": "anon-1",
             "traits": {"email": "ann@shop.test"}, "context": {"locale": "en-US"}},
            {"type": "track", "userId": "u1", "event": "Added to Cart", "messageId": "ajs-2"},
        ]}  # fmt: skip
        for name, body in (("page-analytics-js", page), ("batch-analytics-js", batch)):
            response = send(name, body, key=False, headers=browser)
            assert response.status_code == 200, response.content
            assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert [reverse(f"segment-{name}-analytics-js") for name in ("page", "batch")] == [
            "/v1/p",
            "/v1/b",
        ]
        assert events(workspace) == [
            ("u1", "page", {"path": "/", "url": "https://shop.test/", "name": "Home"},
             "segment", "ajs-1"),
            ("u1", "Added to Cart", {}, "segment", "ajs-2"),
        ]  # fmt: skip
        contact = Contact.objects.get()
        assert (contact.email, contact.locale) == ("ann@shop.test", "en-US")

    def test_a_bearer_key_works_too(self, send, raw_key):
        response = send("track", {"userId": "u1", "event": "e"}, key=False,
                        headers={"Authorization": f"Bearer {raw_key}"})  # fmt: skip
        assert response.json() == {"success": True}
        assert Event.objects.count() == 1

    def test_a_cors_preflight_needs_no_key(self, client):
        response = client.options(
            "/v1/batch",
            headers={"Origin": "https://shop.test", "Access-Control-Request-Method": "POST"},
        )
        assert response.status_code == 204
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert "Content-Encoding" in response.headers["Access-Control-Allow-Headers"]

    def test_csrf_does_not_apply_even_with_a_signed_in_session(self, client, owner, raw_key):
        client.handler.enforce_csrf_checks = True
        client.force_login(owner)
        response = client.post(
            "/v1/track",
            {"userId": "u1", "event": "e"},
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {raw_key}",
        )
        assert response.status_code == 200
        assert Event.objects.count() == 1


class TestAccess:
    @live
    def test_a_wrong_write_key_answers_401_and_stores_nothing(self, live_server, send):
        wrong = Client("orc_wrong", host=live_server.url, sync_mode=True, max_retries=0)
        with pytest.raises(APIError) as failure:
            wrong.track("u1", "Order Completed")
        assert failure.value.status == 401
        response = send("identify", {"userId": "u1", "traits": {"plan": "x"}},
                        key="orc_wrong")  # fmt: skip
        assert response.status_code == 401
        assert response.json() == {
            "success": False,
            "detail": "The API key is unknown or revoked.",
        }
        assert (Contact.objects.count(), Event.objects.count()) == (0, 0)

    def test_no_key_answers_401(self, send):
        response = send("track", {"userId": "u1", "event": "e"}, key=False)
        assert response.status_code == 401
        assert Event.objects.count() == 0

    @live
    def test_a_read_only_key_answers_403(self, live_server, workspace):
        read_key = create_api_key(workspace, "reporting", ["read"])[1]
        reader = Client(read_key, host=live_server.url, sync_mode=True, max_retries=0)
        with pytest.raises(APIError) as failure:
            reader.track("u1", "Order Completed")
        assert failure.value.status == 403
        assert (Contact.objects.count(), Event.objects.count()) == (0, 0)

    @live
    def test_a_revoked_key_answers_401(self, live_server, workspace):
        key, raw = create_api_key(workspace, "old", ["ingest"])
        key.revoke()
        with pytest.raises(APIError) as failure:
            Client(raw, host=live_server.url, sync_mode=True, max_retries=0).track("u1", "e")
        assert failure.value.status == 401

    @live
    def test_a_write_key_may_ingest(self, live_server, workspace):
        write_key = create_api_key(workspace, "backend", ["write"])[1]
        Client(write_key, host=live_server.url, sync_mode=True).track("u1", "Order Completed")
        assert Event.objects.count() == 1

    @live
    def test_an_outsiders_key_never_touches_acmes_contact(
        self, live_server, workspace, other_workspace
    ):
        acme = ContactFactory(workspace=workspace, external_id="acme-1", email="ann@acme.test",
                              attributes={"plan": "pro"})  # fmt: skip
        EventFactory(contact=acme, name="purchase", message_id="shared-id")
        before = Contact.objects.filter(pk=acme.pk).values().get()
        outsider_key = create_api_key(other_workspace, "theirs", ["ingest", "write"])[1]
        theirs = Client(outsider_key, host=live_server.url, sync_mode=True, max_retries=0)

        theirs.identify("acme-1", {"email": "ann@acme.test", "plan": "hacked"},
                        anonymous_id="anon-x")  # fmt: skip
        theirs.track("acme-1", "purchase", {"amount": 1}, message_id="shared-id")
        theirs.group("acme-1", "evil-corp")
        theirs.alias("acme-1", "acme-2")

        assert Contact.objects.filter(pk=acme.pk).values().get() == before
        assert list(acme.events.values_list("name", "message_id")) == [("purchase", "shared-id")]
        assert ContactMerge.objects.count() == 0
        mine = Contact.objects.for_workspace(other_workspace).get()
        assert (mine.external_id, mine.email) == ("acme-2", "ann@acme.test")
        assert mine.attributes == {"plan": "hacked", "group_id": "evil-corp"}
        assert sorted(
            Event.objects.for_workspace(other_workspace).values_list("name", flat=True)
        ) == [
            "group",
            "purchase",
        ]
        assert AnonymousId.objects.get().workspace == other_workspace


OUTSIDER_MESSAGES = {
    "identify": {"userId": "acme-1", "anonymousId": "anon-x",
                 "traits": {"email": "ann@acme.test", "plan": "hacked"}},
    "track": {"userId": "acme-1", "event": "purchase", "messageId": "shared-id"},
    "page": {"userId": "acme-1", "name": "Home"},
    "screen": {"userId": "acme-1", "name": "Basket"},
    "group": {"userId": "acme-1", "groupId": "evil-corp"},
    "alias": {"previousId": "acme-1", "userId": "acme-2"},
}  # fmt: skip
OUTSIDER_MESSAGES["batch"] = {
    "batch": [{"type": name, **body} for name, body in OUTSIDER_MESSAGES.items()]
}


@pytest.mark.parametrize("suffix", ["", "-analytics-js"])
@pytest.mark.parametrize("name", list(OUTSIDER_MESSAGES))
def test_no_endpoint_lets_an_outsiders_key_reach_acme(
    name, suffix, send, workspace, other_workspace
):
    acme = ContactFactory(workspace=workspace, external_id="acme-1", email="ann@acme.test")
    EventFactory(contact=acme, name="purchase", message_id="shared-id")
    before = Contact.objects.filter(pk=acme.pk).values().get()
    outsider_key = create_api_key(other_workspace, "theirs", ["write"])[1]
    response = send(f"{name}{suffix}", OUTSIDER_MESSAGES[name], key=outsider_key)
    assert response.status_code == 200, response.content
    assert Contact.objects.filter(pk=acme.pk).values().get() == before
    assert Event.objects.for_workspace(workspace).count() == 1
    assert Contact.objects.for_workspace(workspace).count() == 1
    assert ContactMerge.objects.for_workspace(workspace).count() == 0
    # In the batch the alias renames their acme-1 to acme-2 before the events make a new acme-1.
    assert Contact.objects.for_workspace(other_workspace).count() == (2 if name == "batch" else 1)


def test_a_signed_in_session_without_a_key_stores_nothing(client_for, owner, workspace):
    """A session cookie is no write key: another site cannot make a member's browser post
    events (these endpoints skip CSRF, so they must not honour sessions at all)."""
    browser = client_for(owner)
    body = json.dumps({"userId": "u1", "event": "Forged", "messageId": "m-1"})
    response = browser.post("/v1/track", body, content_type="application/json")
    assert response.status_code in (401, 403)
    assert Event.objects.count() == 0
