"""Events through /api/v1/events/ (batches of 1,000, and one event per request) and through
the Segment-compatible /v1/batch, each next to PostgreSQL storing the same rows directly."""

import json
import random
from datetime import UTC, datetime, timedelta

from bench.harness import (
    BenchError,
    basic,
    bearer,
    copy_data,
    copy_floor,
    figure,
    insert_one_by_one_floor,
    not_available,
    post_one,
    send_all,
)

NAME = "ingest_events"
TITLE = "Ingest: events"
BATCH_SIZE = 1_000
EVENTS_PATH = "/api/v1/events/"
SEGMENT_BATCH_PATH = "/v1/batch"
TARGET_BATCH_RATE = 20_000
TARGET_SINGLE_RATE = 500
TARGET_RATIO = 0.25
EVENT_COLUMNS = ["workspace_id", "contact_id", "name", "properties", "occurred_at",
                 "received_at", "source", "message_id"]  # fmt: skip
FIRST_OCCURRED_AT = datetime(2026, 1, 1, tzinfo=UTC)


def make_events(count: int, contacts: int, prefix: str, seed: int) -> list[dict]:
    """Events of the API contract, spread at random over `contacts` people, as real traffic
    is: concurrent batches share some contacts. Every message_id is unique."""
    rng = random.Random(seed)  # noqa: S311 (test data, not secrets)
    events = []
    for i in range(count):
        kind = rng.random()
        if kind < 0.6:
            name, properties = "page_viewed", {"path": f"/products/{rng.randrange(500)}",
                                               "referrer": "https://www.example.com/"}  # fmt: skip
        elif kind < 0.9:
            name, properties = "product_viewed", {"sku": f"SKU-{rng.randrange(2000):05d}",
                                                  "category": "shoes"}  # fmt: skip
        else:
            amount = round(rng.uniform(5, 500), 2)
            name, properties = "purchase", {"amount": amount, "currency": "DKK",
                                            "items": rng.randrange(1, 5)}  # fmt: skip
        events.append(
            {
                "external_id": f"bench-{rng.randrange(contacts)}",
                "name": name,
                "properties": properties,
                "occurred_at": (FIRST_OCCURRED_AT + timedelta(milliseconds=i)).isoformat(),
                "message_id": f"{prefix}-{i}",
            }
        )
    return events


def api_batch_bodies(events: list[dict]) -> list[bytes]:
    return [
        json.dumps({"events": events[i : i + BATCH_SIZE]}).encode()
        for i in range(0, len(events), BATCH_SIZE)
    ]


def segment_batch_bodies(events: list[dict]) -> list[bytes]:
    """The same events as analytics.js / analytics-python send them."""
    bodies = []
    for i in range(0, len(events), BATCH_SIZE):
        batch = [
            {
                "type": "track",
                "userId": event["external_id"],
                "event": event["name"],
                "properties": event["properties"],
                "timestamp": event["occurred_at"],
                "messageId": f"segment-{event['message_id']}",
            }
            for event in events[i : i + BATCH_SIZE]
        ]
        bodies.append(json.dumps({"batch": batch, "sentAt": batch[-1]["timestamp"]}).encode())
    return bodies


def event_rows(ctx, events: list[dict]) -> list[tuple]:
    """The rows the API stores for these events, to hand to PostgreSQL directly."""
    contact_ids = dict(
        ctx.database.execute(
            "SELECT external_id, id FROM contacts_contact WHERE workspace_id = %s",
            [ctx.workspace_id],
        )
    )
    missing = {e["external_id"] for e in events} - contact_ids.keys()
    if missing:
        raise BenchError(f"{len(missing)} contacts were not created by the API run")
    received_at = datetime.now(UTC).isoformat()
    return [
        (ctx.workspace_id, contact_ids[e["external_id"]], e["name"], json.dumps(e["properties"]),
         e["occurred_at"], received_at, "api", e["message_id"])
        for e in events
    ]  # fmt: skip


def check_accepted(result, expected: int, what: str) -> None:
    result.require_status(200)
    answers = result.json_bodies()
    accepted = sum(answer["accepted"] for answer in answers)
    rejected = [r for answer in answers for r in answer["rejected"]]
    if accepted != expected or rejected:
        raise BenchError(
            f"{what}: {accepted} of {expected} accepted; first rejection: {rejected[:1]}"
        )


def measure_batches(ctx, events: list[dict], bodies: list[bytes]) -> float:
    """Seconds for the API to take the batches, starting with no contacts and no events."""
    ctx.reset_contacts()
    result = send_all(ctx.server.port, EVENTS_PATH, bodies, bearer(ctx.api_key), ctx.clients)
    check_accepted(result, len(events), "batches")
    stored = ctx.database.count("contacts_event")
    if stored != len(events):
        raise BenchError(f"batches: {stored} events stored of {len(events)} sent")
    return result.seconds


def measure_batch_floor(ctx, events: list[dict]) -> float:
    """Seconds to COPY the same rows, the contacts being there (the API run created them)."""
    data = copy_data(event_rows(ctx, events))
    ctx.database.execute("TRUNCATE contacts_event")
    seconds = copy_floor(ctx.database, "contacts_event", EVENT_COLUMNS, data)
    if ctx.database.count("contacts_event") != len(events):
        raise BenchError("the COPY floor did not store every row")
    return seconds


def measure_singles(ctx, events: list[dict]) -> float:
    ctx.database.execute("TRUNCATE contacts_event")
    bodies = [json.dumps(event).encode() for event in events]
    result = send_all(ctx.server.port, EVENTS_PATH, bodies, bearer(ctx.api_key), ctx.clients)
    check_accepted(result, len(events), "single events")
    return result.seconds


def measure_single_floor(ctx, events: list[dict]) -> float:
    rows = event_rows(ctx, events)
    ctx.database.execute("TRUNCATE contacts_event")
    return insert_one_by_one_floor(ctx.database, "contacts_event", EVENT_COLUMNS, rows, ctx.clients)


def probe_segment(ctx) -> str | None:
    """None when /v1/batch takes an event; otherwise why it cannot be measured."""
    probe = {"batch": [{"type": "track", "userId": "bench-probe", "event": "probe",
                        "messageId": "bench-probe-1"}]}  # fmt: skip
    try:
        status, body = post_one(
            ctx.server.port, SEGMENT_BATCH_PATH, json.dumps(probe).encode(), basic(ctx.api_key)
        )
    except OSError as exc:
        return f"{SEGMENT_BATCH_PATH} did not answer ({exc})"
    if status == 404:
        return f"{SEGMENT_BATCH_PATH} is not there yet (404)"
    if not 200 <= status < 300:
        return f"{SEGMENT_BATCH_PATH} answered {status}: {body[:200].decode(errors='replace')}"
    return None


def measure_segment_batches(ctx, events: list[dict], bodies: list[bytes]) -> tuple[float, int]:
    ctx.reset_contacts()
    result = send_all(ctx.server.port, SEGMENT_BATCH_PATH, bodies, basic(ctx.api_key), ctx.clients)
    result.require_status(200)
    return result.seconds, ctx.database.count("contacts_event")


def run(ctx) -> dict:
    scale = ctx.scale
    events = make_events(scale["batch_events"], scale["event_contacts"], "batch", seed=1)
    bodies = api_batch_bodies(events)
    singles = make_events(scale["single_events"], scale["event_contacts"], "single", seed=2)
    ours, floor, single_ours, single_floor = [], [], [], []
    for round_ in range(ctx.rounds):
        ctx.log(f"events round {round_ + 1}/{ctx.rounds}: {len(events):,} in batches")
        ours.append(measure_batches(ctx, events, bodies))
        floor.append(measure_batch_floor(ctx, events))
        ctx.log(f"  batches {len(events) / ours[-1]:,.0f}/s, COPY {len(events) / floor[-1]:,.0f}/s")
        single_ours.append(measure_singles(ctx, singles))
        single_floor.append(measure_single_floor(ctx, singles))
        ctx.log(
            f"  single {len(singles) / single_ours[-1]:,.0f}/s, "
            f"INSERT {len(singles) / single_floor[-1]:,.0f}/s"
        )
    figures = [
        figure(
            f"Events in batches of {BATCH_SIZE:,} ({EVENTS_PATH})",
            "events/s",
            len(events),
            ours,
            floor,
            "COPY into contacts_event",
            min_rate=TARGET_BATCH_RATE,
            min_ratio=TARGET_RATIO,
            note=f"{len(events):,} events over {scale['event_contacts']:,} contacts, "
            "created on first sight",
        ),
        figure(
            f"Single-event POSTs ({EVENTS_PATH})",
            "events/s",
            len(singles),
            single_ours,
            single_floor,
            f"INSERT one row per transaction, {ctx.clients} connections",
            min_rate=TARGET_SINGLE_RATE,
            note="contacts already known",
        ),
    ]

    name = f"Events in batches of {BATCH_SIZE:,} ({SEGMENT_BATCH_PATH}, Segment-compatible)"
    problem = probe_segment(ctx)
    if problem:
        ctx.log(f"  {problem}: recorded as not available")
        figures.append(not_available(name, problem))
    else:
        segment_bodies = segment_batch_bodies(events)
        segment_ours = []
        for round_ in range(ctx.rounds):
            ctx.log(f"events round {round_ + 1}/{ctx.rounds}: {len(events):,} via /v1/batch")
            seconds, stored = measure_segment_batches(ctx, events, segment_bodies)
            if stored != len(events):
                figures.append(
                    not_available(
                        name,
                        f"{SEGMENT_BATCH_PATH} answered 200 but {stored:,} of {len(events):,} "
                        "events were stored by the end of the run (processed later?)",
                    )
                )
                break
            segment_ours.append(seconds)
        else:
            figures.append(
                figure(name, "events/s", len(events), segment_ours, floor,
                       "COPY into contacts_event (the rows of the batches above)",
                       min_rate=TARGET_BATCH_RATE, min_ratio=TARGET_RATIO)
            )  # fmt: skip
    return {"figures": figures}
