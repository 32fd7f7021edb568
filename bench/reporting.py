"""Reporting: the rollups that the dashboard and reports read, counted from scratch and
after 1% more rows, and each report page's and endpoint's server time with a warm cache,
beside the floor in the same run: the same figures computed with plain SQL straight from
the raw tables (messages, their tracking history, contact events, journey steps).

The data, generated with COPY in chunks (never all in memory) and reproducible from a
seed: contacts with consent; N messages over 90 days on three channels, some sent by
journeys, with their tracking history (sent, delivered, opens, clicks, bounces,
unsubscribes); N contact events (purchases with revenue, segment changes among them); a
few journeys with their enrollments and step log, one with a random split and a holdout
group.

Server time is measured by the client: one request at a time on a keep-alive connection to
the local gunicorn, from sending the request to the last byte of the answer (the server
sends no timing header of its own).
"""

import datetime as dt
import http.client
import json
import os
import random
import statistics
import subprocess
import sys
import time
import zoneinfo
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from bench.harness import (
    BASE_DIR,
    COPY_CHUNK_BYTES,
    HOST,
    REQUEST_TIMEOUT_SECONDS,
    BenchError,
    percentile,
)
from bench.segments import (
    CONSENT_COLUMNS,
    CONTACT_COLUMNS,
    EVENT_COLUMNS,
    consent_rows,
    contact_rows,
    copy_rows,
    event_properties,
)

NAME = "reporting"
TITLE = "Reporting: rollups and report pages"
# Run alone (`python -m bench reporting`) it has a database of its own.
DATABASE_NAME = "orchestra_reporting_bench"
# When the runner's SCALES do not say (bench/run.py): messages and contact events.
DEFAULT_SIZES = {"report_messages": 1_000_000, "report_events": 1_000_000}
# Timed requests per page and round (after WARM_REQUESTS that are not timed).
REQUESTS = {"quick": 30, "default": 50, "full": 50}
WARM_REQUESTS = 3
TARGET_P95_SECONDS = 0.2
SEED = 20_260_108
HISTORY_DAYS = 90
# The increments (1% more rows each) happen in the last hour, after the history.
HISTORY_END_BEFORE_NOW = timedelta(hours=1)
INCREMENT_WINDOW = timedelta(minutes=10)
INCREMENT_SHARE = 0.01
ROWS_PER_CHUNK = 50_000
TIMEZONE = "Europe/Copenhagen"
CONTACTS_PER_MESSAGE = 0.1
ENROLLMENTS_PER_MESSAGE = 0.1
# A fifth of the contacts get half of the messages and do half of everything.
ACTIVE_SHARE, ACTIVE_ACTIVITY_SHARE = 0.2, 0.5
JOURNEY_MESSAGE_SHARE = 0.4
CHANNEL_SHARES = {"email": 75, "sms": 15, "push": 10}
EVENT_SHARES = {
    "page_viewed": 52,
    "product_viewed": 22,
    "added_to_cart": 9,
    "purchase": 6,
    "signed_up": 3,
    "segment_entered": 5,
    "segment_exited": 3,
}
LINK = "https://shop.example.com/new"
SEGMENT_SLUGS = ["vip", "newsletter", "lapsed", "cart-abandoners"]
PLANS = ["free", "pro", "team"]

CHANNELS = [  # type, name, provider
    ("email", "Newsletter", "server"),
    ("sms", "Texts", "http_json"),
    ("push", "Web push", "webpush"),
]
EMAIL_HTML = (
    "<html><body><p>Hi {{ contact.first_name | default: 'there' }}, see "
    '<a href="https://shop.example.com/new">what is new</a>.</p></body></html>'
)


def _email(slug: str, name: str, subject: str) -> dict:
    return {"slug": slug, "name": name, "channel": "email", "subject": subject, "html": EMAIL_HTML}


TEMPLATES = [
    _email("newsletter", "Newsletter", "News"),
    _email("welcome-a", "Welcome A", "Welcome"),
    _email("welcome-b", "Welcome B", "Welcome, {{ contact.first_name }}"),
    _email("cart", "Cart reminder", "Your cart misses you"),
    _email("winback", "We miss you", "We miss you"),
    {
        "slug": "nudge",
        "name": "Nudge",
        "channel": "sms",
        "body": "Hi {{ contact.first_name }}, 10% off this week.",
    },
    {
        "slug": "push-cart",
        "name": "Cart push",
        "channel": "push",
        "subject": "Still thinking?",
        "body": "Your cart is waiting.",
    },
]
# The journeys: (key, share of enrollments, graph).
WELCOME = {
    "name": "Welcome A/B",
    "entry": {"type": "event", "event": "signed_up"},
    "holdout_percent": 10,
    "start": "ab",
    "nodes": [
        {"id": "ab", "type": "random_split", "weights": {"a": 50, "b": 50}},
        {"id": "mail_a", "type": "send", "channel": "email", "template": "welcome-a"},
        {"id": "mail_b", "type": "send", "channel": "email", "template": "welcome-b"},
        {"id": "pause", "type": "wait", "duration": "P2D"},
        {"id": "nudge", "type": "send", "channel": "sms", "template": "nudge"},
        {"id": "done", "type": "exit"},
        {"id": "bought", "type": "goal", "event": "purchase"},
    ],
    "edges": [
        {"from": "ab", "to": "mail_a", "branch": "a"},
        {"from": "ab", "to": "mail_b", "branch": "b"},
        {"from": "mail_a", "to": "pause"},
        {"from": "mail_b", "to": "pause"},
        {"from": "pause", "to": "nudge"},
        {"from": "nudge", "to": "done"},
    ],
}
CART = {
    "name": "Abandoned cart",
    "entry": {"type": "event", "event": "added_to_cart"},
    "start": "wait",
    "nodes": [
        {"id": "wait", "type": "wait", "duration": "P1D"},
        {"id": "remind", "type": "send", "channel": "email", "template": "cart"},
        {"id": "push", "type": "send", "channel": "push", "template": "push-cart"},
        {"id": "done", "type": "exit"},
        {"id": "bought", "type": "goal", "event": "purchase"},
    ],
    "edges": [
        {"from": "wait", "to": "remind"},
        {"from": "remind", "to": "push"},
        {"from": "push", "to": "done"},
    ],
}
WINBACK = {
    "name": "Win-back",
    "entry": {"type": "api"},
    "start": "mail",
    "nodes": [
        {"id": "mail", "type": "send", "channel": "email", "template": "winback"},
        {"id": "pause", "type": "wait", "duration": "P7D"},
        {"id": "push", "type": "send", "channel": "push", "template": "push-cart"},
        {"id": "done", "type": "exit"},
        {"id": "bought", "type": "goal", "event": "purchase"},
    ],
    "edges": [
        {"from": "mail", "to": "pause"},
        {"from": "pause", "to": "push"},
        {"from": "push", "to": "done"},
    ],
}
JOURNEYS = [("welcome", 40, WELCOME), ("cart", 40, CART), ("winback", 20, WINBACK)]
# Share of enrollments that reach the goal: per journey, and per branch / holdout group.
CONVERSION = {"welcome": {"a": 0.08, "b": 0.11, "holdout": 0.06}, "cart": 0.12, "winback": 0.04}

# A message's status is its furthest event.
STATUS_RANK = {"sent": 1, "delivered": 2, "bounced": 2, "failed": 2, "opened": 3, "clicked": 4}
MESSAGE_COLUMNS = [
    "id",
    "workspace_id",
    "contact_id",
    "channel_id",
    "template_version_id",
    "idempotency_key",
    "status",
    "reason",
    "priority",
    "context",
    "journey_id",
    "node_id",
    "recipient",
    "subject",
    "links",
    "provider_message_id",
    "attempts",
    "due_at",
    "created_at",
    "sent_at",
    "delivered_at",
    "opened_at",
    "clicked_at",
]
MESSAGE_EVENT_COLUMNS = ["message_id", "kind", "detail", "at"]
ENROLLMENT_COLUMNS = [
    "id",
    "workspace_id",
    "journey_id",
    "version_id",
    "contact_id",
    "key",
    "state",
    "node_id",
    "due_at",
    "awaiting_event",
    "holdout",
    "visits",
    "entry_event",
    "entered_at",
    "updated_at",
    "finished_at",
    "exit_reason",
    "converted_at",
]
STEP_COLUMNS = ["enrollment_id", "node_id", "outcome", "detail", "at"]
RAW_TABLES = [
    "contacts_contact",
    "contacts_consent",
    "contacts_event",
    "channels_message",
    "channels_messageevent",
    "journeys_enrollment",
    "journeys_journeystep",
]
ROLLUP_TABLES = [
    "reporting_messagedaily",
    "reporting_journeydaily",
    "reporting_eventdaily",
    "reporting_segmentdaily",
    "reporting_attributiondaily",
    "reporting_rollupwatermark",
]


def sizes(scale: dict) -> dict:
    """Everything's size from the runner's two (messages, contact events)."""
    messages = scale.get("report_messages", DEFAULT_SIZES["report_messages"])
    events = scale.get("report_events", DEFAULT_SIZES["report_events"])
    return {
        "messages": messages,
        "events": events,
        "contacts": max(100, int(messages * CONTACTS_PER_MESSAGE)),
        "enrollments": max(100, int(messages * ENROLLMENTS_PER_MESSAGE)),
    }


# -- the workspace's channels, templates and journeys (through the services) --------------------


@dataclass
class Setup:
    workspace_id: int
    channel_ids: dict[str, int]  # channel type -> id
    version_ids: dict[str, int]  # template slug -> its version's id
    journeys: dict[str, tuple[int, int]]  # key -> (journey id, version id)
    # channel type -> [(journey id, node id, template slug)]
    send_nodes: dict[str, list[tuple[int, str, str]]] = field(default_factory=dict)


def setup_workspace(workspace_id: int) -> Setup:
    """The workspace as a marketer leaves it: a time zone, three channels, templates and
    three published journeys."""
    from apps.accounts.models import Workspace
    from apps.channels.models import Channel
    from apps.channels.services.templates import create_template, current_version
    from apps.journeys.services import journeys

    workspace = Workspace.objects.get(pk=workspace_id)
    workspace.timezone = TIMEZONE
    workspace.save(update_fields=["timezone"])
    channel_ids = {}
    for kind, name, provider in CHANNELS:
        channel = Channel.objects.create(
            workspace=workspace, name=name, type=kind, provider=provider, is_default=True
        )
        channel_ids[kind] = channel.pk
    version_ids = {}
    for data in TEMPLATES:
        template, problems = create_template(workspace, data)
        if problems:
            raise BenchError(f"template {data['slug']}: {problems}")
        version_ids[data["slug"]] = current_version(template).pk
    published, send_nodes = {}, {kind: [] for kind, _name, _provider in CHANNELS}
    for key, _share, graph in JOURNEYS:
        journey = journeys.create_journey(workspace, graph)
        version = journeys.publish(journey)
        published[key] = (journey.pk, version.pk)
        for node in graph["nodes"]:
            if node["type"] == "send":
                send_nodes[node["channel"]].append((journey.pk, node["id"], node["template"]))
    return Setup(workspace_id, channel_ids, version_ids, published, send_nodes)


# -- the raw rows ------------------------------------------------------------------------------
#
# Times are seconds since the epoch (floats) until they are written; rows are written as
# COPY's text lines directly (every value here is free of tabs, newlines and backslashes),
# which keeps ten million messages to minutes of Python.

NULL = "\\N"
HOUR, DAY = 3_600.0, 86_400.0
_DAYS: dict[int, str] = {}
_CLOCK: list[str] = []


def stamp(seconds: float) -> str:
    """A moment as COPY reads a timestamptz (UTC, to the second)."""
    if not _CLOCK:
        _CLOCK.extend(f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}+00" for s in range(86_400))
    day, rest = divmod(int(seconds), 86_400)
    prefix = _DAYS.get(day)
    if prefix is None:
        prefix = _DAYS[day] = datetime.fromtimestamp(day * DAY, UTC).strftime("%Y-%m-%d ")
    return prefix + _CLOCK[rest]


def stamp_or_null(seconds: float | None) -> str:
    return NULL if seconds is None else stamp(seconds)


def table_of(shares: dict[str, int]) -> list[str]:
    """A list in which each choice appears as often as its share: a uniform pick from it
    is a weighted pick."""
    return [name for name, share in shares.items() for _ in range(share)]


def pick(rng: random.Random, count: int) -> int:
    """An index below `count`: half of the picks go to the first ACTIVE_SHARE of them."""
    if rng.random() < ACTIVE_ACTIVITY_SHARE:
        return int(rng.random() * max(1, int(count * ACTIVE_SHARE)))
    return int(rng.random() * count)


def tracking(kind: str, sent: float, end: float, rng: random.Random):
    """A message's history after it was sent, as [(at, kind, detail)] up to `end`, and its
    status then and when it was delivered, opened and clicked (None: not by `end`)."""
    events = [(sent, "sent", "")]
    delivered = opened = clicked = None
    if kind == "email":
        if rng.random() < 0.02:
            events.append((sent + 4, "bounced", "550 5.1.1 no such user"))
        else:
            delivered = sent + 2 + rng.random() * 5
            events.append((delivered, "delivered", ""))
            if rng.random() < 0.35:
                opened = delivered + rng.expovariate(1 / 6) * HOUR
                events.append((opened, "opened", "Thunderbird/128"))
                later = opened
                while rng.random() < 0.4:
                    later += rng.expovariate(1 / 12) * HOUR
                    events.append((later, "opened", "Apple Mail"))
                if rng.random() < 0.3:
                    clicked = opened + rng.expovariate(1 / 10) * 60
                    events.append((clicked, "clicked", LINK))
                    if rng.random() < 0.2:
                        events.append((clicked + rng.expovariate(1 / 30) * 60, "clicked", LINK))
                if rng.random() < 0.01:
                    events.append((opened + 60, "unsubscribed", ""))
                elif rng.random() < 0.002:
                    events.append((opened + 120, "complained", ""))
    elif rng.random() < (0.97 if kind == "sms" else 0.92):
        delivered = sent + 1 + rng.random() * 3
        events.append((delivered, "delivered", ""))
        if rng.random() < (0.05 if kind == "sms" else 0.07):
            clicked = delivered + rng.expovariate(1 / 20) * 60
            events.append((clicked, "clicked", LINK))
    else:
        events.append((sent + 3, "failed", "unreachable"))
    events = [event for event in events if event[0] < end]
    # Where the message is by `end`: engagement moves it forward, never back.
    status = "sent"
    for _at, happened, _detail in events:
        if STATUS_RANK.get(happened, 0) > STATUS_RANK[status]:
            status = happened
    times = [at if at is not None and at < end else None for at in (delivered, opened, clicked)]
    return events, status, *times


def message_chunks(setup: Setup, contact_ids, count, first_id, start, end, rng):
    """Messages sent in time order between start and end, with their tracking history:
    per chunk, the COPY lines of the messages and of their events (in time order)."""
    step = (end - start) / count
    kinds = table_of(CHANNEL_SHARES)
    other = {"email": "newsletter", "sms": "nudge", "push": "push-cart"}
    workspace_id, contacts = setup.workspace_id, len(contact_ids)
    for chunk in range(0, count, ROWS_PER_CHUNK):
        messages, events = [], []
        for i in range(chunk, min(count, chunk + ROWS_PER_CHUNK)):
            message_id = first_id + i
            sent = start + (i + rng.random()) * step
            kind = kinds[int(rng.random() * len(kinds))]
            n = pick(rng, contacts)
            journey_id, node_id, template = NULL, "", other[kind]
            if rng.random() < JOURNEY_MESSAGE_SHARE:
                nodes = setup.send_nodes[kind]
                journey_id, node_id, template = nodes[int(rng.random() * len(nodes))]
            history, status, delivered, opened, clicked = tracking(kind, sent, end, rng)
            recipient = f"c{n}@example.com" if kind == "email" else ""
            if kind == "sms":
                recipient = f"+4520{n:07d}"
            at = stamp(sent)
            messages.append(
                f"{message_id}\t{workspace_id}\t{contact_ids[n]}\t{setup.channel_ids[kind]}\t"
                f"{setup.version_ids[template]}\tbench-{message_id}\t{status}\t\t0\t{{}}\t"
                f"{journey_id}\t{node_id}\t{recipient}\t{'News' if kind == 'email' else ''}\t"
                f"[]\t\t1\t{at}\t{at}\t{at}\t{stamp_or_null(delivered)}\t"
                f"{stamp_or_null(opened)}\t{stamp_or_null(clicked)}\n"
            )
            events.extend((at, message_id, what, detail) for at, what, detail in history)
        events.sort()
        yield messages, [f"{m}\t{what}\t{detail}\t{stamp(at)}\n" for at, m, what, detail in events]


def purchase_properties(rng: random.Random) -> str:
    value = round(rng.lognormvariate(4.2, 0.8), 2)
    key = "revenue" if rng.random() < 0.2 else "amount"
    return f'{{"{key}": {value}, "currency": "DKK", "items": {1 + int(rng.random() * 4)}}}'


def contact_event_chunks(workspace_id: int, contact_ids, count, start, end, rng):
    """Contact events in the order they happened, purchases with revenue among them: per
    chunk, their COPY lines."""
    step = (end - start) / count
    names = table_of(EVENT_SHARES)
    contacts = len(contact_ids)
    for chunk in range(0, count, ROWS_PER_CHUNK):
        lines = []
        for i in range(chunk, min(count, chunk + ROWS_PER_CHUNK)):
            name = names[int(rng.random() * len(names))]
            contact_id = contact_ids[pick(rng, contacts)]
            at = stamp(start + (i + rng.random()) * step)
            source = "api"
            if name == "purchase":
                properties = purchase_properties(rng)
            elif name in ("segment_entered", "segment_exited"):
                segment = SEGMENT_SLUGS[int(rng.random() * len(SEGMENT_SLUGS))]
                properties, source = f'{{"segment": "{segment}"}}', "system"
            elif name == "signed_up":
                properties = f'{{"plan": "{PLANS[int(rng.random() * len(PLANS))]}"}}'
            else:
                properties = event_properties(name, rng)
            lines.append(
                f"{workspace_id}\t{contact_id}\t{name}\t{properties}\t{at}\t{at}\t{source}\n"
            )
        yield lines


def journey_steps(key: str, start: float, rng: random.Random):
    """One enrollment's steps [(at, node, outcome, detail)] in order, whether it is in
    the holdout group, and when it converted (or None)."""
    if key == "welcome":
        holdout = rng.random() < WELCOME["holdout_percent"] / 100
        branch = "a" if rng.random() < 0.5 else "b"
        send = "holdout" if holdout else "sent"
        later = start + 2 * DAY
        steps = [
            (start, "ab", "entered", ""),
            (start, "ab", "branched", branch),
            (start, f"mail_{branch}", send, "" if holdout else f"welcome-{branch}"),
            (start, "pause", "waiting", ""),
            (later, "pause", "done", ""),
            (later, "nudge", send, "" if holdout else "nudge"),
            (later, "done", "completed", ""),
        ]
        rate, length = CONVERSION["welcome"]["holdout" if holdout else branch], 2 * DAY
    elif key == "cart":
        holdout, later = False, start + DAY
        steps = [
            (start, "wait", "entered", ""),
            (start, "wait", "waiting", ""),
            (later, "wait", "done", ""),
            (later, "remind", "sent", "cart"),
            (later, "push", "sent", "push-cart"),
            (later, "done", "completed", ""),
        ]
        rate, length = CONVERSION["cart"], DAY
    else:
        holdout, later = False, start + 7 * DAY
        steps = [
            (start, "mail", "entered", ""),
            (start, "mail", "sent", "winback"),
            (start, "pause", "waiting", ""),
            (later, "pause", "done", ""),
            (later, "push", "sent", "push-cart"),
            (later, "done", "completed", ""),
        ]
        rate, length = CONVERSION["winback"], 7 * DAY
    converted = None
    if rng.random() < rate:
        # While enrolled: after its first steps, before its last.
        converted = start + 1 + rng.random() * (length - 2)
        steps.append((converted, "bought", "converted", "purchase"))
        steps.sort(key=lambda step: step[0])
    return steps, holdout, converted


def enrollment_chunks(setup: Setup, contact_ids, count, first_id, start, end, rng, open_pairs):
    """Enrollments entered in time order between start and end, with their step log up to
    `end`; those not through by then wait (one open enrollment per journey and contact).
    Per chunk, the COPY lines of the enrollments and of their steps (in time order)."""
    step = (end - start) / count
    keys = table_of({key: share for key, share, _graph in JOURNEYS})
    contacts = len(contact_ids)
    for chunk in range(0, count, ROWS_PER_CHUNK):
        enrollments, steps = [], []
        for i in range(chunk, min(count, chunk + ROWS_PER_CHUNK)):
            enrollment_id = first_id + i
            key = keys[int(rng.random() * len(keys))]
            journey_id, version_id = setup.journeys[key]
            entered = start + (i + rng.random()) * step
            log, holdout, converted = journey_steps(key, entered, rng)
            done = [s for s in log if s[0] < end]
            pending = [s for s in log if s[0] >= end and s[2] != "converted"]
            contact_id = contact_ids[pick(rng, contacts)]
            if not pending:
                state, node, due, finished = "completed", "done", NULL, stamp(done[-1][0])
            else:
                while (journey_id, contact_id) in open_pairs:
                    contact_id = contact_ids[int(rng.random() * contacts)]
                open_pairs.add((journey_id, contact_id))
                state, node, due, finished = "waiting", pending[0][1], stamp(pending[0][0]), NULL
            converted_at = stamp_or_null(converted if converted and converted < end else None)
            enrollments.append(
                f"{enrollment_id}\t{setup.workspace_id}\t{journey_id}\t{version_id}\t"
                f"{contact_id}\t\t{state}\t{node}\t{due}\t\t{'t' if holdout else 'f'}\t{{}}\t"
                f"{{}}\t{stamp(entered)}\t{stamp(done[-1][0])}\t{finished}\t\t{converted_at}\n"
            )
            steps.extend((at, enrollment_id, n, outcome, detail) for at, n, outcome, detail in done)
        steps.sort()
        yield enrollments, [f"{e}\t{n}\t{o}\t{d}\t{stamp(at)}\n" for at, e, n, o, d in steps]


def copy_lines(conn, table: str, columns: list[str], lines: list[str]) -> int:
    """COPY lines already in COPY's text format into `table`; answers how many."""
    sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
    data = "".join(lines).encode()
    with conn.cursor() as cursor, cursor.copy(sql) as copy:
        for offset in range(0, len(data), COPY_CHUNK_BYTES):
            copy.write(data[offset : offset + COPY_CHUNK_BYTES])
    return len(lines)


def reserve_ids(conn, table: str, count: int) -> int:
    """The first of `count` ids that only this run will use (COPY then names them)."""
    sequence = conn.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table]).fetchone()[0]
    first = conn.execute("SELECT nextval(%s)", [sequence]).fetchone()[0]
    conn.execute("SELECT setval(%s, %s)", [sequence, first + count])
    return first


@dataclass
class History:
    """Where the generated rows are, for the increments that follow."""

    setup: Setup
    contact_ids: list[int]
    start: float
    end: float
    sizes: dict
    open_pairs: set = field(default_factory=set)
    counts: dict = field(default_factory=dict)


def add_rows(database, history: History, messages, events, enrollments, start, end, rng):
    """Messages with their tracking, contact events, enrollments with their steps, between
    start and end, by COPY, a transaction per chunk (so that the foreign keys' checks at
    commit stay small); answers the rows added per table."""
    added = dict.fromkeys(
        [
            "channels_message",
            "channels_messageevent",
            "contacts_event",
            "journeys_enrollment",
            "journeys_journeystep",
        ],
        0,
    )
    setup, ids = history.setup, history.contact_ids
    with database.connect() as conn:
        first = reserve_ids(conn, "channels_message", messages)
        conn.commit()
        for rows, tracked in message_chunks(setup, ids, messages, first, start, end, rng):
            added["channels_message"] += copy_lines(conn, "channels_message", MESSAGE_COLUMNS, rows)
            added["channels_messageevent"] += copy_lines(
                conn, "channels_messageevent", MESSAGE_EVENT_COLUMNS, tracked
            )
            conn.commit()
        for rows in contact_event_chunks(setup.workspace_id, ids, events, start, end, rng):
            added["contacts_event"] += copy_lines(conn, "contacts_event", EVENT_COLUMNS, rows)
            conn.commit()
        first = reserve_ids(conn, "journeys_enrollment", enrollments)
        conn.commit()
        for rows, steps in enrollment_chunks(
            setup, ids, enrollments, first, start, end, rng, history.open_pairs
        ):
            added["journeys_enrollment"] += copy_lines(
                conn, "journeys_enrollment", ENROLLMENT_COLUMNS, rows
            )
            added["journeys_journeystep"] += copy_lines(
                conn, "journeys_journeystep", STEP_COLUMNS, steps
            )
            conn.commit()
    for table, count in added.items():
        history.counts[table] = history.counts.get(table, 0) + count
    return added


def generate(database, workspace_id: int, size: dict, now: datetime | None = None, log=print):
    """The workspace's setup, contacts with consent and 90 days of history, by COPY with
    the production indexes in place, then VACUUM ANALYZE."""
    now = now or datetime.now(UTC)
    setup = setup_workspace(workspace_id)
    rng = random.Random(SEED)  # noqa: S311 (test data, not secrets)
    with database.connect() as conn:
        log(f"COPY {size['contacts']:,} contacts with their consent")
        copy_rows(
            conn,
            "contacts_contact",
            CONTACT_COLUMNS,
            contact_rows(workspace_id, size["contacts"], now, rng),
        )
        contact_ids = [
            row[0]
            for row in conn.execute(
                "SELECT id FROM contacts_contact WHERE workspace_id = %s ORDER BY id",
                [workspace_id],
            )
        ]
        consents = copy_rows(
            conn,
            "contacts_consent",
            CONSENT_COLUMNS,
            consent_rows(workspace_id, contact_ids, now, rng),
        )
        conn.commit()
    end = (now - HISTORY_END_BEFORE_NOW).timestamp()
    history = History(setup, contact_ids, end - HISTORY_DAYS * DAY, end, size)
    history.counts.update(contacts_contact=len(contact_ids), contacts_consent=consents)
    log(
        f"COPY {size['messages']:,} messages with their tracking, {size['events']:,} contact "
        f"events, {size['enrollments']:,} enrollments with their steps"
    )
    add_rows(
        database,
        history,
        size["messages"],
        size["events"],
        size["enrollments"],
        history.start,
        end,
        rng,
    )
    log("VACUUM ANALYZE")
    database.vacuum_analyze(*RAW_TABLES)
    return history


def add_increment(database, history: History, number: int) -> dict:
    """1% more rows, in a window of their own after the history (and earlier increments)."""
    rng = random.Random(f"{SEED}-increment-{number}")  # noqa: S311
    start = history.end + number * INCREMENT_WINDOW.total_seconds()
    size = history.sizes
    return add_rows(
        database,
        history,
        max(1, int(size["messages"] * INCREMENT_SHARE)),
        max(1, int(size["events"] * INCREMENT_SHARE)),
        max(1, int(size["enrollments"] * INCREMENT_SHARE)),
        start,
        start + INCREMENT_WINDOW.total_seconds(),
        rng,
    )


# -- ours: the rollups ---------------------------------------------------------------------------


def clear_rollups(database) -> None:
    database.execute(f"TRUNCATE {', '.join(ROLLUP_TABLES)}")


def refresh() -> dict:
    """refresh_rollups(), one source at a time so that each is timed: rows and seconds."""
    from apps.reporting.services import rollups

    sources = {}
    for source in rollups.SOURCES:
        began = time.perf_counter()
        rows = rollups.refresh_source(source)
        sources[source.table] = {"rows": rows, "seconds": time.perf_counter() - began}
    return sources


def explain_chunk(table: str) -> dict:
    """EXPLAIN (ANALYZE, BUFFERS) of a source's statements on its first chunk of ids, as
    refresh_source runs them, in a transaction rolled back."""
    from django.db import connection

    from apps.reporting.services import rollups

    source = next(source for source in rollups.SOURCES if source.table == table)
    plans = []
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT coalesce(min(id), 1) - 1 FROM {table}")  # noqa: S608
        low = cursor.fetchone()[0]
        cursor.execute("BEGIN")
        try:
            for statement in source.statements:
                cursor.execute(
                    f"EXPLAIN (ANALYZE, BUFFERS) {statement}",
                    {"low": low, "high": low + rollups.CHUNK_IDS},
                )
                plans.append([row[0] for row in cursor.fetchall()])
        finally:
            cursor.execute("ROLLBACK")
    return {"table": table, "chunk_ids": rollups.CHUNK_IDS, "plans": plans}


def source_rows(database) -> dict[str, int]:
    from apps.reporting.services import rollups

    return {source.table: database.count(source.table) for source in rollups.SOURCES}


def rollup_figures(runs: list[dict]) -> dict:
    """Per source and in total, the best round (the most rows a second) and every round."""

    def total(run):
        return {
            "rows": sum(s["rows"] for s in run.values()),
            "seconds": sum(s["seconds"] for s in run.values()),
        }

    def best(samples):
        top = max(samples, key=lambda s: s["rows"] / s["seconds"] if s["seconds"] else 0)
        return {
            "rows": top["rows"],
            "seconds": round(top["seconds"], 3),
            "rows_per_s": round(top["rows"] / top["seconds"]) if top["seconds"] else None,
            "rounds_seconds": [round(s["seconds"], 3) for s in samples],
        }

    figures = {table: best([run[table] for run in runs]) for table in runs[0]}
    figures["total"] = best([total(run) for run in runs])
    return figures


# -- the floors: the same figures with plain SQL from the raw tables ----------------------------

# Sent, unique opens and unique clicks per channel and day (an open counts on the day of the
# message's first open, as the rollup counts it).
FLOOR_MESSAGES_SQL = """
SELECT ch.type AS channel, e.day,
       count(*) FILTER (WHERE e.kind = 'sent') AS sent,
       count(*) FILTER (WHERE e.kind = 'opened') AS unique_opens,
       count(*) FILTER (WHERE e.kind = 'clicked') AS unique_clicks
FROM (
    SELECT message_id, kind, (at AT TIME ZONE %(tz)s)::date AS day
    FROM channels_messageevent WHERE kind = 'sent'
    UNION ALL
    (SELECT DISTINCT ON (message_id, kind) message_id, kind, (at AT TIME ZONE %(tz)s)::date
     FROM channels_messageevent WHERE kind IN ('opened', 'clicked')
     ORDER BY message_id, kind, id)
) e
JOIN channels_message m ON m.id = e.message_id
JOIN channels_channel ch ON ch.id = m.channel_id
WHERE m.workspace_id = %(workspace_id)s AND e.day BETWEEN %(start)s AND %(end)s
GROUP BY 1, 2
"""
# Last touch: each purchase credited to the channel of the latest message sent to the
# contact within 7 days before it ("" when none).
FLOOR_ATTRIBUTION_SQL = """
SELECT (ev.occurred_at AT TIME ZONE %(tz)s)::date AS day, coalesce(touch.type, '') AS channel,
       count(*) AS conversions,
       sum(round(coalesce((ev.properties ->> 'revenue')::numeric,
                          (ev.properties ->> 'amount')::numeric, 0), 2)) AS revenue
FROM contacts_event ev
LEFT JOIN LATERAL (
    SELECT ch.type FROM channels_message m JOIN channels_channel ch ON ch.id = m.channel_id
    WHERE m.contact_id = ev.contact_id AND m.sent_at <= ev.occurred_at
      AND m.sent_at > ev.occurred_at - interval '7 days'
    ORDER BY m.sent_at DESC, m.id DESC LIMIT 1
) touch ON true
WHERE ev.workspace_id = %(workspace_id)s AND ev.name = 'purchase'
  AND ev.occurred_at >= %(since)s AND ev.occurred_at < %(until)s
GROUP BY 1, 2
"""
# A journey's steps per node, outcome, branch and group; and goals reached after each branch.
FLOOR_JOURNEY_SQL = """
SELECT s.node_id, s.outcome, CASE WHEN s.outcome = 'branched' THEN s.detail ELSE '' END,
       en.holdout, count(*)
FROM journeys_journeystep s JOIN journeys_enrollment en ON en.id = s.enrollment_id
WHERE en.workspace_id = %(workspace_id)s AND en.journey_id = %(journey_id)s
  AND s.at >= %(since)s AND s.at < %(until)s
GROUP BY 1, 2, 3, 4
"""
FLOOR_SPLIT_SQL = """
SELECT b.node_id, b.detail, count(DISTINCT s.id)
FROM journeys_journeystep s
JOIN journeys_enrollment en ON en.id = s.enrollment_id
JOIN journeys_journeystep b ON b.enrollment_id = s.enrollment_id AND b.outcome = 'branched'
     AND b.id < s.id
WHERE en.workspace_id = %(workspace_id)s AND en.journey_id = %(journey_id)s
  AND s.outcome = 'converted' AND s.at >= %(since)s AND s.at < %(until)s
GROUP BY 1, 2
"""
FLOORS = {
    "messages": ("sent, unique opens and clicks per channel and day", [FLOOR_MESSAGES_SQL]),
    "attribution": (
        "last-touch purchases and revenue within 7 days, per channel and day",
        [FLOOR_ATTRIBUTION_SQL],
    ),
    "journey": (
        "the journey's steps per node, outcome and group; goals after each branch",
        [FLOOR_JOURNEY_SQL, FLOOR_SPLIT_SQL],
    ),
}


def floor_params(workspace_id: int, start: dt.date, end: dt.date, journey_id: int = 0) -> dict:
    """Days start..end in the workspace's time zone, as dates and as moments."""
    zone = zoneinfo.ZoneInfo(TIMEZONE)
    return {
        "workspace_id": workspace_id,
        "journey_id": journey_id,
        "tz": TIMEZONE,
        "start": start,
        "end": end,
        "since": datetime.combine(start, dt.time(), zone),
        "until": datetime.combine(end + timedelta(days=1), dt.time(), zone),
    }


def run_floor(database, key: str, params: dict) -> tuple[float, list[list[tuple]]]:
    """Seconds for the floor's queries to answer, over a fresh connection, and their rows."""
    with database.connect() as conn:
        began = time.perf_counter()
        answers = [conn.execute(sql, params).fetchall() for sql in FLOORS[key][1]]
        return time.perf_counter() - began, answers


# -- the pages -------------------------------------------------------------------------------


@dataclass
class Page:
    key: str
    title: str
    path: str
    auth: str  # "session" or "api"
    floors: tuple[str, ...]  # the floor queries computing the same figures


def pages(journey_id: int) -> list[Page]:
    """The report pages and endpoints, with the insight ones when they exist."""
    from django.urls import Resolver404, resolve

    listed = [
        Page("dashboard", "Dashboard", "/", "session", ("messages", "attribution")),
        Page(
            "journey", "Journey report", f"/reports/journeys/{journey_id}/", "session", ("journey",)
        ),
        Page(
            "attribution",
            "Attribution by channel",
            "/reports/attribution/",
            "session",
            ("attribution",),
        ),
        Page(
            "attribution_message",
            "Attribution by journey step",
            "/reports/attribution/?by=message",
            "session",
            ("attribution",),
        ),
        Page(
            "api_overview",
            "API: overview",
            "/api/v1/reports/overview/",
            "api",
            ("messages", "attribution"),
        ),
        Page(
            "api_attribution",
            "API: attribution",
            "/api/v1/reports/attribution/",
            "api",
            ("attribution",),
        ),
        Page(
            "api_journey",
            "API: journey report",
            f"/api/v1/reports/journeys/{journey_id}/",
            "api",
            ("journey",),
        ),
    ]
    for page in (
        Page("insight", "Customer insight", "/reports/insight/", "session", ()),
        Page("api_insight", "API: customer insight", "/api/v1/reports/insight/", "api", ()),
    ):
        try:
            resolve(page.path)
        except Resolver404:
            continue
        listed.append(page)
    return listed


@dataclass
class Visitor:
    """A signed-in marketer (a session cookie) and a partner (an API key with read)."""

    user_id: int
    cookie: str
    api_key: str

    def headers(self, page: Page) -> dict[str, str]:
        if page.auth == "api":
            return {"Authorization": f"Bearer {self.api_key}", "Accept": "application/json"}
        return {"Cookie": self.cookie, "Accept": "text/html"}


def make_visitor(workspace_id: int) -> Visitor:
    """A member of the workspace with a session in the database, as after signing in, and
    a read-only API key."""
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    from apps.accounts import services
    from apps.accounts.choices import Role, Scope
    from apps.accounts.middleware import SESSION_KEY as WORKSPACE_KEY
    from apps.accounts.models import Membership, User, Workspace

    workspace = Workspace.objects.get(pk=workspace_id)
    user = User.objects.create_user(email="reports@example.com", password=None)
    Membership.objects.create(workspace=workspace, user=user, role=Role.MARKETER)
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session[WORKSPACE_KEY] = workspace.pk
    session.create()
    _key, raw = services.create_api_key(workspace, "reports", [Scope.READ])
    return Visitor(user.pk, f"{settings.SESSION_COOKIE_NAME}={session.session_key}", raw)


def timed_gets(port: int, path: str, headers: dict, count: int, warm: int = WARM_REQUESTS):
    """`warm` untimed GETs then `count` timed ones, one at a time on one keep-alive
    connection: seconds each, and the last answer's status and body."""
    connection = http.client.HTTPConnection(HOST, port, timeout=REQUEST_TIMEOUT_SECONDS)
    seconds, status, body = [], 0, b""
    try:
        for n in range(warm + count):
            for attempt in range(2):
                began = time.perf_counter()
                try:
                    connection.request("GET", path, headers=headers)
                    response = connection.getresponse()
                    body = response.read()
                    status = response.status
                    break
                except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                    # The server closed an idle keep-alive connection: a GET may go again.
                    connection.close()
                    if attempt:
                        raise
            elapsed = time.perf_counter() - began
            if status != 200:
                raise BenchError(f"GET {path} answered {status}: {body[:500]!r}")
            if n >= warm:
                seconds.append(elapsed)
    finally:
        connection.close()
    return seconds, status, body


def latency(samples: list[float]) -> dict:
    return {
        "p50": round(percentile(samples, 0.50), 4),
        "p95": round(percentile(samples, 0.95), 4),
        "max": round(max(samples), 4),
        "mean": round(statistics.fmean(samples), 4),
    }


# A query this slow is worth its plan in the report.
EXPLAIN_FROM_SECONDS = 0.02
# Where a slow page's time goes, by the file a function lives in.
PACKAGES = [
    ("plotly (building figures)", ("/plotly/", "/_plotly_utils/")),
    ("Django templates", ("/django/template/", "/django/templatetags/")),
    ("database (driver and ORM)", ("/psycopg/", "/django/db/")),
    ("JSON", ("/json/",)),
    ("Orchestra's code", ("/apps/", "/orchestra/")),
]


WRAPPERS = ("views", "access.py", "middleware.py", "api.py", "authentication.py")


def queries_of(page: Page, visitor: Visitor, slow: bool) -> dict:
    """The page answered in this process with the same user or key (the second of two
    requests, so with what the first one cached): its time, its SQL queries (how many,
    their time, the slowest). For a slow page also where its time goes, under cProfile,
    and the slowest query's EXPLAIN (ANALYZE, BUFFERS) when that query takes long."""
    import cProfile
    import pstats

    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from apps.accounts.models import User

    client = Client()
    if page.auth == "api":
        client = Client(headers={"Authorization": f"Bearer {visitor.api_key}"})
    else:
        client.force_login(User.objects.get(pk=visitor.user_id))
    try:
        client.get(page.path)
        began = time.perf_counter()
        with CaptureQueriesContext(connection) as captured:
            response = client.get(page.path)
        seconds = time.perf_counter() - began
        # Read now: the next request starts by emptying the connection's query log.
        timed = [(float(q["time"]), q["sql"]) for q in captured.captured_queries]
        profile = cProfile.Profile()
        if slow:
            profile.runcall(client.get, page.path)
    except Exception as exc:  # a diagnosis only: the timed figures stand without it
        return {"error": repr(exc)[:300]}
    if response.status_code != 200:
        return {"error": f"answered {response.status_code} in-process"}
    slowest = max(timed, default=(0.0, ""))
    result = {
        "in_process_ms": round(seconds * 1000, 1),
        "count": len(timed),
        "total_ms": round(sum(t for t, _sql in timed) * 1000, 1),
        "slowest_ms": round(slowest[0] * 1000, 1),
        "slowest_sql": slowest[1][:2000],
    }
    if slow:
        result |= where_the_time_goes(pstats.Stats(profile))
    if slow and slowest[0] >= EXPLAIN_FROM_SECONDS and slowest[1].lstrip().startswith("SELECT"):
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {slowest[1]}")
            result["explain"] = [row[0] for row in cursor.fetchall()]
    return result


def where_the_time_goes(stats) -> dict:
    """Shares of the profiled request's own time by package, and Orchestra's functions
    with the largest share of it, cumulative (the views and what wraps them left out)."""
    own = {name: 0.0 for name, _parts in PACKAGES}
    total = 0.0
    ours = []
    for (path, line, function), (_cc, _nc, tottime, cumtime, _callers) in stats.stats.items():
        total += tottime
        for name, parts in PACKAGES:
            if any(part in path for part in parts):
                own[name] += tottime
                break
        # The view and what wraps it account for all of it; what they call is the news.
        if "/apps/" in path and not path.rsplit("/", 1)[-1].startswith(WRAPPERS):
            ours.append((cumtime, f"{path.split('/apps/', 1)[1]}:{line} {function}"))
    if not total:
        return {}
    shares = {name: round(seconds / total, 3) for name, seconds in own.items()}
    shares["other (Django, Python's standard library)"] = round(1 - sum(shares.values()), 3)
    top = [(round(c / total, 3), name) for c, name in sorted(ours, reverse=True)]
    return {"profile_shares": shares, "profile_functions": top[:6]}


# -- do the pages agree with the floors? ---------------------------------------------------------


def agreement(overview: dict, journey: dict, floors: dict[str, list]) -> list[str]:
    """Differences between the numbers the API answered and the floors' (none expected)."""
    problems = []
    period = overview["period"]
    current = (dt.date.fromisoformat(period["from"]), dt.date.fromisoformat(period["to"]))
    previous = (dt.date.fromisoformat(period["previous_from"]), current[0])
    (messages,) = floors["messages"]
    expected = {}
    for channel, day, sent, opens, clicks in messages:
        if current[0] <= day <= current[1]:
            expected[(channel, day.isoformat())] = (sent, opens, clicks)
    answered = {}
    days = overview["over_time"]["days"]
    for channel, series in overview["over_time"]["channels"].items():
        for n, day in enumerate(days):
            counts = (series["sent"][n], series["opens"][n], series["clicks"][n])
            if any(counts):
                answered[(channel, day)] = counts
    if answered != expected:
        wrong = sorted(
            k for k in set(answered) | set(expected) if answered.get(k) != expected.get(k)
        )
        problems.append(
            f"sent/opens/clicks per channel and day differ on {len(wrong)} days, e.g. {wrong[0]}: "
            f"pages {answered.get(wrong[0])}, floor {expected.get(wrong[0])}"
        )
    tiles = {tile["key"]: tile for tile in overview["kpis"]}
    sent_before = sum(r[2] for r in messages if previous[0] <= r[1] < previous[1])
    if tiles["sent"]["previous"] != sent_before:
        problems.append(
            f"sent in the previous period: {tiles['sent']['previous']} != {sent_before}"
        )
    (attribution,) = floors["attribution"]
    credited = {}
    for day, channel, conversions, revenue in attribution:
        if channel and current[0] <= day <= current[1]:
            sums = credited.setdefault(channel, [0, 0.0])
            sums[0] += conversions
            sums[1] += float(revenue)
    answered = {
        row["channel"]: [row["conversions"], row["revenue"]]
        for row in overview["channels"]
        if row["conversions"] or row["revenue"]
    }
    for channel in set(answered) | set(credited):
        ours, floor = answered.get(channel, [0, 0.0]), credited.get(channel, [0, 0.0])
        if abs(ours[0] - floor[0]) > 0.01 or abs(ours[1] - floor[1]) > 0.01:
            problems.append(f"last-touch {channel}: pages {ours}, floor {floor}")
    steps, splits = floors["journey"]
    groups = {False: {"entered": 0, "converted": 0}, True: {"entered": 0, "converted": 0}}
    took = {}
    for node, outcome, branch, holdout, count in steps:
        if outcome in ("entered", "converted"):
            groups[holdout][outcome] += count
        if outcome == "branched":
            took[(node, branch)] = took.get((node, branch), 0) + count
    lift = journey.get("holdout") or {}
    if (lift.get("treated"), lift.get("holdout")) != (groups[False], groups[True]):
        problems.append(
            f"journey groups: pages {lift.get('treated')}/{lift.get('holdout')}, floor {groups}"
        )
    converted = {(node, branch): count for node, branch, count in splits}
    for split in journey.get("splits", []):
        for branch in split["branches"]:
            key = (split["node"], branch["branch"])
            if (branch["took"], branch["converted"]) != (took.get(key, 0), converted.get(key, 0)):
                problems.append(
                    f"split {key}: pages {branch['took']}/{branch['converted']}, floor "
                    f"{took.get(key, 0)}/{converted.get(key, 0)}"
                )
    return problems


# -- the run ----------------------------------------------------------------------------------


def table_mb(database, tables) -> dict[str, int]:
    return {
        table: round(database.execute("SELECT pg_total_relation_size(%s)", [table])[0][0] / 2**20)
        for table in tables
    }


def insight_snapshot(workspace_id: int) -> tuple[float | None, str]:
    """Seconds to compute the customer insight snapshot that its pages read; or why not.
    A failure here is reported, not fatal: the pages are measured either way."""
    try:
        from apps.reporting.services import insight

        began = time.perf_counter()
        snapshot = insight.refresh_insight(workspace_id)
    except Exception as exc:  # the report names it; the other figures stand
        return None, repr(exc)[:500]
    if snapshot is None:
        return None, "refresh_insight computed no snapshot"
    return time.perf_counter() - began, ""


def collect_static(ctx) -> None:
    """The pages need the static files' manifest: collectstatic, as the launcher runs it
    before it starts gunicorn, then the server again (it reads the manifest once)."""
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput"],
        cwd=BASE_DIR,
        env=ctx.server.env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    ctx.server.stop()
    ctx.server.start()


def describe(run: dict) -> str:
    return ", ".join(
        f"{table} {s['rows']:,} rows in {s['seconds']:,.2f} s" for table, s in run.items()
    )


def measure_rollups(ctx, history: History) -> dict:
    """Refreshes from scratch, then after 1% more rows (once per round), each counted."""
    scratch = []
    # A refresh from scratch takes minutes at the larger sizes: once, unless more rounds
    # are asked for.
    scratch_rounds = ctx.rounds if os.environ.get("BENCH_ROUNDS") else 1
    for round_ in range(scratch_rounds):
        clear_rollups(ctx.database)
        scratch.append(refresh())
        ctx.log(
            f"rollups from scratch, round {round_ + 1}/{scratch_rounds}: {describe(scratch[-1])}"
        )
    counted = {table: s["rows"] for table, s in scratch[-1].items()}
    if counted != source_rows(ctx.database):
        raise BenchError(f"the rollups counted {counted}; the tables hold more or fewer rows")
    from_scratch = rollup_figures(scratch)
    slowest = min(
        (table for table in from_scratch if table != "total"),
        key=lambda table: from_scratch[table]["rows_per_s"] or 0,
    )
    ctx.log(f"EXPLAIN ANALYZE of a chunk of the slowest source, {slowest}")
    explained = explain_chunk(slowest)
    increments = []
    for round_ in range(ctx.rounds):
        add_increment(ctx.database, history, round_)
        increments.append(refresh())
        ctx.log(f"rollups after 1% more rows, round {round_ + 1}: {describe(increments[-1])}")
    return {
        "from_scratch": from_scratch,
        "slowest_source_explained": explained,
        "incremental": rollup_figures(increments),
        "increment_share": INCREMENT_SHARE,
        "rounds_from_scratch": scratch_rounds,
    }


def measure_pages(ctx, listed: list[Page], visitor: Visitor, journey_id: int, count: int):
    """Each round: every page `count` times, then the floors for the same days, and a check
    that the API's numbers are the floors'. Answers the samples and the floors' seconds."""
    samples: dict[str, list[list[float]]] = {page.key: [] for page in listed}
    floor_seconds: dict[str, list[float]] = {key: [] for key in FLOORS}
    answers: dict[str, bytes] = {}
    for round_ in range(ctx.rounds):
        ctx.log(f"pages, round {round_ + 1}/{ctx.rounds}: {count} requests each")
        for page in listed:
            seconds, _status, answers[page.key] = timed_gets(
                ctx.server.port, page.path, visitor.headers(page), count
            )
            samples[page.key].append(seconds)
            ctx.log(
                f"  {page.title}: p50 {percentile(seconds, 0.5) * 1000:,.0f} ms, "
                f"p95 {percentile(seconds, 0.95) * 1000:,.0f} ms"
            )
        overview = json.loads(answers["api_overview"])
        period = {
            key: dt.date.fromisoformat(overview["period"][key])
            for key in ("from", "to", "previous_from")
        }
        # The dashboard's figures cover the period before too; the journey's, the period.
        both = floor_params(ctx.workspace_id, period["previous_from"], period["to"], journey_id)
        this = floor_params(ctx.workspace_id, period["from"], period["to"], journey_id)
        rows = {}
        for key in FLOORS:
            seconds, rows[key] = run_floor(ctx.database, key, this if key == "journey" else both)
            floor_seconds[key].append(seconds)
            ctx.log(f"  floor, {FLOORS[key][0]}: {seconds:,.2f} s")
        problems = agreement(overview, json.loads(answers["api_journey"]), rows)
        if problems:
            raise BenchError("the pages and the raw tables disagree: " + "; ".join(problems[:5]))
    return samples, floor_seconds, answers


def page_figure(page: Page, rounds: list[list[float]], body: bytes, floor: float | None) -> dict:
    """A page's line: the best round (the lowest p95), its floor and the target."""
    best = min(rounds, key=lambda samples: percentile(samples, 0.95))
    p95 = percentile(best, 0.95)
    if page.floors:
        floor_what = " + ".join(page.floors)
    else:
        floor_what = "insight snapshot" if floor is not None else ""
    return {
        "key": page.key,
        "name": page.title,
        "path": page.path,
        "auth": page.auth,
        "requests": len(best),
        **latency(best),
        "rounds_p95": [round(percentile(samples, 0.95), 4) for samples in rounds],
        "bytes": len(body),
        "floor_seconds": round(floor, 4) if floor is not None else None,
        "floor_what": floor_what,
        "ratio": round(p95 / floor, 4) if floor else None,
        "target_p95_seconds": TARGET_P95_SECONDS,
        "pass": p95 < TARGET_P95_SECONDS,
    }


def run(ctx) -> dict:
    scale_name = os.environ.get("SCALE") or "default"
    size = sizes(ctx.scale)
    database = ctx.database
    ctx.reset_contacts()
    began = time.perf_counter()
    history = generate(database, ctx.workspace_id, size, log=ctx.log)
    load_seconds = time.perf_counter() - began
    ctx.log(f"  loaded in {load_seconds:,.0f} s: {history.counts}")
    rollups = measure_rollups(ctx, history)
    database.vacuum_analyze(*RAW_TABLES, *ROLLUP_TABLES)

    journey_id = history.setup.journeys["welcome"][0]
    listed = pages(journey_id)
    insight_seconds, insight_error = None, ""
    if any(page.key.endswith("insight") for page in listed):
        ctx.log("customer insight: computing the snapshot its pages read")
        insight_seconds, insight_error = insight_snapshot(ctx.workspace_id)
        ctx.log(f"  {insight_seconds:,.1f} s" if insight_seconds else f"  failed: {insight_error}")
    ctx.log("collectstatic, and the server started again")
    collect_static(ctx)
    visitor = make_visitor(ctx.workspace_id)
    count = REQUESTS.get(scale_name, REQUESTS["default"])
    samples, floor_seconds, answers = measure_pages(ctx, listed, visitor, journey_id, count)

    figures = []
    for page in listed:
        floor = insight_seconds
        if page.floors:
            floor = sum(min(floor_seconds[key]) for key in page.floors)
        figure = page_figure(page, samples[page.key], answers[page.key], floor)
        figure["queries"] = queries_of(page, visitor, slow=not figure["pass"])
        figures.append(figure)
    data = {
        "sizes": size,
        "rows": history.counts,
        "load_seconds": round(load_seconds, 1),
        "table_mb": table_mb(database, RAW_TABLES),
        "postgres": {
            name: database.execute(f"SHOW {name}")[0][0] for name in ("shared_buffers", "work_mem")
        },
        "history_days": HISTORY_DAYS,
        "timezone": TIMEZONE,
        "journeys": [graph["name"] for _key, _share, graph in JOURNEYS],
    }
    return {
        "data": data,
        "rollups": rollups,
        "pages": figures,
        "floors": {
            key: {
                "what": what,
                "seconds": round(min(floor_seconds[key]), 4),
                "rounds": [round(s, 4) for s in floor_seconds[key]],
            }
            for key, (what, _sql) in FLOORS.items()
        },
        "insight_snapshot_seconds": round(insight_seconds, 3) if insight_seconds else None,
        "insight_snapshot_error": insight_error,
        "agreement": "the API's numbers equal the floors' (sent, unique opens and clicks per "
        "channel and day; last-touch conversions and revenue per channel; the journey's "
        "groups and split branches)",
        "measured": "by the client: one request at a time on a keep-alive connection to the "
        "local gunicorn, from sending the request to the answer's last byte, after "
        f"{WARM_REQUESTS} untimed requests on the same connection (the server sends no timing "
        "header)",
        "requests_per_round": count,
    }
