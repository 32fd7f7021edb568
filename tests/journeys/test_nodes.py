"""Every other node and entry: date entries in the contact's time zone, segment entries,
re-entry after N days, holdout, channel preference, attribute and list steps, webhooks."""

import datetime as dt

import pytest
from django.utils import timezone

from apps.channels.models import Message
from apps.channels.services.templates import create_template
from apps.contacts.models import ContactList, ListMembership
from apps.contacts.services.lists import create_list
from apps.journeys.choices import EnrollmentState
from apps.journeys.models import Enrollment
from apps.journeys.services import dates, engine
from apps.journeys.services.journeys import segments_used
from apps.segments.services import create_segment, journeys_using
from tests.channels.http_peer import HttpPeer

pytestmark = pytest.mark.django_db(transaction=True)


def one_step(name, node, entry=None, **extra):
    return {
        "name": name,
        "entry": entry or {"type": "event", "event": "go"},
        "start": "n",
        "nodes": [{"id": "n", **node}],
        "edges": [],
        **extra,
    }


def test_date_entry_fires_on_the_day_at_the_hour_in_the_contacts_zone(live_journey, subscribed):
    live_journey(
        one_step(
            "Renewal",
            {"type": "send", "channel": "email", "template": "reminder"},
            {"type": "date_attribute", "attribute": "renews_on", "offset_days": -7, "at": "09:00"},
        )
    )
    tokyo = subscribed(timezone="Asia/Tokyo", attributes={"renews_on": "2026-06-08"})
    subscribed(timezone="Asia/Tokyo", attributes={"renews_on": "2026-06-09"})  # a day later
    subscribed(timezone="Asia/Tokyo", attributes={"renews_on": "2026-02-30"})  # not a date

    before = dt.datetime(2026, 6, 1, 8, 30, tzinfo=dt.timezone(dt.timedelta(hours=9)))
    assert dates.enroll_due_dates(before) == 0
    at_nine = before + dt.timedelta(minutes=31)
    assert dates.enroll_due_dates(at_nine) == 1
    assert dates.enroll_due_dates(at_nine + dt.timedelta(hours=1)) == 0  # once per date

    enrollment = Enrollment.objects.get()
    assert enrollment.contact_id == tokyo.pk and enrollment.key == "2026-06-01"
    assert enrollment.entry_event["properties"] == {"renews_on": "2026-06-08"}
    assert Message.objects.get().contact_id == tokyo.pk


def test_yearly_date_entry_is_a_birthday(live_journey, subscribed):
    live_journey(
        one_step(
            "Birthday",
            {"type": "exit"},
            {"type": "date_attribute", "attribute": "born", "yearly": True},
        )
    )
    subscribed(timezone="UTC", attributes={"born": "1990-06-01"})

    assert dates.enroll_due_dates(dt.datetime(2026, 6, 1, 10, tzinfo=dt.UTC)) == 1


def test_segment_entry_and_journeys_using_the_segment(workspace, live_journey, subscribed, track):
    vip = create_segment(workspace, "VIP", {"attr": "plan", "op": "eq", "value": "pro"})
    journey = live_journey(
        one_step("VIP welcome", {"type": "exit"}, {"type": "segment_entered", "segment": vip.slug})
    )
    contact = subscribed()
    from apps.contacts.services.profiles import update_contact

    update_contact(contact, {"attributes": {"plan": "pro"}})  # enters the segment (eager)

    assert Enrollment.objects.get().contact_id == contact.pk
    assert segments_used(journey) == {vip.slug}
    assert journeys_using(vip) == [journey]


def test_reentry_after_days(live_journey, subscribed, track):
    live_journey(one_step("Again", {"type": "exit"}, reentry={"after_days": 30}))
    contact = subscribed()
    track(contact, "go")
    track(contact, "go")
    assert Enrollment.objects.count() == 1

    Enrollment.objects.update(entered_at=timezone.now() - dt.timedelta(days=31))
    track(contact, "go")
    assert Enrollment.objects.count() == 2


def test_holdout_contacts_travel_without_messages(live_journey, subscribed, track, smtp_server):
    journey = live_journey(
        one_step(
            "Holdout",
            {"type": "send", "channel": "email", "template": "reminder"},
            holdout_percent=50,
        )
    )
    contacts = [subscribed() for _ in range(40)]
    for contact in contacts:
        track(contact, "go")

    holdout = set(Enrollment.objects.filter(holdout=True).values_list("contact_id", flat=True))
    assert 5 < len(holdout) < 35
    sent_to = set(Message.objects.values_list("contact_id", flat=True))
    assert sent_to == {c.pk for c in contacts} - holdout
    expected = {
        c.pk
        for c in contacts
        if engine.weighted_choice(
            {"holdout": 5000, "journey": 5000}, f"holdout:{journey.pk}:{c.pk}"
        )
        == "holdout"
    }
    assert holdout == expected


def test_a_send_takes_the_first_channel_that_reaches_the_contact(
    workspace, live_journey, subscribed, track, smtp_server
):
    create_template(
        workspace,
        {"name": "Text", "slug": "text", "channel": "sms", "body": "Hi {{ contact.first_name }}"},
    )
    live_journey(
        one_step(
            "Prefer SMS",
            {
                "type": "send",
                "channels": ["sms", "email"],
                "template": {"sms": "text", "email": "reminder"},
            },
        )
    )
    contact = subscribed(phone="")  # no phone, and no SMS channel: email it is
    track(contact, "go")

    assert Message.objects.get().channel.type == "email"
    assert len(smtp_server.messages) == 1


def test_attribute_and_list_steps_change_the_contact(workspace, live_journey, subscribed, track):
    newsletter = create_list(workspace, "Newsletter")
    live_journey(
        {
            "name": "Tidy",
            "entry": {"type": "event", "event": "go"},
            "start": "a",
            "nodes": [
                {"id": "a", "type": "update_attribute", "attribute": "stage", "value": "onboarded"},
                {"id": "b", "type": "add_to_list", "list": newsletter.slug},
            ],
            "edges": [{"from": "a", "to": "b"}],
        }
    )
    contact = subscribed()
    track(contact, "go")

    contact.refresh_from_db()
    assert contact.attributes["stage"] == "onboarded"
    assert ListMembership.objects.filter(contact_list=newsletter, contact=contact).exists()
    assert ContactList.objects.count() == 1


def test_a_webhook_step_posts_the_contact_once_committed(live_journey, subscribed, track):
    with HttpPeer() as peer:
        live_journey(one_step("Hook", {"type": "webhook", "url": peer.url + "/crm"}))
        contact = subscribed(first_name="Ann")
        track(contact, "go", plan="pro")

        assert len(peer.requests) == 1
        request = peer.requests[0]
        assert request.route == "/crm"
        assert request.json()["contact"]["first_name"] == "Ann"
        assert request.json()["event"]["properties"] == {"plan": "pro"}
        assert request.headers["idempotency-key"].startswith("journey:")
    assert Enrollment.objects.get().state == EnrollmentState.COMPLETED


def test_until_time_waits_for_the_contacts_clock(workspace, subscribed):
    tokyo = subscribed(timezone="Asia/Tokyo")
    now = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)  # 21:00 in Tokyo
    due = engine.next_time_of_day(dt.time(9, 0), engine.contact_timezone(tokyo, workspace), now)
    assert due == dt.datetime(2026, 6, 2, 0, 0, tzinfo=dt.UTC)  # 09:00 the next Tokyo day
