"""The feed: each event type comes from its source rows, once, to the subscriptions that
want it, in their own workspace, and only for what happened after they were created."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.channels.models import Message, MessageEvent
from apps.contacts.models import Contact, Event
from apps.journeys.models import Enrollment, Journey, JourneyStep, JourneyVersion
from apps.reporting.models import AttributionSettings
from apps.webhooks.models import WebhookDelivery, WebhookFeedPosition
from apps.webhooks.services import feed
from apps.webhooks.tasks import run_webhook_feed_task
from tests.channels.factories import ChannelFactory, email_template
from tests.contacts.factories import ContactFactory


@pytest.fixture
def ann(workspace):
    return ContactFactory(workspace=workspace, external_id="ann-1", email="ann@acme.test")


def deliveries(event_type=None):
    rows = WebhookDelivery.objects.order_by("id")
    if event_type:
        rows = rows.filter(event_type=event_type)
    return list(rows)


def only_delivery(event_type):
    found = deliveries(event_type)
    assert len(found) == 1, [d.event_type for d in deliveries()]
    return found[0]


def brief(contact):
    return {"id": contact.pk, "external_id": contact.external_id, "email": contact.email}


def event(contact, name, **properties):
    return Event.objects.create(
        workspace=contact.workspace,
        contact=contact,
        name=name,
        properties=properties,
        occurred_at=timezone.now(),
    )


def test_contact_created_carries_the_contact(subscribe, workspace):
    subscription = subscribe(["contact.created"])
    contact = ContactFactory(workspace=workspace, external_id="bo-2", attributes={"plan": "pro"})

    assert feed.run_feed()["contacts_contact"] == 1

    delivery = only_delivery("contact.created")
    assert delivery.subscription == subscription
    assert delivery.event_id == f"evt_cc_{contact.pk}"
    payload = delivery.payload
    assert payload["id"] == delivery.event_id and payload["type"] == "contact.created"
    assert payload["workspace"] == {"id": workspace.pk, "slug": "acme"}
    data = payload["data"]["contact"]
    assert (data["id"], data["external_id"], data["attributes"]) == (
        contact.pk,
        "bo-2",
        {"plan": "pro"},
    )
    assert {
        "email",
        "phone",
        "first_name",
        "last_name",
        "timezone",
        "locale",
        "created_at",
        "updated_at",
    } <= set(data)


def test_contact_updated_is_read_by_updated_at_behind_a_lag(subscribe, workspace, ann):
    subscribe(["contact.updated"])
    feed.run_feed()  # the first run starts reading updates from now
    position = WebhookFeedPosition.objects.get(source=feed.UPDATED_SOURCE)
    position.last_at = timezone.now() - timedelta(minutes=1)
    position.save()
    changed_at = timezone.now() - timedelta(seconds=30)
    Contact.objects.filter(pk=ann.pk).update(
        first_name="Anna", created_at=timezone.now() - timedelta(days=3), updated_at=changed_at
    )
    # A change newer than the lag waits for the next run.
    fresh = ContactFactory(workspace=workspace, created_at=timezone.now() - timedelta(days=3))

    feed.run_feed()

    delivery = only_delivery("contact.updated")
    assert delivery.payload["data"]["contact"]["first_name"] == "Anna"
    assert delivery.event_id.startswith(f"evt_cu_{ann.pk}_")
    assert fresh.pk not in [d.payload["data"]["contact"]["id"] for d in deliveries()]
    feed.run_feed()
    assert len(deliveries("contact.updated")) == 1


def test_creating_a_contact_is_not_also_an_update(subscribe, workspace):
    subscribe(["contact.updated", "contact.created"])
    feed.run_feed()
    WebhookFeedPosition.objects.filter(source=feed.UPDATED_SOURCE).update(
        last_at=timezone.now() - timedelta(minutes=1)
    )
    at = timezone.now() - timedelta(seconds=30)
    ContactFactory(workspace=workspace, created_at=at, updated_at=at)

    feed.run_feed()

    assert [d.event_type for d in deliveries()] == ["contact.created"]


def test_segment_entered_and_exited(subscribe, ann):
    subscribe(["segment.entered", "segment.exited"])
    entered = event(ann, "segment_entered", segment="vip", segment_name="VIP")
    event(ann, "segment_exited", segment="vip", segment_name="VIP")

    feed.run_feed()

    delivery = only_delivery("segment.entered")
    assert delivery.event_id == f"evt_ce_{entered.pk}"
    data = delivery.payload["data"]
    assert data["contact"] == brief(ann)
    assert data["segment"] == {"slug": "vip", "name": "VIP"}
    assert "occurred_at" in data
    assert only_delivery("segment.exited").payload["data"]["segment"]["slug"] == "vip"


def test_unsubscribed(subscribe, ann):
    subscribe(["contact.unsubscribed"])
    event(ann, "unsubscribed", channel="email", message_id=4)
    event(ann, "page_viewed")

    feed.run_feed()

    data = only_delivery("contact.unsubscribed").payload["data"]
    assert data["contact"] == brief(ann)
    assert data["properties"] == {"channel": "email", "message_id": 4}


def test_conversion_uses_the_workspaces_conversion_events(subscribe, workspace, ann):
    subscribe(["conversion"])
    purchase = event(ann, "purchase", amount=120)
    feed.run_feed()
    delivery = only_delivery("conversion")
    assert delivery.event_id == f"evt_cv_{purchase.pk}"
    assert delivery.payload["data"]["event"] == "purchase"
    assert delivery.payload["data"]["properties"] == {"amount": 120}

    AttributionSettings.objects.create(workspace=workspace, conversion_events=["signed_up"])
    event(ann, "purchase", amount=5)
    signed_up = event(ann, "signed_up")
    feed.run_feed()
    assert [d.event_id for d in deliveries("conversion")] == [
        f"evt_cv_{purchase.pk}",
        f"evt_cv_{signed_up.pk}",
    ]


@pytest.fixture
def enrollment(workspace, ann):
    journey = Journey.objects.create(workspace=workspace, name="Welcome series")
    version = JourneyVersion.objects.create(journey=journey, number=1, graph={})
    return Enrollment.objects.create(
        workspace=workspace, journey=journey, version=version, contact=ann, node_id="hello"
    )


@pytest.mark.parametrize(
    "outcome, event_type",
    [
        ("entered", "journey.enrolled"),
        ("completed", "journey.completed"),
        ("exited", "journey.exited"),
    ],
)
def test_journey_steps(outcome, event_type, subscribe, enrollment, ann):
    subscribe(["journey.enrolled", "journey.completed", "journey.exited"])
    JourneyStep.objects.create(enrollment=enrollment, node_id="hello", outcome="sent")
    step = JourneyStep.objects.create(
        enrollment=enrollment, node_id="done", outcome=outcome, detail="reason"
    )

    feed.run_feed()

    delivery = only_delivery(event_type)
    assert len(deliveries()) == 1  # "sent" is no journey event
    assert delivery.event_id == f"evt_js_{step.pk}"
    data = delivery.payload["data"]
    assert data["contact"] == brief(ann)
    assert data["journey"] == {"id": enrollment.journey_id, "name": "Welcome series"}
    assert (data["enrollment_id"], data["step"]) == (enrollment.pk, "done")


@pytest.fixture
def message(workspace, ann):
    version = email_template(workspace, "news").versions.get()
    return Message.objects.create(
        workspace=workspace,
        contact=ann,
        channel=ChannelFactory(workspace=workspace),
        template_version=version,
        idempotency_key="news-1",
        recipient="ann@acme.test",
        subject="News",
        status="sent",
    )


@pytest.mark.parametrize("kind", ["sent", "delivered", "opened", "clicked", "bounced"])
def test_message_events(kind, subscribe, message, ann):
    subscribe([f"message.{kind}"])
    detail = "https://shop.example.com/new" if kind == "clicked" else "250 OK"
    history = MessageEvent.objects.create(message=message, kind=kind, detail=detail)
    MessageEvent.objects.create(message=message, kind="queued")

    feed.run_feed()

    delivery = only_delivery(f"message.{kind}")
    assert delivery.event_id == f"evt_me_{history.pk}"
    data = delivery.payload["data"]
    assert data["contact"] == brief(ann)
    assert data["message"]["id"] == message.pk
    assert (data["message"]["channel"], data["message"]["template"]) == ("email", "news")
    if kind == "clicked":
        assert data["url"] == "https://shop.example.com/new"
    else:
        assert data["url"] is None and data["detail"] == "250 OK"


def test_running_the_feed_twice_queues_nothing_twice(subscribe, ann):
    subscribe()
    event(ann, "segment_entered", segment="vip", segment_name="VIP")
    first = feed.run_feed()
    assert sum(first.values()) == 2  # Ann's creation and her segment

    WebhookFeedPosition.objects.update(last_id=0)  # as if a run died before moving on
    again = feed.run_feed()

    assert sum(again.values()) == 0
    assert len(deliveries()) == 2


def test_only_the_chosen_types_of_active_subscriptions_in_the_same_workspace(
    subscribe, workspace, other_workspace, ann
):
    segments_only = subscribe(["segment.entered"])
    everything = subscribe(["*"], path="/all")
    subscribe(["*"], path="/off", is_active=False)
    stranger = ContactFactory(workspace=other_workspace)
    event(stranger, "segment_entered", segment="vip", segment_name="VIP")
    event(ann, "segment_entered", segment="vip", segment_name="VIP")

    feed.run_feed()

    assert [d.event_type for d in segments_only.deliveries.all()] == ["segment.entered"]
    assert sorted(d.event_type for d in everything.deliveries.all()) == [
        "contact.created",
        "segment.entered",
    ]
    assert len(deliveries()) == 3
    assert {d.workspace_id for d in deliveries()} == {workspace.pk}
    assert stranger.pk not in [d.payload["data"]["contact"]["id"] for d in deliveries()]


def test_a_new_subscription_gets_no_history(subscribe, workspace, ann):
    event(ann, "segment_entered", segment="vip", segment_name="VIP")
    subscription = subscribe(["segment.entered"])
    subscription.created_at = timezone.now()
    subscription.save(update_fields=["created_at"])

    feed.run_feed()

    assert deliveries() == []


def test_the_feed_task_queues_and_sends(subscribe, receiver, ann):
    subscribe(["segment.entered"])
    event(ann, "segment_entered", segment="vip", segment_name="VIP")

    queued = run_webhook_feed_task()

    assert queued["contacts_event"] == 1
    [request] = receiver.requests
    assert receiver.signature_ok(request)
    assert request.json()["type"] == "segment.entered"
    assert request.json()["data"]["contact"]["email"] == "ann@acme.test"
    assert only_delivery("segment.entered").status == "succeeded"
