"""The rollups the reports read agree with the raw tables: random histories are written in
rounds with a refresh after each, and every rollup row is compared with the same numbers
counted in Python from the raw rows (days in each workspace's own time zone)."""

import datetime as dt
import random
import zoneinfo
from collections import Counter
from decimal import Decimal

import pytest
from django.db import connection

from apps.channels.choices import ChannelType, MessageEventKind
from apps.channels.models import Message, MessageEvent
from apps.contacts.models import Event
from apps.journeys.choices import EnrollmentState, StepOutcome
from apps.journeys.models import Enrollment, Journey, JourneyStep, JourneyVersion
from apps.reporting.models import (
    EventDaily,
    JourneyDaily,
    MessageDaily,
    RollupWatermark,
    SegmentDaily,
)
from apps.reporting.services.rollups import SOURCES, refresh_rollups, refresh_source
from tests.accounts.factories import WorkspaceFactory
from tests.channels.factories import ChannelFactory, email_template
from tests.contacts.factories import ContactFactory

pytestmark = pytest.mark.django_db

START = dt.datetime(2026, 3, 27, 20, 0, tzinfo=dt.UTC)  # spans a summer-time change
# Opens twice as likely as the rest: repeated opens test the unique counts.
KINDS = [*MessageEventKind.values, MessageEventKind.OPENED, MessageEventKind.CLICKED]
OUTCOMES = StepOutcome.values


class History:
    """A random business in one workspace: contacts, events, messages with their history,
    journey steps."""

    def __init__(self, workspace, rng: random.Random):
        self.workspace, self.rng = workspace, rng
        self.contacts = ContactFactory.create_batch(6, workspace=workspace)
        template = email_template(workspace, slug=f"t-{workspace.pk}")
        self.version = template.versions.get()
        self.channels = [
            ChannelFactory(workspace=workspace, type=ChannelType.EMAIL),
            ChannelFactory(workspace=workspace, type=ChannelType.SMS, provider="http_json"),
        ]
        self.journey = Journey.objects.create(workspace=workspace, name="J", draft={})
        self.journey_version = JourneyVersion.objects.create(
            journey=self.journey, number=1, graph={}
        )
        self.messages: list[Message] = []
        self.enrollments: list[Enrollment] = []

    def when(self) -> dt.datetime:
        return START + dt.timedelta(minutes=self.rng.randrange(0, 5 * 24 * 60))

    def write_round(self) -> None:
        rng = self.rng
        for _ in range(rng.randrange(5, 25)):
            name = rng.choice(["purchase", "page_viewed", "segment_entered", "segment_exited"])
            properties = {}
            if name == "purchase":
                properties = rng.choice(
                    [{"amount": rng.randrange(1, 50_000) / 100}, {"revenue": 12.5, "amount": 99},
                     {"amount": "12"}, {"amount": 10**30}, {}]
                )  # fmt: skip
            elif name.startswith("segment_"):
                properties = {"segment": rng.choice(["vip", "lapsed"])}
            Event.objects.create(
                workspace=self.workspace, contact=rng.choice(self.contacts), name=name,
                properties=properties, occurred_at=self.when(),
            )  # fmt: skip
        for _ in range(rng.randrange(1, 6)):
            in_journey = rng.random() < 0.5
            self.messages.append(
                Message.objects.create(
                    workspace=self.workspace, contact=rng.choice(self.contacts),
                    channel=rng.choice(self.channels), template_version=self.version,
                    idempotency_key=f"m{len(self.messages)}-{rng.random()}",
                    journey_id=self.journey.pk if in_journey else None,
                    node_id=rng.choice(["hello", "nudge"]) if in_journey else "",
                )
            )  # fmt: skip
        for _ in range(rng.randrange(5, 30)):
            MessageEvent.objects.create(
                message=rng.choice(self.messages), kind=rng.choice(KINDS), at=self.when()
            )
        enrollment = Enrollment.objects.create(
            workspace=self.workspace, journey=self.journey, version=self.journey_version,
            contact=rng.choice(self.contacts), node_id="hello", state=EnrollmentState.COMPLETED,
            key=str(len(self.enrollments)), holdout=rng.random() < 0.3,
        )  # fmt: skip
        self.enrollments.append(enrollment)
        for _ in range(rng.randrange(1, 10)):
            outcome = rng.choice(OUTCOMES)
            JourneyStep.objects.create(
                enrollment=rng.choice(self.enrollments), node_id=rng.choice(["hello", "split"]),
                outcome=outcome, at=self.when(),
                detail=rng.choice(["a", "b"]) if outcome == StepOutcome.BRANCHED else "x",
            )  # fmt: skip


def day(workspace, at: dt.datetime) -> dt.date:
    return at.astimezone(zoneinfo.ZoneInfo(workspace.timezone)).date()


def revenue(properties: dict) -> Decimal:
    for key in ("revenue", "amount"):
        value = properties.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return round(Decimal(str(value)), 2) if abs(value) < 10**15 else Decimal(0)
    return Decimal(0)


def expected_messages() -> dict:
    counts: Counter = Counter()
    names = {"sent": "sent", "delivered": "delivered", "opened": "opens", "clicked": "clicks",
             "bounced": "bounced", "complained": "complained", "failed": "failed",
             "dropped": "dropped", "unsubscribed": "unsubscribed"}  # fmt: skip
    for line in MessageEvent.objects.select_related("message__channel", "message__workspace"):
        message = line.message
        if line.kind not in names:
            continue
        key = (message.workspace_id, day(message.workspace, line.at), message.channel.type,
               message.journey_id or 0, message.node_id)  # fmt: skip
        counts[key, names[line.kind]] += 1
        if line.kind in ("opened", "clicked"):
            first = not MessageEvent.objects.filter(
                message=message, kind=line.kind, pk__lt=line.pk
            ).exists()
            if first:
                counts[key, "unique_" + names[line.kind]] += 1
    return {k: v for k, v in counts.items() if v}


def actual_messages() -> dict:
    fields = ["sent", "delivered", "opens", "unique_opens", "clicks", "unique_clicks", "bounced",
              "complained", "failed", "dropped", "unsubscribed"]  # fmt: skip
    actual = {}
    for row in MessageDaily.objects.all():
        key = (row.workspace_id, row.day, row.channel, row.journey_id, row.node_id)
        for field in fields:
            if getattr(row, field):
                actual[key, field] = getattr(row, field)
    return actual


def expected_events() -> tuple[dict, dict]:
    events: Counter = Counter()
    money: dict = {}
    segments: Counter = Counter()
    for event in Event.objects.select_related("workspace"):
        key = (event.workspace_id, day(event.workspace, event.occurred_at), event.name)
        events[key] += 1
        money[key] = money.get(key, Decimal(0)) + revenue(event.properties)
        if event.name in ("segment_entered", "segment_exited"):
            column = "entered" if event.name == "segment_entered" else "exited"
            segments[(*key[:2], event.properties["segment"], column)] += 1
    return {k: (n, money[k]) for k, n in events.items()}, dict(segments)


def expected_steps() -> Counter:
    counts: Counter = Counter()
    steps = list(JourneyStep.objects.select_related("enrollment__workspace").order_by("pk"))
    for step in steps:
        enrollment = step.enrollment
        workspace = enrollment.workspace
        key = (workspace.pk, enrollment.journey_id, day(workspace, step.at))
        branch = step.detail if step.outcome == StepOutcome.BRANCHED else ""
        counts[(*key, step.node_id, step.outcome, branch, enrollment.holdout)] += 1
        if step.outcome == StepOutcome.CONVERTED:
            taken = {
                (earlier.node_id, earlier.detail)
                for earlier in steps
                if earlier.enrollment_id == step.enrollment_id
                and earlier.outcome == StepOutcome.BRANCHED
                and earlier.pk < step.pk
            }
            for node_id, branch_taken in taken:
                counts[(*key, node_id, "split_converted", branch_taken, enrollment.holdout)] += 1
    return counts


def assert_rollups_agree_with_raw_rows() -> None:
    assert actual_messages() == expected_messages()
    events, segments = expected_events()
    assert {
        (r.workspace_id, r.day, r.name): (r.count, r.revenue) for r in EventDaily.objects.all()
    } == events
    actual_segments = {}
    for r in SegmentDaily.objects.all():
        for column in ("entered", "exited"):
            if getattr(r, column):
                actual_segments[(r.workspace_id, r.day, r.segment, column)] = getattr(r, column)
    assert actual_segments == segments
    assert {
        (r.workspace_id, r.journey_id, r.day, r.node_id, r.outcome, r.branch, r.holdout): r.count
        for r in JourneyDaily.objects.all()
    } == expected_steps()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_rollups_kept_in_rounds_agree_with_the_raw_tables(seed, monkeypatch):
    from apps.reporting.services import rollups

    monkeypatch.setattr(rollups, "CHUNK_IDS", 7)  # many chunks per refresh
    rng = random.Random(seed)
    histories = [
        History(WorkspaceFactory(timezone="Europe/Copenhagen"), rng),
        History(WorkspaceFactory(timezone="America/New_York"), rng),
    ]
    for _round in range(4):
        for history in histories:
            history.write_round()
        refresh_rollups()
        assert_rollups_agree_with_raw_rows()
    # Run again with nothing new: nothing is counted twice.
    assert refresh_rollups() == {source.table: 0 for source in SOURCES}
    assert_rollups_agree_with_raw_rows()


def test_rebuilt_from_scratch_the_rollups_are_the_same():
    history = History(WorkspaceFactory(timezone="Europe/Stockholm"), random.Random(7))
    for _round in range(3):
        history.write_round()
        refresh_rollups()
    columns = ("day", "channel", "journey_id", "node_id", "sent", "unique_opens", "clicks")
    kept = sorted(MessageDaily.objects.values_list(*columns))
    MessageDaily.objects.all().delete()
    RollupWatermark.objects.all().delete()
    refresh_rollups()
    assert sorted(MessageDaily.objects.values_list(*columns)) == kept


def test_a_chunk_that_fails_counts_nothing_and_the_next_run_counts_it_once(monkeypatch):
    history = History(WorkspaceFactory(), random.Random(3))
    history.write_round()
    broken = SOURCES[2].__class__(SOURCES[2].table, (*SOURCES[2].statements, "SELECT 1/0"))
    with pytest.raises(Exception, match="division by zero"):
        refresh_source(broken)
    assert not EventDaily.objects.exists()
    assert not RollupWatermark.objects.filter(source="contacts_event", last_id__gt=0).exists()
    refresh_rollups()
    assert_rollups_agree_with_raw_rows()


@pytest.mark.django_db(transaction=True)
def test_a_writer_still_in_flight_holds_the_refresh_back_until_it_ends(monkeypatch):
    """Ids are handed out before commit: a row with a smaller id may appear after a larger
    one. While another connection's write is open, the refresh counts nothing of that
    table; once it commits, its row is counted."""
    import psycopg

    from apps.reporting.services import rollups

    monkeypatch.setattr(rollups, "SETTLE_SECONDS", 0.2)
    workspace = WorkspaceFactory()
    contact = ContactFactory(workspace=workspace)
    settings_dict = connection.settings_dict
    other = psycopg.connect(
        dbname=settings_dict["NAME"], user=settings_dict["USER"],
        host=settings_dict["HOST"] or None, port=settings_dict["PORT"] or None,
        password=settings_dict["PASSWORD"] or None,
    )  # fmt: skip
    try:
        other.execute(
            "INSERT INTO contacts_event (workspace_id, contact_id, name, properties, "
            "occurred_at, received_at, source) VALUES (%s, %s, 'late', '{}', now(), now(), 'api')",
            [workspace.pk, contact.pk],
        )
        Event.objects.create(workspace=workspace, contact=contact, name="early", properties={},
                             occurred_at=START)  # fmt: skip
        assert rollups.settled_high_id("contacts_event") is None
        assert refresh_source(rollups.EVENTS) == 0
        other.commit()
        assert refresh_source(rollups.EVENTS) == 2
        assert sorted(EventDaily.objects.values_list("name", "count")) == [
            ("early", 1),
            ("late", 1),
        ]
    finally:
        other.close()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_beat_task_counts_new_rows_in_a_real_worker(celery_worker):
    from apps.reporting.tasks import refresh_rollups_task

    workspace = WorkspaceFactory(timezone="Europe/Copenhagen")
    contact = ContactFactory(workspace=workspace)
    for amount in (10, 32.5):
        Event.objects.create(workspace=workspace, contact=contact, name="purchase",
                             properties={"amount": amount}, occurred_at=START)  # fmt: skip
    counted = refresh_rollups_task.delay().get(timeout=30)
    assert counted["contacts_event"] == 2
    row = EventDaily.objects.get(workspace=workspace)
    assert (row.day, row.name, row.count, row.revenue) == (
        dt.date(2026, 3, 27),
        "purchase",
        2,
        Decimal("42.50"),
    )
