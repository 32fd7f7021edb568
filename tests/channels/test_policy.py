"""The send-time policies on a claimed batch: contact pressure per day and week (when a
deferred message may go, or that it is dropped), priority across the batch and the queue,
and quiet hours in the contact's time zone, across midnight and daylight saving changes."""

import datetime as dt

import pytest

from apps.channels.choices import MessageStatus
from apps.channels.models import Channel, DeliveryPolicy, Message
from apps.channels.services import outbox, policy
from apps.contacts.choices import ConsentStatus
from apps.contacts.services.consent import set_consent
from tests.channels.factories import email_template
from tests.contacts.factories import ContactFactory

UTC = dt.UTC
NOW = dt.datetime(2026, 6, 10, 12, 0, tzinfo=UTC)
HOUR, DAY = dt.timedelta(hours=1), dt.timedelta(days=1)
SECOND = dt.timedelta(seconds=1)


@pytest.fixture
def make_policy(workspace):
    def make(**fields):
        return DeliveryPolicy.objects.create(workspace=workspace, **fields)

    return make


@pytest.fixture
def contact(workspace):
    def make(**fields):
        person = ContactFactory(workspace=workspace, **fields)
        set_consent(person, "email", ConsentStatus.SUBSCRIBED, "test")
        return person

    return make


@pytest.fixture
def message(workspace):
    """message(contact, ...): a row in the outbox; `sending` (claimed) unless told."""
    version = email_template(workspace).versions.get()
    channel = outbox.default_channel(workspace, "email")
    count = iter(range(1, 1000))

    def make(person, *, status=MessageStatus.SENDING, priority=0, due_at=NOW, sent_at=None,
             on=None):  # fmt: skip
        return Message.objects.create(
            workspace=workspace,
            contact=person,
            channel=on or channel,
            template_version=version,
            idempotency_key=f"m{next(count)}",
            status=status,
            priority=priority,
            due_at=due_at,
            sent_at=sent_at,
        )

    return make


def sent(message, person, *ago: dt.timedelta) -> None:
    for age in ago:
        message(person, status=MessageStatus.SENT, due_at=NOW - age, sent_at=NOW - age)


def decide(*messages, now=NOW) -> dict[int, policy.Decision]:
    """What the worker decides for this claimed batch (loaded as send_batch loads it)."""
    batch = Message.objects.filter(pk__in=[m.pk for m in messages]).select_related(
        "contact", "channel", "channel__workspace", "template_version"
    )
    return policy.decide(list(batch), now)


# Contact pressure -------------------------------------------------------------------------


def test_under_the_daily_limit_the_message_is_sent_to_the_contacts_address(
    make_policy, contact, message
):
    make_policy(max_per_day=2)
    person = contact(email="ann@example.test")
    sent(message, person, 3 * HOUR)
    queued = message(person)

    assert decide(queued)[queued.pk] == policy.Decision(policy.SEND, recipient="ann@example.test")


def test_over_the_daily_limit_defers_until_the_oldest_send_of_the_day_is_a_day_old(
    make_policy, contact, message
):
    make_policy(max_per_day=2)
    person = contact()
    sent(message, person, 20 * HOUR, 3 * HOUR, 30 * HOUR)  # the last is outside the day
    queued = message(person)

    decision = decide(queued)[queued.pk]

    assert decision.action == policy.DEFER
    assert decision.until == NOW - 20 * HOUR + DAY + SECOND  # 4 hours from now
    assert decision.reason == "Over the contact's message limit."


def test_over_the_weekly_limit_defers_until_the_right_send_of_the_week_ages_out(
    make_policy, contact, message
):
    make_policy(max_per_week=3)
    person = contact()
    sent(message, person, 6 * DAY, 5 * DAY, HOUR, 8 * DAY)  # the last is outside the week
    queued = message(person)

    decision = decide(queued)[queued.pk]

    assert decision.action == policy.DEFER
    assert decision.until == NOW - 6 * DAY + 7 * DAY + SECOND  # when the oldest ages out


def test_with_both_limits_the_message_waits_for_the_later_of_the_two(make_policy, contact, message):
    make_policy(max_per_day=1, max_per_week=2)
    person = contact()
    sent(message, person, 6 * DAY, 2 * HOUR)  # day: room in 22 hours; week: in 1 day
    queued = message(person)

    assert decide(queued)[queued.pk].until == NOW + DAY + SECOND


def test_over_the_limit_with_the_drop_action_the_message_is_not_sent(make_policy, contact, message):
    make_policy(max_per_day=1, over_limit="drop")
    person = contact()
    sent(message, person, HOUR)
    queued = message(person)

    assert decide(queued)[queued.pk] == policy.Decision(
        policy.DROP, "Over the contact's message limit."
    )


def test_other_contacts_sends_do_not_count(make_policy, contact, message):
    make_policy(max_per_day=1)
    busy, quiet = contact(), contact(email="quiet@example.test")
    sent(message, busy, HOUR, 2 * HOUR)
    queued = message(quiet)

    assert decide(queued)[queued.pk].action == policy.SEND


# Priority -----------------------------------------------------------------------------------


def test_the_highest_priorities_in_a_batch_take_the_room_the_rest_wait(
    make_policy, contact, message
):
    make_policy(max_per_day=2)
    person, other = contact(), contact()
    low, high, middle = (message(person, priority=p) for p in (0, 5, 2))
    others = message(other, priority=0)

    decisions = decide(low, high, middle, others)

    assert decisions[high.pk].action == policy.SEND
    assert decisions[middle.pk].action == policy.SEND
    assert decisions[low.pk].action == policy.DEFER
    assert decisions[low.pk].until == NOW + DAY + SECOND  # once the two going now age out
    assert decisions[others.pk].action == policy.SEND  # its own room


def test_equal_priorities_go_in_the_order_they_came_due(make_policy, contact, message):
    make_policy(max_per_day=1, over_limit="drop")
    person = contact()
    later = message(person, due_at=NOW - HOUR)
    earlier = message(person, due_at=NOW - 2 * HOUR)

    decisions = decide(later, earlier)

    assert decisions[earlier.pk].action == policy.SEND
    assert decisions[later.pk].action == policy.DROP


def test_a_higher_priority_message_still_queued_keeps_the_room_from_the_batch(
    make_policy, contact, message
):
    make_policy(max_per_day=1)
    person = contact()
    in_batch = message(person, priority=1)
    message(person, status=MessageStatus.QUEUED, priority=9)  # due, another worker's next
    message(person, status=MessageStatus.QUEUED, priority=20, due_at=NOW + HOUR)  # not yet due

    assert decide(in_batch)[in_batch.pk].action == policy.DEFER


def test_a_message_dropped_for_another_reason_uses_none_of_the_room(
    workspace, make_policy, contact, message
):
    make_policy(max_per_day=1)
    person = contact()
    off = Channel.objects.create(workspace=workspace, name="Old SMTP", type="email",
                                 provider="server", is_active=False)  # fmt: skip
    switched_off = message(person, priority=9, on=off)
    normal = message(person, priority=0)

    decisions = decide(switched_off, normal)

    assert decisions[switched_off.pk] == policy.Decision(
        policy.DROP, "The channel is switched off."
    )
    assert decisions[normal.pk].action == policy.SEND


# Quiet hours --------------------------------------------------------------------------------


def at(day: str, time: str) -> dt.datetime:
    return dt.datetime.fromisoformat(f"{day}T{time}+00:00")


@pytest.mark.parametrize(
    ("now", "until"),
    [
        (at("2026-06-10", "21:30"), at("2026-06-11", "05:00")),  # 23:30 in Copenhagen (CEST)
        (at("2026-06-10", "20:00"), at("2026-06-11", "05:00")),  # 22:00 sharp: quiet
        (at("2026-06-11", "01:00"), at("2026-06-11", "05:00")),  # 03:00: until this morning
        (at("2026-06-11", "05:00"), None),  # 07:00 sharp: over
        (at("2026-06-10", "10:00"), None),  # noon
    ],
)
def test_quiet_hours_across_midnight_defer_to_the_end_of_the_night(
    make_policy, contact, message, now, until
):
    make_policy(quiet_hours_start=dt.time(22), quiet_hours_end=dt.time(7))
    queued = message(contact(timezone="Europe/Copenhagen"))

    decision = decide(queued, now=now)[queued.pk]

    if until is None:
        assert decision.action == policy.SEND
    else:
        assert decision == policy.Decision(policy.DEFER, "Quiet hours for the contact.", until)


def test_quiet_hours_follow_each_contacts_own_time_zone(make_policy, contact, message):
    make_policy(quiet_hours_start=dt.time(22), quiet_hours_end=dt.time(7))
    copenhagen = message(contact(timezone="Europe/Copenhagen"))  # 23:30
    new_york = message(contact(timezone="America/New_York"))  # 17:30
    tokyo = message(contact(timezone="Asia/Tokyo"))  # 06:30 tomorrow
    unknown = message(contact(timezone=""))  # the workspace's: Copenhagen
    misspelt = message(contact(timezone="Europe/Kopenhagen"))

    decisions = decide(
        copenhagen, new_york, tokyo, unknown, misspelt, now=at("2026-06-10", "21:30")
    )

    assert decisions[copenhagen.pk].until == at("2026-06-11", "05:00")
    assert decisions[new_york.pk].action == policy.SEND
    assert decisions[tokyo.pk].until == at("2026-06-10", "22:00")  # 07:00 in Tokyo
    assert decisions[unknown.pk].until == at("2026-06-11", "05:00")
    assert decisions[misspelt.pk].until == at("2026-06-11", "05:00")


@pytest.mark.parametrize(
    ("now", "until"),
    [
        # Spring forward (29 March 2026, 02:00 CET -> 03:00 CEST): 07:00 is 05:00 UTC.
        (at("2026-03-28", "22:30"), at("2026-03-29", "05:00")),
        # Fall back (25 October 2026, 03:00 CEST -> 02:00 CET): 07:00 is 06:00 UTC.
        (at("2026-10-24", "21:30"), at("2026-10-25", "06:00")),
    ],
)
def test_quiet_hours_end_at_the_local_time_across_a_daylight_saving_change(
    make_policy, contact, message, now, until
):
    make_policy(quiet_hours_start=dt.time(22), quiet_hours_end=dt.time(7))
    queued = message(contact(timezone="Europe/Copenhagen"))

    assert decide(queued, now=now)[queued.pk].until == until


def test_quiet_hours_ending_in_the_skipped_hour_end_when_the_clock_jumps(
    make_policy, contact, message
):
    # 02:30 does not exist in Copenhagen on 29 March 2026: the clock goes 01:59:59 -> 03:00.
    make_policy(quiet_hours_start=dt.time(1), quiet_hours_end=dt.time(2, 30))
    queued = message(contact(timezone="Europe/Copenhagen"))

    decision = decide(queued, now=at("2026-03-29", "00:15"))[queued.pk]  # 01:15 CET

    assert decision.until == at("2026-03-29", "01:00")  # 03:00 CEST, the first minute after


def test_quiet_hours_ending_in_the_repeated_hour_end_the_first_time_it_strikes(
    make_policy, contact, message
):
    # 02:30 happens twice in Copenhagen on 25 October 2026 (CEST, then CET).
    make_policy(quiet_hours_start=dt.time(1), quiet_hours_end=dt.time(2, 30))
    queued = message(contact(timezone="Europe/Copenhagen"))

    decision = decide(queued, now=at("2026-10-24", "23:15"))[queued.pk]  # 01:15 CEST

    assert decision.until == at("2026-10-25", "00:30")  # 02:30 CEST
