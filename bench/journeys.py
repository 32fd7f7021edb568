"""Journeys: (a) a crowd of contacts waiting in a journey, all due at once, moved on by real
Celery worker processes (1, then 2) running the engine's due tick, beside the floor: a
plain SQL UPDATE of the same rows' state in batches of the same size; and (b) the time from
an event accepted by the API, which ends a contact's wait for it, to the email that follows
arriving at an SMTP server (a process of its own), while 1,000 events/s are ingested.

(a) The wait's next node is an exit: each wake-up is a state change (the enrollment leaves
the wait and exits), two lines of the step log and the per-node counters, in the engine's
one transaction per claimed batch. Every run is checked: every enrollment exited once, two
steps each, counters exact.
"""

import cProfile
import http.client
import io
import json
import multiprocessing
import os
import pstats
import queue as queues
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench import segments
from bench.harness import (
    HOST,
    LAUNCHER_WORKER_ARGS,
    REQUEST_TIMEOUT_SECONDS,
    BenchError,
    CeleryWorker,
    background_summary,
    bearer,
    figure,
    free_port,
    latency_summary,
    prefork_args,
)
from bench.segments import copy_rows

NAME = "journeys"
TITLE = "Journeys: due wake-ups and event-to-email latency"
# Run alone (`python -m bench journeys`) it has a database of its own.
DATABASE_NAME = "orchestra_journeys_bench"
# The runner's SCALE names; the sizes are this workload's own.
SIZES = {
    "quick": {"enrollments": 10_000, "load_seconds": 15},
    "default": {"enrollments": 100_000, "load_seconds": 30},
    "full": {"enrollments": 1_000_000, "load_seconds": 60},
}
WORKER_PROCESSES = (1, 2)
TARGET_RATE = 10_000  # state changes/s with 2 worker processes
TARGET_DRAIN_SECONDS = 120  # for 1,000,000 (SCALE=full)
LATENCY_TARGET_P95_SECONDS = 2.0
PROFILE_ENROLLMENTS = 20_000
# The engine as it was first written, measured the same way in one process (in_process) on
# this machine: bulk_update's CASE expression per field and row was most of its time.
BEFORE = {
    "per_second": 247,
    "note": "the engine as first written: claim, then select_related load, per-contact "
    "steps as model rows, bulk_update (a CASE per field and row), 500 a batch",
}
PROFILE_LINES = 25
STALL_SECONDS = 60  # no enrollment moving on for this long fails the run
POLL_SECONDS = 0.05
PROBES_PER_SECOND = 2
PROBE_TIMEOUT_SECONDS = 30
SENDER = "shop@example.com"

CONTACT_COLUMNS = ["workspace_id", "external_id", "email", "first_name", "last_name",
                   "timezone", "locale", "attributes", "created_at", "updated_at"]  # fmt: skip
CONSENT_COLUMNS = ["workspace_id", "contact_id", "channel", "status", "source", "updated_at"]
ENROLLMENT_COLUMNS = ["workspace_id", "journey_id", "version_id", "contact_id", "key", "state",
                      "node_id", "due_at", "awaiting_event", "holdout", "visits", "entry_event",
                      "entered_at", "updated_at", "finished_at", "exit_reason",
                      "converted_at"]  # fmt: skip
FIRST_NAMES = ["Anna", "Bo", "Camilla", "Dan", "Emma", "Frederik", "Greta", "Henrik", "Ida"]

# (a) Waiting a day, then out: a wake-up is the engine's whole work and nothing else.
WAKE_UP_GRAPH = {
    "name": "Wake-ups",
    "entry": {"type": "api"},
    "start": "wait",
    "nodes": [
        {"id": "wait", "type": "wait", "duration": "P1D"},
        {"id": "done", "type": "exit"},
    ],
    "edges": [{"from": "wait", "to": "done"}],
}
# (b) Waiting for a purchase, then a thank-you email.
PURCHASE_GRAPH = {
    "name": "Thanks for buying",
    "entry": {"type": "api"},
    "start": "wait",
    "nodes": [
        {"id": "wait", "type": "wait", "until_event": "purchase", "timeout": "P7D"},
        {"id": "thanks", "type": "send", "channel": "email", "template": "thanks"},
        {"id": "done", "type": "exit"},
    ],
    "edges": [
        {"from": "wait", "to": "thanks", "branch": "event"},
        {"from": "wait", "to": "done", "branch": "timeout"},
        {"from": "thanks", "to": "done"},
    ],
}
THANKS_TEMPLATE = {
    "slug": "thanks",
    "name": "Thanks",
    "channel": "email",
    "subject": "Thank you, {{ contact.first_name }}",
    "html": "<p>Hi {{ contact.first_name }}, thank you for your purchase.</p>"
    '<p><a href="https://shop.example.com/orders">Your orders</a></p>',
}


def sizes() -> dict:
    return SIZES[os.environ.get("SCALE") or "default"]


# -- the data ----------------------------------------------------------------------------------


@dataclass
class Setup:
    count: int
    contact_ids: list[int]
    journey_id: int
    version_id: int
    probe_ids: list[int] = field(default_factory=list)
    probe_journey_id: int = 0
    probe_version_id: int = 0


def publish(workspace, graph: dict):
    from apps.journeys.services import journeys

    journey = journeys.create_journey(workspace, graph)
    version = journeys.publish(journey)
    return journey, version


def copy_contacts(ctx, prefix: str, count: int) -> list[int]:
    now = datetime.now(UTC).isoformat()
    rows = (
        (ctx.workspace_id, f"{prefix}-{n}", f"{prefix}{n}@example.com",
         FIRST_NAMES[n % len(FIRST_NAMES)], "Jensen", "Europe/Copenhagen", "da", "{}", now, now)
        for n in range(count)
    )  # fmt: skip
    with ctx.database.connect() as conn:
        copy_rows(conn, "contacts_contact", CONTACT_COLUMNS, rows)
        conn.commit()
        ids = [row[0] for row in conn.execute(
            "SELECT id FROM contacts_contact WHERE workspace_id = %s AND external_id LIKE %s "
            "ORDER BY id", [ctx.workspace_id, f"{prefix}-%"])]  # fmt: skip
        consents = ((ctx.workspace_id, pk, "email", "subscribed", "bench", now) for pk in ids)
        copy_rows(conn, "contacts_consent", CONSENT_COLUMNS, consents)
        conn.commit()
    return ids


def generate(ctx, count: int, probes: int, sink_port: int) -> Setup:
    """`count` contacts (c-0, c-1, ...: the background load's) and `probes` probe contacts
    (p-0, ...), all subscribed to email, by COPY; the two journeys, the template and an SMTP
    channel through the services, as a marketer makes them."""
    from apps.accounts.models import Workspace
    from apps.channels.models import Channel
    from apps.channels.services.templates import create_template

    workspace = Workspace.objects.get(pk=ctx.workspace_id)
    ctx.reset_contacts()
    contact_ids = copy_contacts(ctx, "c", count)
    probe_ids = copy_contacts(ctx, "p", probes)
    _template, problems = create_template(workspace, THANKS_TEMPLATE)
    if problems:
        raise BenchError(f"the benchmark's template has problems: {problems}")
    Channel.objects.create(
        workspace=workspace,
        name="Bench SMTP",
        type="email",
        provider="smtp",
        config={"host": HOST, "port": sink_port, "use_tls": False, "from_email": SENDER},
        is_default=True,
    )
    journey, version = publish(workspace, WAKE_UP_GRAPH)
    probe_journey, probe_version = publish(workspace, PURCHASE_GRAPH)
    ctx.database.vacuum_analyze("contacts_contact", "contacts_consent")
    return Setup(count, contact_ids, journey.pk, version.pk, probe_ids, probe_journey.pk,
                 probe_version.pk)  # fmt: skip


def enrollment_row(ctx, journey_id, version_id, contact_id, state, due_at, awaiting, now):
    return (ctx.workspace_id, journey_id, version_id, contact_id, "", state, "wait", due_at,
            awaiting, "f", '{"wait": 1}', "{}", now, now, None, "", None)  # fmt: skip


def enroll_waiting(ctx, setup: Setup, count: int) -> float:
    """A fresh start: `count` contacts at the wait, due over the last minute (so all are
    due now), by COPY, with the wait's counters as the engine would have left them.
    Answers the COPY's seconds."""
    ctx.database.execute(
        "TRUNCATE journeys_journeystep, journeys_enrollment, journeys_nodestats CASCADE"
    )
    now = datetime.now(UTC)
    first_due = now - timedelta(minutes=1)
    step = timedelta(minutes=1) / max(count, 1)
    rows = (
        enrollment_row(ctx, setup.journey_id, setup.version_id, pk, "active",
                       (first_due + n * step).isoformat(), "", now.isoformat())
        for n, pk in enumerate(setup.contact_ids[:count])
    )  # fmt: skip
    began = time.perf_counter()
    with ctx.database.connect() as conn:
        copy_rows(conn, "journeys_enrollment", ENROLLMENT_COLUMNS, rows)
        conn.execute(
            "INSERT INTO journeys_nodestats (journey_id, version_id, node_id, entered, waiting, "
            "completed, exited, converted, branches) VALUES (%s, %s, 'wait', %s, %s, 0, 0, 0, "
            "'{}')",
            [setup.journey_id, setup.version_id, count, count],
        )
        conn.commit()
    seconds = time.perf_counter() - began
    ctx.database.vacuum_analyze("journeys_enrollment", "journeys_journeystep",
                                "journeys_nodestats")  # fmt: skip
    return seconds


def exited(ctx, setup: Setup) -> int:
    """What the engine has moved on so far: the exit's counter, one row, cheap to poll."""
    rows = ctx.database.execute(
        "SELECT exited FROM journeys_nodestats WHERE version_id = %s AND node_id = 'done'",
        [setup.version_id],
    )
    return rows[0][0] if rows else 0


def check_exactly_once(ctx, setup: Setup, count: int, what: str) -> None:
    """Every enrollment exited at the exit, with two steps (the wait done, the exit), and
    the counters say so; nobody moved twice."""
    states = dict(
        ctx.database.execute(
            "SELECT state || ':' || node_id, count(*) FROM journeys_enrollment "
            "WHERE journey_id = %s GROUP BY 1",
            [setup.journey_id],
        )
    )
    steps = dict(
        ctx.database.execute(
            "SELECT s.node_id || ':' || s.outcome, count(*) FROM journeys_journeystep s "
            "JOIN journeys_enrollment e ON e.id = s.enrollment_id WHERE e.journey_id = %s "
            "GROUP BY 1",
            [setup.journey_id],
        )
    )
    twice = ctx.database.execute(
        "SELECT count(*) FROM (SELECT enrollment_id, node_id FROM journeys_journeystep "
        "GROUP BY 1, 2 HAVING count(*) > 1) AS t"
    )[0][0]
    stats = {
        node: (entered, waiting, completed, exited_)
        for node, entered, waiting, completed, exited_ in ctx.database.execute(
            "SELECT node_id, entered, waiting, completed, exited FROM journeys_nodestats "
            "WHERE version_id = %s",
            [setup.version_id],
        )
    }
    expected_stats = {"wait": (count, 0, count, 0), "done": (count, 0, 0, count)}
    if (
        states != {"exited:done": count}
        or steps != {"wait:done": count, "done:exited": count}
        or twice
        or stats != expected_stats
    ):
        raise BenchError(
            f"{what}: enrollments {states}, steps {steps}, {twice} moved twice, "
            f"counters {stats} (expected {expected_stats})"
        )


# -- ours: Celery workers running the due tick ---------------------------------------------------


def measure_workers(ctx, setup: Setup, processes: int, tag: str) -> float:
    """Seconds from the beat's tick reaching idle workers to the last enrollment moved on."""
    from orchestra.celery import app

    count = setup.count
    enroll_waiting(ctx, setup, count)
    log_path = ctx.server.log_path.parent / f"{NAME}-worker-{tag}.log"
    worker = CeleryWorker(ctx.server.env, log_path, prefork_args(processes)).start()
    try:
        began = time.perf_counter()
        # What beat sends every second; the first full batch wakes a second worker
        # process, and so on (engine.advance_due).
        app.send_task("apps.journeys.tasks.advance_due_tick_task")
        last, last_change = -1, time.perf_counter()
        while True:
            polled_at = time.perf_counter()
            done = exited(ctx, setup)
            if done >= count:
                seconds = polled_at - began
                break
            if done != last:
                last, last_change = done, polled_at
            elif polled_at - last_change > STALL_SECONDS:
                raise BenchError(f"{processes} worker processes: {done:,} of {count:,} moved on")
            time.sleep(POLL_SECONDS)
    finally:
        worker.stop()
    if worker.errors():
        raise BenchError(f"the worker logged errors: {worker.errors()[:3]}")
    check_exactly_once(ctx, setup, count, f"{processes} worker processes")
    return seconds


# -- the floor: a plain UPDATE in batches ----------------------------------------------------------

FLOOR_SQL = """
WITH claimed AS (
    SELECT id FROM journeys_enrollment
    WHERE state IN ('active', 'waiting') AND due_at <= now()
    ORDER BY due_at LIMIT %s FOR UPDATE SKIP LOCKED
)
UPDATE journeys_enrollment e
SET state = 'exited', node_id = 'done', due_at = NULL, finished_at = now(),
    updated_at = now(), exit_reason = 'Reached an exit.'
FROM claimed WHERE e.id = claimed.id
"""


def measure_floor(ctx, setup: Setup, batch: int) -> float:
    """The same rows' state changed by one statement a batch, a transaction each."""
    enroll_waiting(ctx, setup, setup.count)
    moved = 0
    with ctx.database.connect() as conn:
        began = time.perf_counter()
        while True:
            changed = conn.execute(FLOOR_SQL, [batch]).rowcount
            conn.commit()
            if not changed:
                break
            moved += changed
        seconds = time.perf_counter() - began
    if moved != setup.count:
        raise BenchError(f"the floor moved {moved:,} of {setup.count:,}")
    return seconds


# -- where the time goes ---------------------------------------------------------------------------


def in_process(ctx, setup: Setup) -> dict:
    """engine.advance_due in this process, no profiler: wall time and this process's CPU
    (the rest is PostgreSQL's work and waiting for it)."""
    from django.db import connections

    from apps.journeys.services import engine

    count = min(PROFILE_ENROLLMENTS, setup.count)
    enroll_waiting(ctx, setup, count)
    began, cpu = time.perf_counter(), time.process_time()
    while engine.advance_due():
        pass
    seconds, cpu = time.perf_counter() - began, time.process_time() - cpu
    connections.close_all()
    check_exactly_once(ctx, setup, count, "the in-process run")
    return {
        "enrollments": count,
        "per_second": round(count / seconds),
        "wall_us_per_enrollment": round(seconds / count * 1e6, 1),
        "cpu_us_per_enrollment": round(cpu / count * 1e6, 1),
    }


def profile_advance(ctx, setup: Setup) -> dict:
    """cProfile of engine.advance_due in this process, for PROFILE_ENROLLMENTS."""
    from django.db import connections

    from apps.journeys.services import engine

    count = min(PROFILE_ENROLLMENTS, setup.count)
    enroll_waiting(ctx, setup, count)
    profiler = cProfile.Profile()
    moved = 0
    began = time.perf_counter()
    profiler.enable()
    while moved < count:
        done = engine.advance_due()
        if not done:
            break
        moved += done
    profiler.disable()
    seconds = time.perf_counter() - began
    connections.close_all()
    check_exactly_once(ctx, setup, count, "the profile run")
    stats = pstats.Stats(profiler, stream=io.StringIO())
    top = []
    for (path, line, function), (_cc, calls, own, cumulative, _callers) in sorted(
        stats.stats.items(), key=lambda item: item[1][2], reverse=True
    )[:PROFILE_LINES]:
        where = Path(path).name if path != "~" else ""
        top.append({
            "function": f"{where}:{line}({function})" if where else function,
            "calls": calls,
            "own_us_per_enrollment": round(own / count * 1e6, 1),
            "cumulative_us_per_enrollment": round(cumulative / count * 1e6, 1),
        })  # fmt: skip
    return {
        "enrollments": count,
        "seconds": round(seconds, 3),
        "per_second": round(count / seconds),
        "us_per_enrollment": round(seconds / count * 1e6),
        "top_by_own_time": top,
    }


# -- (b) event to email: latency -------------------------------------------------------------


def serve_recording_sink(port: int, arrivals, ready) -> None:
    """An aiosmtpd server that notes when each message arrived and for whom (read by the
    benchmark through `arrivals`). Runs in a process of its own."""
    from aiosmtpd.controller import Controller

    class Recording:
        async def handle_DATA(self, server, session, envelope):
            arrivals.put((envelope.rcpt_tos[0], time.time()))
            return "250 OK"

    controller = Controller(Recording(), hostname=HOST, port=port)
    controller.start()
    ready.set()
    threading.Event().wait()  # until the benchmark terminates this process


class Sink:
    """The recording SMTP server's process, and a thread collecting its arrivals."""

    def __init__(self):
        context = multiprocessing.get_context("spawn")
        self.port = free_port()
        self.arrivals = context.Queue()
        self.seen: dict[str, float] = {}  # recipient -> first arrival (time.time())
        self.count = 0
        ready = context.Event()
        self.process = context.Process(
            target=serve_recording_sink, args=(self.port, self.arrivals, ready), daemon=True
        )
        self.process.start()
        if not ready.wait(30):
            raise BenchError("the SMTP sink did not start")
        self.done = threading.Event()
        self.collector = threading.Thread(target=self._collect, daemon=True)
        self.collector.start()

    def _collect(self) -> None:
        while not self.done.is_set():
            try:
                recipient, at = self.arrivals.get(timeout=0.1)
            except queues.Empty:
                continue
            self.count += 1
            self.seen.setdefault(recipient, at)

    def stop(self) -> None:
        self.done.set()
        self.collector.join(5)
        self.process.terminate()
        self.process.join(30)


def enroll_probes(ctx, setup: Setup) -> None:
    """Every probe contact waits for a purchase in the thank-you journey (by COPY)."""
    ctx.database.execute(
        "TRUNCATE journeys_journeystep, journeys_enrollment, journeys_nodestats CASCADE"
    )
    now = datetime.now(UTC)
    due = (now + timedelta(days=7)).isoformat()
    rows = (
        enrollment_row(ctx, setup.probe_journey_id, setup.probe_version_id, pk, "waiting", due,
                       "purchase", now.isoformat())
        for pk in setup.probe_ids
    )  # fmt: skip
    count = len(setup.probe_ids)
    with ctx.database.connect() as conn:
        copy_rows(conn, "journeys_enrollment", ENROLLMENT_COLUMNS, rows)
        conn.execute(
            "INSERT INTO journeys_nodestats (journey_id, version_id, node_id, entered, waiting, "
            "completed, exited, converted, branches) VALUES (%s, %s, 'wait', %s, %s, 0, 0, 0, "
            "'{}')",
            [setup.probe_journey_id, setup.probe_version_id, count, count],
        )
        conn.commit()
    ctx.database.vacuum_analyze("journeys_enrollment")


@dataclass
class Probes:
    """Probe purchases, one request each, and when each thank-you email arrived."""

    answered: dict[str, float] = field(default_factory=dict)  # recipient -> API answered
    sent: dict[str, float] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def latencies(self, sink: Sink, since_answer: bool = True) -> list[float]:
        start = self.answered if since_answer else self.sent
        return [sink.seen[key] - start[key] for key in self.answered if key in sink.seen]


def send_probes(port: int, headers: dict, numbers: range, probes: Probes) -> None:
    connection = http.client.HTTPConnection(HOST, port, timeout=REQUEST_TIMEOUT_SECONDS)
    began = time.perf_counter()
    try:
        for i, n in enumerate(numbers):
            delay = began + i / PROBES_PER_SECOND - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            recipient = f"p{n}@example.com"
            event = {"external_id": f"p-{n}", "name": "purchase", "message_id": f"probe-{n}"}
            body = json.dumps({**event, "properties": {"amount": 120}})
            probes.sent[recipient] = time.time()
            connection.request("POST", segments.EVENTS_PATH, body=body.encode(), headers=headers)
            response = connection.getresponse()
            answer = response.read()
            if response.status != 200 or json.loads(answer).get("accepted") != 1:
                probes.failures.append(f"p-{n}: {response.status} {answer[:200]!r}")
                continue
            probes.answered[recipient] = time.time()
    finally:
        connection.close()


def probe_run(ctx, setup: Setup, sink: Sink, numbers: range, load: bool, tag: str) -> dict:
    headers = bearer(ctx.api_key)
    probes = Probes()
    stop_load = threading.Event()
    background: dict = {}
    loader = None
    seconds = len(numbers) / PROBES_PER_SECOND
    if load:
        bodies = segments.background_bodies(setup.count, int(seconds) + 10, tag)
        loader = threading.Thread(
            target=segments.send_paced,
            args=(ctx.server.port, headers, bodies,
                  segments.BACKGROUND_EVENTS_PER_SECOND / segments.BACKGROUND_BATCH,
                  segments.BACKGROUND_CLIENTS, stop_load, background),
            daemon=True,
        )  # fmt: skip
        loader.start()
        time.sleep(2)  # probes start once the load is steady
    send_probes(ctx.server.port, headers, numbers, probes)
    stop_load.set()
    if loader:
        loader.join(timeout=REQUEST_TIMEOUT_SECONDS)
    deadline = time.perf_counter() + PROBE_TIMEOUT_SECONDS
    while any(key not in sink.seen for key in probes.answered) and time.perf_counter() < deadline:
        time.sleep(0.1)
    latencies = probes.latencies(sink)
    if not latencies:
        raise BenchError(f"{tag}: no probe's email arrived ({probes.failures[:1]})")
    result = latency_summary(
        len(probes.answered),
        probes.failures,
        latencies,
        probes.latencies(sink, since_answer=False),
    )
    if load:
        result["background"] = background_summary(background)
    return result


def latency(ctx, setup: Setup, sink: Sink, seconds: int) -> dict:
    enroll_probes(ctx, setup)
    log_path = ctx.server.log_path.parent / f"{NAME}-latency-worker.log"
    worker = CeleryWorker(ctx.server.env, log_path, LAUNCHER_WORKER_ARGS, ctx.server.cpus)
    worker.start()
    per_run = seconds * PROBES_PER_SECOND
    warm = range(0, 4)
    floor_numbers = range(4, 4 + per_run)
    load_numbers = range(4 + per_run, 4 + 2 * per_run)
    try:
        ctx.log("latency: warming the worker up")
        probe_run(ctx, setup, sink, warm, load=False, tag="warm")
        ctx.log(f"latency floor: {seconds} s of probes, no other load")
        floor = probe_run(ctx, setup, sink, floor_numbers, load=False, tag="floor")
        ctx.log(f"  p50 {floor['p50']:.3f} s, p95 {floor['p95']:.3f} s, p99 {floor['p99']:.3f} s")
        ctx.log(
            f"latency: {seconds} s of probes under "
            f"{segments.BACKGROUND_EVENTS_PER_SECOND:,} events/s"
        )
        loaded = probe_run(ctx, setup, sink, load_numbers, load=True, tag="load")
        ctx.log(
            f"  p50 {loaded['p50']:.3f} s, p95 {loaded['p95']:.3f} s, p99 {loaded['p99']:.3f} s;"
            f" background {loaded['background']['events_per_s']:,} events/s"
        )
    finally:
        worker.stop()
    worker_errors = [line for line in log_path.read_text().splitlines() if "ERROR" in line]
    thanked = ctx.database.count(
        "journeys_enrollment",
        "journey_id = %s AND state = 'exited' AND node_id = 'done'",
        [setup.probe_journey_id],
    )
    background = loaded["background"]
    passed = (
        loaded["p95"] < LATENCY_TARGET_P95_SECONDS
        and not loaded["missed"]
        and not background["failed_requests"]
        and not background["errors"]
        and not worker_errors
    )
    return {
        "seconds": seconds,
        "probes_per_s": PROBES_PER_SECOND,
        "background_target_per_s": segments.BACKGROUND_EVENTS_PER_SECOND,
        "background_batch": segments.BACKGROUND_BATCH,
        "under_load": loaded,
        "floor": floor,
        "p95_ratio": round(loaded["p95"] / floor["p95"], 2) if floor["p95"] > 0 else None,
        "target_p95_seconds": LATENCY_TARGET_P95_SECONDS,
        "pass": passed,
        "thanked": thanked,
        "emails_received": sink.count,
        "worker": "celery worker --concurrency 2 (prefork), one process",
        "worker_errors": worker_errors[:3],
    }


# -- the run -----------------------------------------------------------------------------------


def run(ctx) -> dict:
    size = sizes()
    count = ctx.scale.get("enrollments", size["enrollments"])
    probes = PROBES_PER_SECOND * (2 * size["load_seconds"]) + 4
    sink = Sink()
    try:
        ctx.log(f"journeys: {count:,} contacts, {probes:,} probe contacts, the journeys")
        setup = generate(ctx, count, probes, sink.port)
        ours = {processes: [] for processes in WORKER_PROCESSES}
        floor = []
        copy_seconds = 0.0
        for round_ in range(ctx.rounds):
            ctx.log(f"wake-ups round {round_ + 1}/{ctx.rounds}: {count:,} due at once")
            floor.append(measure_floor(ctx, setup, claim_batch()))
            ctx.log(f"  plain UPDATE in batches: {count / floor[-1]:,.0f} state changes/s")
            for processes in WORKER_PROCESSES:
                seconds = measure_workers(ctx, setup, processes, f"r{round_}-p{processes}")
                ours[processes].append(seconds)
                ctx.log(
                    f"  {processes} worker process(es): {count / seconds:,.0f} state changes/s, "
                    f"drained in {seconds:,.1f} s"
                )
        copy_seconds = enroll_waiting(ctx, setup, count)
        ctx.log(f"in-process: {min(PROFILE_ENROLLMENTS, count):,} wake-ups, one process")
        alone = in_process(ctx, setup)
        ctx.log(
            f"  {alone['per_second']:,} wake-ups/s, {alone['cpu_us_per_enrollment']} µs of "
            "this process's CPU each"
        )
        ctx.log(f"profile: {min(PROFILE_ENROLLMENTS, count):,} wake-ups in-process (cProfile)")
        profile = profile_advance(ctx, setup)
        ctx.log(f"  {profile['us_per_enrollment']} µs a wake-up under the profiler")
        realtime = latency(ctx, setup, sink, size["load_seconds"])
    finally:
        sink.stop()
    floor_what = f"plain SQL UPDATE of the same rows' state, {claim_batch():,} a transaction"
    drain = min(ours[2])
    judged = count >= 1_000_000
    figures = [
        figure(
            "Due wake-ups, 1 worker process",
            "state changes/s",
            count,
            ours[1],
            floor,
            floor_what,
            note="enrolled by COPY, all due; from the beat's tick reaching an idle worker to "
            "the last contact moved on; every enrollment checked moved once",
        ),
        figure(
            "Due wake-ups, 2 worker processes",
            "state changes/s",
            count,
            ours[2],
            floor,
            floor_what,
            min_rate=TARGET_RATE,
            note="celery worker --pool prefork --concurrency 2; the machine's 2 cores are "
            "shared with PostgreSQL",
        ),
    ]
    return {
        "figures": figures,
        "drain": {
            "enrollments": count,
            "seconds_2_workers": round(drain, 1),
            "target_seconds": TARGET_DRAIN_SECONDS,
            "pass": (drain < TARGET_DRAIN_SECONDS) if judged else None,
        },
        "claim_batch": claim_batch(),
        "copy_seconds": round(copy_seconds, 1),
        "in_process": alone,
        "before": BEFORE,
        "profile": profile,
        "latency": realtime,
        "about": (
            f"{count:,} contacts waiting a day in a journey (wait, then exit), all due at once. "
            "A wake-up is one contact's state change: it leaves the wait and exits, with two "
            "lines of the step log and the per-node counters, written by the engine in one "
            "transaction per claimed batch (engine.advance_due)."
        ),
    }


def claim_batch() -> int:
    """The engine's batch size: the floor updates as many rows a transaction."""
    from apps.journeys.services import engine

    return engine.CLAIM_BATCH
