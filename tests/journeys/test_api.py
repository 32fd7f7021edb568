"""/api/v1/journeys/: the JSON contract in, every problem listed, the lifecycle, enrollment
through the API, per-node numbers, simulation, and nobody else's journeys."""

import copy

import pytest
from django.urls import reverse

from apps.journeys.models import Enrollment, Journey
from tests.journeys.test_engine import WELCOME

pytestmark = pytest.mark.django_db(transaction=True)

API_ENTRY = {**copy.deepcopy(WELCOME), "name": "Onboarding", "entry": {"type": "api"}}


@pytest.fixture
def api(workspace, api_key_for, templates):
    return api_key_for(workspace, ["read", "write"])


def url(name, journey=None):
    return reverse(f"api:journey-{name}", args=[journey.pk] if journey else [])


def test_a_broken_graph_is_refused_with_every_problem_listed(api):
    graph = {
        "name": "Broken",
        "entry": {"type": "event"},
        "start": "hello",
        "nodes": [
            {"id": "hello", "type": "send", "channel": "fax", "template": "welcome-1"},
            {"id": "wait", "type": "wait", "until_event": "purchase"},
            {"id": "lonely", "type": "exit"},
            {"id": "loop1", "type": "update_attribute", "attribute": "x", "value": 1},
            {"id": "loop2", "type": "send", "channel": "email", "template": "no-such"},
            {"id": "odd", "type": "teleport"},
        ],
        "edges": [
            {"from": "hello", "to": "wait"},
            {"from": "wait", "to": "loop1", "branch": "event"},
            {"from": "loop1", "to": "loop2"},
            {"from": "loop2", "to": "loop1"},
            {"from": "odd", "to": "nowhere"},
        ],
    }

    response = api.post(url("list"), graph, format="json")

    assert response.status_code == 400
    problems = response.json()["errors"]["graph"]
    expected = [
        "An event entry names its event.",
        "hello: channel must be one of",
        "wait: A wait for an event needs a timeout",
        "wait: Missing the 'timeout' branch.",
        "lonely: No path from the start reaches this node.",
        "loop2: Unknown email template 'no-such'.",
        "odd: Unknown node type 'teleport'.",
        "names an unknown node 'nowhere'",
        "A loop with no wait in it: loop1 → loop2 → loop1.",
    ]
    for text in expected:
        assert any(text in problem for problem in problems), (text, problems)
    assert Journey.objects.count() == 0


def test_create_publish_pause_resume_archive(api, workspace, subscribed, smtp_server):
    created = api.post(url("list"), WELCOME, format="json")
    assert created.status_code == 201, created.json()
    journey = Journey.objects.get()
    assert created.json()["status"] == "draft" and created.json()["graph"] == WELCOME

    published = api.post(url("publish", journey))
    assert published.json()["status"] == "live" and published.json()["live_version"] == 1
    assert api.post(url("pause", journey)).json()["status"] == "paused"
    assert api.post(url("pause", journey)).status_code == 409
    assert api.post(url("resume", journey)).json()["status"] == "live"

    from apps.contacts.services.events import record_events

    record_events(
        workspace, [{"external_id": subscribed().external_id, "name": "signed_up"}], "api"
    )
    archived = api.post(url("archive", journey), {"reason": "Season over"}, format="json")
    assert archived.json()["status"] == "archived"
    assert Enrollment.objects.get().exit_reason == "Season over"
    assert api.delete(url("detail", journey)).status_code == 409


def test_editing_a_live_journey_makes_a_draft_and_versions_can_be_restored(api):
    journey_id = api.post(url("list"), WELCOME, format="json").json()["id"]
    journey = Journey.objects.get(pk=journey_id)
    api.post(url("publish", journey))
    changed = {**WELCOME, "name": "Welcome v2"}

    assert api.put(url("detail", journey), changed, format="json").status_code == 200
    journey.refresh_from_db()
    assert journey.live_version.graph["name"] == "Welcome series"
    assert journey.draft["name"] == "Welcome v2"
    api.post(url("publish", journey))
    versions = api.get(url("versions", journey)).json()
    assert [v["number"] for v in versions] == [2, 1]

    restored = api.post(url("restore", journey), {"version": 1}, format="json")
    assert restored.json()["graph"]["name"] == "Welcome series"


def test_api_entry_enrolls_once_and_stats_count_it(api, subscribed, smtp_server):
    journey = Journey.objects.get(pk=api.post(url("list"), API_ENTRY, format="json").json()["id"])
    api.post(url("publish", journey))
    ann = subscribed(first_name="Ann")

    first = api.post(url("enroll", journey), {"external_id": ann.external_id}, format="json")
    again = api.post(url("enroll", journey), {"external_id": ann.external_id}, format="json")
    unknown = api.post(url("enroll", journey), {"external_id": "nobody"}, format="json")

    assert first.status_code == 201 and first.json()["node"] == "wait1"
    assert again.status_code == 200 and again.json()["enrolled"] is False
    assert unknown.status_code == 400 and "external_id" in unknown.json()["errors"]
    assert [m["Subject"] for m in smtp_server.messages] == ["welcome-1 for Ann"]
    stats = api.get(url("stats", journey)).json()
    assert stats["enrolled"] == 1 and stats["waiting"] == 1
    assert stats["nodes"]["hello"]["entered"] == 1 and stats["nodes"]["wait1"]["waiting"] == 1


def test_simulation_replays_history_and_sends_nothing(api, workspace, subscribed, smtp_server):
    import datetime as dt

    from django.utils import timezone

    from apps.contacts.models import Event

    graph = {
        "name": "Nudge",
        "entry": {"type": "event", "event": "signed_up"},
        "start": "hello",
        "nodes": [
            {"id": "hello", "type": "send", "channel": "email", "template": "welcome-1"},
            {"id": "wait", "type": "wait", "until_event": "purchase", "timeout": "P3D"},
            {"id": "thanks", "type": "send", "channel": "email", "template": "welcome-2"},
            {"id": "remind", "type": "send", "channel": "email", "template": "reminder"},
        ],
        "edges": [
            {"from": "hello", "to": "wait"},
            {"from": "wait", "to": "thanks", "branch": "event"},
            {"from": "wait", "to": "remind", "branch": "timeout"},
        ],
    }
    journey = Journey.objects.get(pk=api.post(url("list"), graph, format="json").json()["id"])
    buyer = subscribed()
    start = timezone.now() - dt.timedelta(days=10)
    for name, days in (("signed_up", 0), ("purchase", 2)):
        Event.objects.create(
            workspace=workspace,
            contact=buyer,
            name=name,
            occurred_at=start + dt.timedelta(days=days),
        )

    result = api.post(url("simulate", journey), {"contact": buyer.pk}, format="json").json()

    assert result["entered"] is True
    assert [m["template"] for m in result["messages"]] == ["welcome-1", "welcome-2"]
    assert ("wait", "resumed") in [(p["node"], p["outcome"]) for p in result["path"]]
    assert smtp_server.messages == [] and Enrollment.objects.count() == 0


def test_outsiders_and_narrow_keys_reach_nothing(api, workspace, other_workspace, api_key_for):
    journey = Journey.objects.get(pk=api.post(url("list"), WELCOME, format="json").json()["id"])
    outsider = api_key_for(other_workspace, ["read", "write", "ingest"])
    ingest_only = api_key_for(workspace, ["ingest"])

    assert outsider.get(url("list")).json()["results"] == []
    for name in ("detail", "stats", "versions"):
        assert outsider.get(url(name, journey)).status_code == 404
    for name in ("publish", "pause", "resume", "archive", "enroll", "restore", "simulate"):
        assert outsider.post(url(name, journey), {}, format="json").status_code == 404
    assert outsider.put(url("detail", journey), WELCOME, format="json").status_code == 404
    assert outsider.delete(url("detail", journey)).status_code == 404
    assert ingest_only.get(url("list")).status_code == 403
    assert ingest_only.post(url("publish", journey)).status_code == 403
    journey.refresh_from_db()
    assert journey.status == "draft"
