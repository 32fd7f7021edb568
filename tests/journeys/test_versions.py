"""Versions: contacts in flight finish on theirs, or move by an explicit node mapping; and
the journey priority decides which message the contact-pressure policy lets through."""

import copy

import pytest
from django.utils import timezone

from apps.channels.models import DeliveryPolicy, Message
from apps.journeys.choices import EnrollmentState
from apps.journeys.models import Enrollment
from apps.journeys.services import engine, journeys
from tests.journeys.test_engine import WELCOME

pytestmark = pytest.mark.django_db(transaction=True)


def second_version(journey, template="reminder"):
    graph = copy.deepcopy(WELCOME)
    graph["nodes"][2]["template"] = template
    graph["nodes"][1]["id"] = "pause"
    graph["edges"] = [
        {"from": "hello", "to": "pause"},
        {"from": "pause", "to": "again"},
        {"from": "again", "to": "done"},
    ]
    journeys.update_draft(journey, graph)


def test_contacts_in_flight_finish_on_their_version(live_journey, subscribed, track, smtp_server):
    journey = live_journey(WELCOME)
    early = subscribed(first_name="Early")
    track(early, "signed_up")
    second_version(journey)
    journeys.publish(journey)
    late = subscribed(first_name="Late")
    track(late, "signed_up")

    Enrollment.objects.update(due_at=timezone.now())
    engine.advance_due()

    versions = dict(Enrollment.objects.values_list("contact_id", "version__number"))
    assert versions == {early.pk: 1, late.pk: 2}
    subjects = sorted(m["Subject"] for m in smtp_server.messages)
    assert subjects == [
        "reminder for Late",
        "welcome-1 for Early",
        "welcome-1 for Late",
        "welcome-2 for Early",
    ]


def test_publishing_with_a_node_mapping_moves_contacts_in_flight(
    live_journey, subscribed, track, smtp_server
):
    journey = live_journey(WELCOME)
    contact = subscribed(first_name="Ann")
    track(contact, "signed_up")
    second_version(journey)

    journeys.publish(journey, move_to={"wait1": "pause"})

    enrollment = Enrollment.objects.get()
    assert (enrollment.version.number, enrollment.node_id) == (2, "pause")
    assert enrollment.state == EnrollmentState.ACTIVE and enrollment.due_at is not None
    Enrollment.objects.update(due_at=timezone.now())
    engine.advance_due()
    assert [m["Subject"] for m in smtp_server.messages] == ["welcome-1 for Ann", "reminder for Ann"]


def test_a_bad_node_mapping_is_refused(live_journey):
    journey = live_journey(WELCOME)
    second_version(journey)
    with pytest.raises(journeys.JourneyError, match="nowhere"):
        journeys.publish(journey, move_to={"wait1": "nowhere"})
    journey.refresh_from_db()
    assert journey.live_version.number == 1


def test_the_higher_priority_journey_sends_when_only_one_message_may_go(
    workspace, live_journey, subscribed, track, smtp_server
):
    DeliveryPolicy.objects.create(workspace=workspace, max_per_day=1, over_limit="drop")
    one_send = {
        "entry": {"type": "event", "event": "go"},
        "start": "s",
        "nodes": [{"id": "s", "type": "send", "channel": "email"}],
        "edges": [],
    }
    low = {**copy.deepcopy(one_send), "name": "Low", "priority": 1}
    high = {**copy.deepcopy(one_send), "name": "High", "priority": 9}
    low["nodes"][0]["template"], high["nodes"][0]["template"] = "welcome-1", "reminder"
    live_journey(low)
    live_journey(high)
    # Both messages are queued in one go, then the outbox decides.
    from apps.channels.services import outbox

    Message.objects.all().delete()
    contact = subscribed(first_name="Ann")
    later = timezone.now() + timezone.timedelta(hours=1)
    Message.objects.update(due_at=later)
    track(contact, "go")

    assert [m["Subject"] for m in smtp_server.messages] == ["reminder for Ann"]
    statuses = dict(Message.objects.values_list("priority", "status"))
    assert statuses == {9: "sent", 1: "dropped"}
    assert outbox.send_due_messages()[0] == 0


def test_a_template_a_journey_sends_cannot_be_deleted(live_journey, templates):
    from apps.channels.services.editor import TemplateInUse, delete_template

    live_journey(WELCOME)
    with pytest.raises(TemplateInUse, match="Welcome series"):
        delete_template(templates["welcome-2"])
    delete_template(templates["reminder"])  # no journey sends it
