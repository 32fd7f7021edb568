"""The forecast: entries from the entry's audience, then the flow down the graph, with
exact numbers on a small workspace of ten contacts."""

import datetime as dt

import pytest
from django.utils import timezone

from apps.journeys.services import forecast as forecasting
from apps.journeys.services import journeys
from apps.segments.models import Segment, SegmentMembership
from tests.contacts.factories import ContactFactory, EventFactory

NOW = timezone.now()


def days_ago(days: float) -> dt.datetime:
    return NOW - dt.timedelta(days=days)


@pytest.fixture
def contacts(workspace):
    """Ten contacts: the first five on the pro plan, the first four in Denmark (so two are
    both). Contacts 0-3 signed up in the last week (contact 0 twice), contact 9 ten days
    ago; contacts 0 and 5 bought in the last 30 days, contact 6 forty days ago."""
    people = [
        ContactFactory(
            workspace=workspace,
            attributes={
                "plan": "pro" if i < 5 else "free",
                "country": "DK" if i in (0, 1, 7, 8) else "SE",
            },
        )
        for i in range(10)
    ]
    for i in (0, 0, 1, 2, 3):
        EventFactory(contact=people[i], name="signed_up", occurred_at=days_ago(1 + i))
    EventFactory(contact=people[9], name="signed_up", occurred_at=days_ago(10))
    EventFactory(contact=people[0], name="purchase", occurred_at=days_ago(3))
    EventFactory(contact=people[5], name="purchase", occurred_at=days_ago(20))
    EventFactory(contact=people[6], name="purchase", occurred_at=days_ago(40))
    return people


@pytest.fixture
def journey(workspace):
    return journeys.create_journey(
        workspace,
        {
            "name": "Draft",
            "entry": {"type": "api"},
            "start": "done",
            "nodes": [{"id": "done", "type": "exit"}],
        },
    )


GRAPH = {
    "name": "Welcome",
    "entry": {"type": "event", "event": "signed_up"},
    "start": "hello",
    "nodes": [
        {"id": "hello", "type": "send", "channel": "email", "template": "welcome-1"},
        {"id": "wait1", "type": "wait", "until_event": "purchase", "timeout": "P2D"},
        {"id": "bought", "type": "goal", "event": "purchase"},
        {"id": "pro", "type": "condition", "rule": {"attr": "plan", "op": "eq", "value": "pro"}},
        {"id": "upsell", "type": "send", "channel": "email", "template": "welcome-2"},
        {"id": "ab", "type": "random_split", "weights": {"a": 3, "b": 1}},
        {"id": "done", "type": "exit"},
        {"id": "long", "type": "wait", "duration": "P10D"},
        {"id": "late", "type": "send", "channel": "email", "template": "reminder"},
    ],
    "edges": [
        {"from": "hello", "to": "wait1"},
        {"from": "wait1", "to": "bought", "branch": "event"},
        {"from": "wait1", "to": "pro", "branch": "timeout"},
        {"from": "pro", "to": "upsell", "branch": "yes"},
        {"from": "pro", "to": "ab", "branch": "no"},
        {"from": "ab", "to": "done", "branch": "a"},
        {"from": "ab", "to": "long", "branch": "b"},
        {"from": "long", "to": "late"},
    ],
}


def test_event_entries_flow_down_waits_conditions_and_splits(journey, contacts):
    result = forecasting.forecast(journey, GRAPH, now=NOW)

    # 4 distinct contacts signed up in the last 7 days (contact 9's is too old)
    assert result.entries == 4
    assert result.basis == "The contacts who did “signed_up” in the last 7 days."
    # purchase in the last 30 days: 2 of 10 contacts (20%) -> 0.8 reach the goal, 3.2 time
    # out; pro plan: 5 of 10 -> 1.6 yes, 1.6 no; A/B 3:1 -> 1.2 a, 0.4 b; the 10-day wait
    # ends after the first week, so nobody reaches "late" in it.
    assert result.nodes == {
        "hello": 4,
        "wait1": 4,
        "bought": 1,
        "pro": 3,
        "upsell": 2,
        "ab": 2,
        "done": 1,
        "long": 0,
        "late": 0,
    }
    assert result.edges == {
        "hello:": 4,
        "wait1:event": 1,
        "wait1:timeout": 3,
        "pro:yes": 2,
        "pro:no": 2,
        "ab:a": 1,
        "ab:b": 0,
        "long:": 0,
    }


def test_time_adds_up_along_a_path(journey, contacts):
    graph = {
        **GRAPH,
        "start": "w1",
        "nodes": [
            {"id": "w1", "type": "wait", "duration": "P4D"},
            {"id": "w2", "type": "wait", "duration": "PT72H"},
            {"id": "w3", "type": "wait", "duration": "PT1H"},
            {"id": "done", "type": "exit"},
        ],
        "edges": [
            {"from": "w1", "to": "w2"},
            {"from": "w2", "to": "w3"},
            {"from": "w3", "to": "done"},
        ],
    }
    result = forecasting.forecast(journey, graph, now=NOW)
    # 4 days + 3 days is the week exactly; one more hour is past it
    assert result.nodes == {"w1": 4, "w2": 4, "w3": 4, "done": 0}


def test_multi_way_split_takes_each_contact_once_in_order(journey, contacts):
    graph = {
        **GRAPH,
        "start": "split",
        "nodes": [
            {
                "id": "split",
                "type": "split",
                "branches": [
                    {"name": "pro", "rule": {"attr": "plan", "op": "eq", "value": "pro"}},
                    {"name": "dk", "rule": {"attr": "country", "op": "eq", "value": "DK"}},
                ],
            },
            {"id": "p", "type": "exit"},
            {"id": "d", "type": "exit"},
            {"id": "e", "type": "exit"},
        ],
        "edges": [
            {"from": "split", "to": "p", "branch": "pro"},
            {"from": "split", "to": "d", "branch": "dk"},
            {"from": "split", "to": "e", "branch": "else"},
        ],
    }
    # 4 entries; shares of the 10 contacts: pro 5/10 (2), Danish and not pro 2/10 (0.8:
    # contacts 7 and 8, not the Danish pros 0 and 1), else 3/10 (1.2)
    result = forecasting.forecast(journey, graph, now=NOW)
    assert result.edges == {"split:pro": 2, "split:dk": 1, "split:else": 1}
    assert result.nodes == {"split": 4, "p": 2, "d": 1, "e": 1}


def test_segment_entry_counts_who_entered_or_else_its_size(workspace, journey, contacts):
    vip = Segment.objects.create(workspace=workspace, name="VIP", slug="vip", rule={"all": []})
    for contact in contacts[:3]:
        SegmentMembership.objects.create(workspace=workspace, segment=vip, contact=contact)
    entry = {"type": "segment_entered", "segment": "vip"}

    count, basis = forecasting.estimate_entries(journey, entry, NOW)
    assert (count, basis) == (
        3,
        "Nobody entered the segment vip in the last 7 days: its current size.",
    )

    for contact in contacts[:2]:
        EventFactory(
            contact=contact,
            name="segment_entered",
            properties={"segment": "vip"},
            occurred_at=days_ago(2),
        )
    EventFactory(
        contact=contacts[2],
        name="segment_entered",
        properties={"segment": "other"},
        occurred_at=days_ago(2),
    )
    count, basis = forecasting.estimate_entries(journey, entry, NOW)
    assert (count, basis) == (2, "The contacts who entered the segment vip in the last 7 days.")


@pytest.mark.parametrize("bad_date", [False, True])
def test_date_entry_counts_dates_in_the_next_week(bad_date, workspace, journey):
    today = timezone.localdate(NOW, timezone=dt.UTC)
    # Copenhagen's today is UTC's or the day after: stay clear of the window's edges
    soon = today + dt.timedelta(days=2)
    later = today + dt.timedelta(days=12)
    ContactFactory(
        workspace=workspace, attributes={"birthday": soon.replace(year=1992).isoformat()}
    )
    ContactFactory(
        workspace=workspace, attributes={"birthday": later.replace(year=1992).isoformat()}
    )
    ContactFactory(
        workspace=workspace, attributes={"renewal": (soon + dt.timedelta(days=7)).isoformat()}
    )
    ContactFactory(
        workspace=workspace, attributes={"renewal": (later + dt.timedelta(days=7)).isoformat()}
    )
    if bad_date:  # shaped like a date, but none: the SQL cast fails, checked one by one
        ContactFactory(
            workspace=workspace, attributes={"birthday": "1990-02-30", "renewal": "2024-13-01"}
        )

    yearly = {"type": "date_attribute", "attribute": "birthday", "yearly": True}
    assert forecasting.estimate_entries(journey, yearly, NOW) == (
        1,
        "The contacts whose birthday (any year) falls in the next 7 days.",
    )
    renewal = {"type": "date_attribute", "attribute": "renewal", "offset_days": -7}
    assert forecasting.estimate_entries(journey, renewal, NOW) == (
        1,
        "The contacts whose renewal, -7 days, falls in the next 7 days.",
    )


def test_api_entry_counts_recent_enrollments(workspace, contacts):
    journey = journeys.create_journey(
        workspace,
        {
            "name": "API",
            "entry": {"type": "api"},
            "start": "w",
            "nodes": [{"id": "w", "type": "wait", "duration": "P30D"}],
        },
    )
    journeys.publish(journey)
    journey.refresh_from_db()
    for contact in contacts[:3]:
        journeys.enroll_contact(journey, contact)
    journey.enrollments.filter(contact=contacts[0]).update(entered_at=days_ago(8))

    result = forecasting.forecast(journey, journey.draft, now=NOW)

    assert (result.entries, result.nodes) == (2, {"w": 2})
    assert result.basis == "The contacts enrolled through the API in the last 7 days."


def test_an_empty_workspace_forecasts_zero(journey):
    result = forecasting.forecast(journey, GRAPH, now=NOW)
    assert result.entries == 0
    assert set(result.nodes.values()) == {0}


def test_a_half_drawn_graph_is_forecast_as_far_as_it_goes(journey, contacts):
    graph = {
        "entry": {"type": "event", "event": "signed_up"},
        "start": "missing",
        "nodes": [{"id": "a", "type": "send"}, "junk"],
        "edges": [{"from": "a"}],
    }
    result = forecasting.forecast(journey, graph, now=NOW)
    assert (result.entries, result.nodes, result.edges) == (4, {"a": 0}, {})
