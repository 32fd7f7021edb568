"""Journeys run for real: events through ingest, the engine, the outbox, a real SMTP server."""

import pytest
from django.utils import timezone

from apps.channels.models import Message
from apps.journeys.choices import EnrollmentState
from apps.journeys.models import Enrollment, NodeStats
from apps.journeys.services import engine

pytestmark = pytest.mark.django_db(transaction=True)

WELCOME = {
    "name": "Welcome series",
    "entry": {"type": "event", "event": "signed_up"},
    "start": "hello",
    "nodes": [
        {"id": "hello", "type": "send", "channel": "email", "template": "welcome-1"},
        {"id": "wait1", "type": "wait", "duration": "P1D"},
        {"id": "again", "type": "send", "channel": "email", "template": "welcome-2"},
        {"id": "done", "type": "exit"},
    ],
    "edges": [
        {"from": "hello", "to": "wait1"},
        {"from": "wait1", "to": "again"},
        {"from": "again", "to": "done"},
    ],
}


def make_due(enrollment):
    Enrollment.objects.filter(pk=enrollment.pk).update(due_at=timezone.now())


def test_an_event_enrolls_the_contact_sends_waits_and_sends_again(
    live_journey, subscribed, track, smtp_server
):
    journey = live_journey(WELCOME)
    ann = subscribed(first_name="Ann", email="ann@example.test")

    track(ann, "signed_up")

    enrollment = Enrollment.objects.get()
    assert (enrollment.node_id, enrollment.state) == ("wait1", EnrollmentState.ACTIVE)
    assert [m["Subject"] for m in smtp_server.messages] == ["welcome-1 for Ann"]
    assert engine.advance_due() == 0  # not due for a day

    make_due(enrollment)
    assert engine.advance_due() == 1

    enrollment.refresh_from_db()
    assert enrollment.state == EnrollmentState.EXITED
    assert [m["Subject"] for m in smtp_server.messages] == [
        "welcome-1 for Ann",
        "welcome-2 for Ann",
    ]
    assert Message.objects.filter(journey_id=journey.pk).count() == 2
    stats = {s.node_id: s for s in NodeStats.objects.filter(journey=journey)}
    assert (stats["hello"].entered, stats["wait1"].waiting, stats["done"].exited) == (1, 0, 1)
    steps = list(enrollment.steps.values_list("node_id", "outcome"))
    assert steps == [
        ("hello", "entered"),
        ("hello", "sent"),
        ("wait1", "waiting"),
        ("wait1", "done"),
        ("again", "sent"),
        ("done", "exited"),
    ]


def test_a_contact_never_enters_twice_by_default(live_journey, subscribed, track, smtp_server):
    live_journey(WELCOME)
    ann = subscribed()

    track(ann, "signed_up")
    track(ann, "signed_up")

    assert Enrollment.objects.count() == 1
    assert len(smtp_server.messages) == 1


def test_wait_for_event_resumes_on_the_event_or_times_out(
    live_journey, subscribed, track, smtp_server
):
    live_journey(
        {
            "name": "Nudge",
            "entry": {"type": "event", "event": "signed_up"},
            "start": "wait",
            "nodes": [
                {"id": "wait", "type": "wait", "until_event": "purchase", "timeout": "P3D"},
                {"id": "thanks", "type": "send", "channel": "email", "template": "welcome-2"},
                {"id": "remind", "type": "send", "channel": "email", "template": "reminder"},
            ],
            "edges": [
                {"from": "wait", "to": "thanks", "branch": "event"},
                {"from": "wait", "to": "remind", "branch": "timeout"},
            ],
        }
    )
    buyer, idler = subscribed(first_name="Bo"), subscribed(first_name="Cy")
    track(buyer, "signed_up")
    track(idler, "signed_up")
    assert Enrollment.objects.filter(state=EnrollmentState.WAITING).count() == 2

    track(buyer, "purchase", amount=10)
    Enrollment.objects.filter(contact=idler).update(due_at=timezone.now())
    engine.advance_due()

    assert sorted(m["Subject"] for m in smtp_server.messages) == [
        "reminder for Cy",
        "welcome-2 for Bo",
    ]
    assert set(Enrollment.objects.values_list("state", flat=True)) == {EnrollmentState.COMPLETED}


def test_a_goal_pulls_the_contact_forward_and_exit_when_ends_it(
    live_journey, subscribed, track, smtp_server
):
    graph = {
        **WELCOME,
        "exit_when": {"event": "unsubscribed"},
        "nodes": [*WELCOME["nodes"], {"id": "bought", "type": "goal", "event": "purchase"}],
    }
    journey = live_journey(graph)
    buyer, leaver = subscribed(), subscribed()
    track(buyer, "signed_up")
    track(leaver, "signed_up")

    track(buyer, "purchase")
    track(leaver, "unsubscribed")

    by_contact = {e.contact_id: e for e in Enrollment.objects.all()}
    assert by_contact[buyer.pk].converted_at is not None
    assert by_contact[buyer.pk].state == EnrollmentState.COMPLETED
    assert by_contact[leaver.pk].state == EnrollmentState.EXITED
    assert "unsubscribed" in by_contact[leaver.pk].exit_reason
    assert NodeStats.objects.get(journey=journey, node_id="bought").converted == 1
    assert len(smtp_server.messages) == 2  # only the first email each


def test_abandoned_cart_keyed_by_cart_id(live_journey, subscribed, track, smtp_server):
    live_journey(
        {
            "name": "Abandoned cart",
            "entry": {"type": "event", "event": "cart_updated", "key": "cart_id"},
            "reentry": "always",
            "start": "wait",
            "nodes": [
                {"id": "wait", "type": "wait", "until_event": "order_completed", "timeout": "PT4H"},
                {"id": "remind", "type": "send", "channel": "email", "template": "reminder"},
                {"id": "done", "type": "exit"},
            ],
            "edges": [
                {"from": "wait", "to": "done", "branch": "event"},
                {"from": "wait", "to": "remind", "branch": "timeout"},
            ],
        }
    )
    ann = subscribed(first_name="Ann")
    track(ann, "cart_updated", cart_id="A")
    track(ann, "cart_updated", cart_id="B")
    assert sorted(Enrollment.objects.values_list("key", flat=True)) == ["A", "B"]

    track(ann, "order_completed", cart_id="A")
    Enrollment.objects.update(due_at=timezone.now())
    engine.advance_due()

    states = dict(Enrollment.objects.values_list("key", "state"))
    assert states == {"A": EnrollmentState.EXITED, "B": EnrollmentState.COMPLETED}
    assert [m["Subject"] for m in smtp_server.messages] == ["reminder for Ann"]


def test_condition_and_random_split_choose_per_contact(
    live_journey, subscribed, track, smtp_server
):
    live_journey(
        {
            "name": "Split",
            "entry": {"type": "event", "event": "signed_up"},
            "start": "vip",
            "nodes": [
                {
                    "id": "vip",
                    "type": "condition",
                    "rule": {"attr": "plan", "op": "eq", "value": "pro"},
                },
                {"id": "ab", "type": "random_split", "weights": {"a": 50, "b": 50}},
                {"id": "a", "type": "send", "channel": "email", "template": "welcome-1"},
                {"id": "b", "type": "send", "channel": "email", "template": "welcome-2"},
                {"id": "pro", "type": "send", "channel": "email", "template": "reminder"},
            ],
            "edges": [
                {"from": "vip", "to": "pro", "branch": "yes"},
                {"from": "vip", "to": "ab", "branch": "no"},
                {"from": "ab", "to": "a", "branch": "a"},
                {"from": "ab", "to": "b", "branch": "b"},
            ],
        }
    )
    pro = subscribed(attributes={"plan": "pro"})
    others = [subscribed() for _ in range(20)]
    for contact in [pro, *others]:
        track(contact, "signed_up")

    sent = dict(Message.objects.values_list("contact_id", "template_version__template__slug"))
    assert sent[pro.pk] == "reminder"
    variants = [sent[c.pk] for c in others]
    assert set(variants) == {"welcome-1", "welcome-2"}
    expected = [
        engine.weighted_choice(
            {"a": 50, "b": 50}, f"{Enrollment.objects.get(contact=c).journey_id}:{c.pk}:ab"
        )
        for c in others
    ]
    assert variants == ["welcome-1" if v == "a" else "welcome-2" for v in expected]


def test_a_paused_journey_holds_due_contacts_until_resumed(
    live_journey, subscribed, track, smtp_server
):
    from apps.journeys.services import journeys

    journey = live_journey(WELCOME)
    track(subscribed(), "signed_up")
    journeys.pause(journey)
    Enrollment.objects.update(due_at=timezone.now())

    assert engine.advance_due() == 0
    journey.refresh_from_db()
    journeys.resume(journey)  # the resume task runs at once (eager)

    assert Enrollment.objects.get().state == EnrollmentState.EXITED
    assert len(smtp_server.messages) == 2
