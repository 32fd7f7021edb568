"""Segments: full evaluation of three reference segments through refresh_segment on
contacts and events generated with COPY, and the time from an event accepted by the API to
the membership it causes, under 1,000 events/s. Each beside its floor in the same run:
a hand-written SQL query answering the same question, and the same probe with no load."""

import http.client
import itertools
import json
import os
import random
import statistics
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from bench.harness import (
    COPY_CHUNK_BYTES,
    HOST,
    LAUNCHER_WORKER_ARGS,
    REQUEST_TIMEOUT_SECONDS,
    BenchError,
    CeleryWorker,
    background_summary,
    bearer,
    copy_value,
    latency_summary,
)
from orchestra import redis_client

NAME = "segments"
TITLE = "Segments: full evaluation and real-time membership"
# Run alone (`python -m bench segments`) it has a database of its own, so it never drops
# orchestra_bench under an ingest benchmark running at the same time.
DATABASE_NAME = "orchestra_segments_bench"
# The runner's SCALE names; the sizes are this workload's own.
SIZES = {
    "quick": {"contacts": 20_000, "events": 200_000, "load_seconds": 20},
    "default": {"contacts": 100_000, "events": 1_000_000, "load_seconds": 60},
    "full": {"contacts": 1_000_000, "events": 10_000_000, "load_seconds": 60},
}
SEED = 20_260_101
HISTORY_DAYS = 90
EVALUATION_TARGET_SECONDS = 5.0  # at SCALE=full (1M contacts, 10M events)
EVENTS_PATH = "/api/v1/events/"
BACKGROUND_EVENTS_PER_SECOND = 1_000
BACKGROUND_BATCH = 100
BACKGROUND_CLIENTS = 4
PROBES_PER_SECOND = 2
POLL_SECONDS = 0.01
QUEUE_SAMPLE_SECONDS = 0.1
# A probe not in its segment by then counts as missed (and fails the run's target).
PROBE_TIMEOUT_SECONDS = 30
LATENCY_TARGET_P95_SECONDS = 1.0
ROWS_PER_CHUNK = 50_000

COUNTRIES = (["DK", "SE", "NO", "DE"], [30, 30, 20, 18])  # the rest have no country
PLANS = (["free", "pro", "team"], [60, 30, 10])
FIRST_NAMES = ["Anna", "Bo", "Camilla", "Dan", "Emma", "Frederik", "Greta", "Henrik", "Ida"]
LAST_NAMES = ["Jensen", "Nielsen", "Hansen", "Andersson", "Johansson", "Larsen", "Berg"]
TIMEZONES = {
    "DK": "Europe/Copenhagen",
    "SE": "Europe/Stockholm",
    "NO": "Europe/Oslo",
    "DE": "Europe/Berlin",
    None: "",
}
LOCALES = {"DK": "da", "SE": "sv", "NO": "nb", "DE": "de", None: ""}
EVENT_NAMES = (
    ["page_viewed", "product_viewed", "added_to_cart", "email_opened", "purchase"],
    [55, 25, 8, 6, 6],
)
# A fifth of the contacts do half of everything, as on a real shop.
ACTIVE_SHARE, ACTIVE_EVENTS_SHARE = 0.2, 0.5
VIP_LIST_SHARE = 0.01

CONTACT_COLUMNS = ["workspace_id", "external_id", "email", "first_name", "last_name",
                   "timezone", "locale", "attributes", "created_at", "updated_at",
                   "last_seen_at"]  # fmt: skip
EVENT_COLUMNS = ["workspace_id", "contact_id", "name", "properties", "occurred_at",
                 "received_at", "source"]  # fmt: skip
CONSENT_COLUMNS = ["workspace_id", "contact_id", "channel", "status", "source", "updated_at"]
LIST_COLUMNS = ["workspace_id", "contact_list_id", "contact_id", "added_at", "source"]

PURCHASES = {
    "event": "purchase",
    "count": {"gte": 2},
    "within_days": 30,
    "where": [{"prop": "amount", "op": "gt", "value": 100}],
}
PURCHASES_SQL = """
    SELECT e.contact_id FROM contacts_event e
    WHERE e.workspace_id = %(workspace_id)s AND e.name = 'purchase'
      AND e.occurred_at >= %(since)s AND e.occurred_at <= %(now)s
      AND (e.properties ->> 'amount')::numeric > 100
    GROUP BY e.contact_id HAVING count(*) >= 2
"""


@dataclass
class Reference:
    """A segment to evaluate, and the SQL a person would write for the same question."""

    key: str
    title: str
    rule: dict
    floor_sql: str  # selects the members' contact ids


REFERENCES = [
    Reference(
        "attributes",
        "(a) attribute-only: country DK and plan pro or team",
        {
            "all": [
                {"attr": "country", "op": "eq", "value": "DK"},
                {"attr": "plan", "op": "in", "value": ["pro", "team"]},
            ]
        },
        """
        SELECT c.id FROM contacts_contact c
        WHERE c.workspace_id = %(workspace_id)s AND c.attributes ->> 'country' = 'DK'
          AND c.attributes ->> 'plan' IN ('pro', 'team')
        """,
    ),
    Reference(
        "purchases",
        "(b) purchase at least twice in 30 days with amount > 100",
        PURCHASES,
        PURCHASES_SQL,
    ),
    Reference(
        "nested",
        "(c) (b) and not country DE and email consent, or in the list vip",
        {
            "any": [
                {
                    "all": [
                        PURCHASES,
                        {"not": {"attr": "country", "op": "eq", "value": "DE"}},
                        {"consent": "email"},
                    ]
                },
                {"list": "vip"},
            ]
        },
        f"""
        SELECT c.id FROM contacts_contact c
        WHERE c.workspace_id = %(workspace_id)s
          AND ((c.id IN ({PURCHASES_SQL})
                AND c.attributes ->> 'country' IS DISTINCT FROM 'DE'
                AND EXISTS (SELECT 1 FROM contacts_consent cs WHERE cs.contact_id = c.id
                            AND cs.channel = 'email' AND cs.status = 'subscribed'))
               OR c.id IN (SELECT lm.contact_id FROM contacts_listmembership lm
                           WHERE lm.contact_list_id = %(vip_list_id)s))
        """,  # noqa: S608
    ),
]
PROBE_RULE = {"event": "probe"}


def sizes() -> dict:
    return SIZES[os.environ.get("SCALE") or "default"]


# -- the data ----------------------------------------------------------------------------------


def copy_rows(conn, table: str, columns: list[str], rows) -> int:
    """COPY rows from a generator in chunks, so ten million never sit in memory at once."""
    count, rows = 0, iter(rows)
    sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
    with conn.cursor() as cursor, cursor.copy(sql) as copy:
        while chunk := list(itertools.islice(rows, ROWS_PER_CHUNK)):
            data = "".join("\t".join(map(copy_value, row)) + "\n" for row in chunk).encode()
            for offset in range(0, len(data), COPY_CHUNK_BYTES):
                copy.write(data[offset : offset + COPY_CHUNK_BYTES])
            count += len(chunk)
    return count


def contact_rows(workspace_id: int, count: int, now: datetime, rng: random.Random):
    for n in range(count):
        country = rng.choices(*COUNTRIES)[0] if rng.random() < 0.98 else None
        signed_up = now - timedelta(days=rng.randrange(3 * 365), seconds=rng.randrange(86_400))
        attributes = {
            "plan": rng.choices(*PLANS)[0],
            "lifetime_value": round(rng.lognormvariate(5, 1.2), 2),
            "signup_date": signed_up.date().isoformat(),
        }
        if country:
            attributes["country"] = country
        stamp = signed_up.isoformat()
        yield (workspace_id, f"c-{n}", f"c{n}@example.com", rng.choice(FIRST_NAMES),
               rng.choice(LAST_NAMES), TIMEZONES[country], LOCALES[country],
               json.dumps(attributes), stamp, stamp, None)  # fmt: skip


def event_properties(name: str, rng: random.Random) -> str:
    if name == "page_viewed":
        return f'{{"path": "/p/{rng.randrange(5000)}", "referrer": "https://www.example.com/"}}'
    if name in ("product_viewed", "added_to_cart"):
        return f'{{"sku": "SKU-{rng.randrange(2000):05d}", "category": "shoes", "quantity": 1}}'
    if name == "email_opened":
        return f'{{"campaign": "weekly-{rng.randrange(13)}"}}'
    amount = round(rng.lognormvariate(4.2, 0.8), 2)
    return f'{{"amount": {amount}, "currency": "DKK", "items": {rng.randrange(1, 5)}}}'


def event_rows(
    workspace_id: int, contact_ids: list[int], count: int, now: datetime, rng: random.Random
):
    """Events in the order they happened over the last 90 days, as the table fills in
    production: one contact's events lie scattered over the whole table."""
    first = now - timedelta(days=HISTORY_DAYS)
    step = HISTORY_DAYS * 86_400 / count
    active = max(1, int(len(contact_ids) * ACTIVE_SHARE))
    names, weights = EVENT_NAMES
    cumulative = list(itertools.accumulate(weights))
    for i, name in enumerate(rng.choices(names, cum_weights=cumulative, k=count)):
        if rng.random() < ACTIVE_EVENTS_SHARE:
            contact_id = contact_ids[rng.randrange(active)]
        else:
            contact_id = contact_ids[rng.randrange(len(contact_ids))]
        stamp = (first + timedelta(seconds=i * step + rng.random())).isoformat()
        yield (workspace_id, contact_id, name, event_properties(name, rng), stamp, stamp, "api")


def consent_rows(workspace_id: int, contact_ids: list[int], now: datetime, rng: random.Random):
    stamp = now.isoformat()
    for contact_id in contact_ids:
        if rng.random() < 0.7:
            status = "subscribed" if rng.random() < 0.85 else "unsubscribed"
            yield (workspace_id, contact_id, "email", status, "signup form", stamp)
        if rng.random() < 0.3:
            yield (workspace_id, contact_id, "sms", "subscribed", "checkout", stamp)


def generate(ctx, size: dict) -> dict:
    """Contacts, events, consents and a list, by COPY with the production indexes in place,
    then VACUUM ANALYZE (as autovacuum leaves a table that has settled)."""
    rng = random.Random(SEED)  # noqa: S311 (test data, not secrets)
    now = datetime.now(UTC)
    workspace_id = ctx.workspace_id
    ctx.reset_contacts()
    began = time.perf_counter()
    with ctx.database.connect() as conn:
        ctx.log(f"COPY {size['contacts']:,} contacts")
        copy_rows(
            conn,
            "contacts_contact",
            CONTACT_COLUMNS,
            contact_rows(workspace_id, size["contacts"], now, rng),
        )
        conn.commit()
        # COPY takes the ids from the sequence row by row, so id order is c-0, c-1, ...
        contact_ids = [
            row[0]
            for row in conn.execute(
                "SELECT id FROM contacts_contact WHERE workspace_id = %s ORDER BY id",
                [workspace_id],
            )
        ]
        first, last = conn.execute(
            "SELECT (SELECT external_id FROM contacts_contact WHERE id = %s), "
            "(SELECT external_id FROM contacts_contact WHERE id = %s)",
            [contact_ids[0], contact_ids[-1]],
        ).fetchone()
        if (first, last) != ("c-0", f"c-{size['contacts'] - 1}"):
            raise BenchError(f"contact ids are not in COPY order ({first}, {last})")
        ctx.log(f"COPY {size['events']:,} events")
        copy_rows(
            conn,
            "contacts_event",
            EVENT_COLUMNS,
            event_rows(workspace_id, contact_ids, size["events"], now, rng),
        )
        consents = copy_rows(
            conn,
            "contacts_consent",
            CONSENT_COLUMNS,
            consent_rows(workspace_id, contact_ids, now, rng),
        )
        vip_list_id = conn.execute(
            "INSERT INTO contacts_contactlist (workspace_id, name, slug, description, created_at)"
            " VALUES (%s, 'VIP', 'vip', '', now()) "
            "ON CONFLICT (workspace_id, slug) DO UPDATE SET name = excluded.name RETURNING id",
            [workspace_id],
        ).fetchone()[0]
        vips = rng.sample(contact_ids, int(len(contact_ids) * VIP_LIST_SHARE))
        list_members = copy_rows(
            conn,
            "contacts_listmembership",
            LIST_COLUMNS,
            ((workspace_id, vip_list_id, pk, now.isoformat(), "import") for pk in vips),
        )
        conn.commit()
    load_seconds = time.perf_counter() - began
    ctx.log(f"  loaded in {load_seconds:,.0f} s; VACUUM ANALYZE")
    ctx.database.vacuum_analyze(
        "contacts_contact", "contacts_event", "contacts_consent", "contacts_listmembership"
    )
    table_mb = {
        table: round(
            ctx.database.execute("SELECT pg_total_relation_size(%s)", [table])[0][0] / 2**20
        )
        for table in ("contacts_contact", "contacts_event")
    }
    postgres = {name: ctx.database.execute(f"SHOW {name}")[0][0]
                for name in ("shared_buffers", "work_mem")}  # fmt: skip
    return {
        "contacts": size["contacts"],
        "events": size["events"],
        "postgres": postgres,
        "consents": consents,
        "list_members": list_members,
        "vip_list_id": vip_list_id,
        "contact_ids": contact_ids,
        "load_seconds": round(load_seconds, 1),
        "table_mb": table_mb,
    }


# -- full evaluation ---------------------------------------------------------------------------


def timed(function) -> tuple[float, object]:
    began = time.perf_counter()
    answer = function()
    return time.perf_counter() - began, answer


def floor_query(ctx, sql: str, params: dict) -> tuple[float, int]:
    """Seconds for the hand-written query to answer (how many), over a fresh connection."""
    with ctx.database.connect() as conn:
        seconds, count = timed(
            lambda: conn.execute(f"SELECT count(*) FROM ({sql}) AS members", params).fetchone()[0]  # noqa: S608
        )
    return seconds, count


def floor_write(ctx, sql: str, params: dict, segment_id: int) -> float:
    """Seconds for the hand-written query to store its members as a segment's, committed."""
    with ctx.database.connect() as conn:
        began = time.perf_counter()
        conn.execute(
            "INSERT INTO segments_segmentmembership (workspace_id, segment_id, contact_id, "  # noqa: S608
            "entered_at) SELECT %(workspace_id)s, %(segment_id)s, m.id, now() "
            f"FROM ({sql}) AS m(id)",
            params | {"segment_id": segment_id},
        )
        conn.commit()
        return time.perf_counter() - began


def evaluate_once(ctx, workspace, reference: Reference, vip_list_id: int, suffix: str) -> dict:
    from apps.segments import services
    from apps.segments.models import Segment

    problems = services.problems_in(workspace, reference.rule)
    if problems:
        raise BenchError(f"{reference.key}: {problems}")
    # Not create_segment: it queues the first build for a worker, and here it is timed.
    segment = Segment.objects.create(
        workspace=workspace,
        name=f"{reference.title} {suffix}",
        slug=f"{reference.key}-{suffix}",
        rule=reference.rule,
    )
    first, _changes = timed(lambda: services.refresh_segment(segment))
    segment.refresh_from_db()
    members, built_at = segment.member_count, segment.refreshed_at
    again, changes = timed(lambda: services.refresh_segment(segment))
    if changes != (0, 0):
        raise BenchError(f"{reference.key}: a refresh with nothing changed changed {changes}")
    # The floor asks the same question at the same moment as the build did.
    params = {
        "workspace_id": workspace.pk,
        "vip_list_id": vip_list_id,
        "since": built_at - timedelta(days=30),
        "now": built_at,
    }
    query_seconds, count = floor_query(ctx, reference.floor_sql, params)
    if count != members:
        raise BenchError(
            f"{reference.key}: the segment has {members:,} members, the "
            f"hand-written query finds {count:,}"
        )
    scratch = Segment.objects.create(
        workspace=workspace,
        name=f"floor {suffix}",
        slug=f"floor-{reference.key}-{suffix}",
        rule={"any": []},
    )
    write_seconds = floor_write(ctx, reference.floor_sql, params, scratch.pk)
    ctx.database.execute(
        "DELETE FROM segments_segmentmembership WHERE segment_id = %s", [scratch.pk]
    )
    scratch.delete()
    return {
        "segment": segment,
        "members": members,
        "first": first,
        "again": again,
        "floor_query": query_seconds,
        "floor_write": write_seconds,
    }


def evaluation(ctx, data: dict, scale_name: str) -> list[dict]:
    """Each round builds each reference segment anew, then refreshes it with nothing
    changed. Earlier rounds' segments stay until the end, and memberships are analyzed
    between rounds, as autovacuum would: from the second round on, a new segment meets
    statistics that know the others but not it (the case that once took 10 minutes)."""
    from apps.accounts.models import Workspace
    from apps.segments.models import Segment

    workspace = Workspace.objects.get(pk=ctx.workspace_id)
    samples = {reference.key: [] for reference in REFERENCES}
    made = []
    for round_ in range(ctx.rounds):
        ctx.log(f"evaluation round {round_ + 1}/{ctx.rounds}")
        made = []
        for reference in REFERENCES:
            sample = evaluate_once(ctx, workspace, reference, data["vip_list_id"], f"r{round_}")
            samples[reference.key].append(sample)
            made.append(sample["segment"].pk)
            ctx.log(
                f"  {reference.key}: {sample['members']:,} members; first build "
                f"{sample['first']:.2f} s, refresh {sample['again']:.2f} s; floor query "
                f"{sample['floor_query']:.2f} s, query + INSERT {sample['floor_write']:.2f} s"
            )
        ctx.database.vacuum_analyze("segments_segmentmembership")
    # The real-time part re-evaluates every segment: the last round's three, no more.
    Segment.objects.filter(workspace=workspace).exclude(pk__in=made).delete()
    ctx.database.vacuum_analyze("segments_segmentmembership")
    figures = []
    for reference in REFERENCES:
        runs = samples[reference.key]

        def best(key: str, runs=runs) -> float:
            return min(run[key] for run in runs)

        first, again = best("first"), best("again")
        judged = scale_name == "full"
        figures.append(
            {
                "key": reference.key,
                "name": reference.title,
                "rule": reference.rule,
                "members": runs[-1]["members"],
                "first_build_seconds": round(first, 3),
                "refresh_seconds": round(again, 3),
                "floor_query_seconds": round(best("floor_query"), 3),
                "floor_write_seconds": round(best("floor_write"), 3),
                # Times are lower-is-better: the ratio is how many times the floor's time ours is.
                "first_build_ratio": round(first / best("floor_write"), 2),
                "refresh_ratio": round(again / best("floor_query"), 2),
                "target_seconds": EVALUATION_TARGET_SECONDS,
                "pass": (max(first, again) < EVALUATION_TARGET_SECONDS) if judged else None,
                "rounds": {
                    key: [round(run[key], 3) for run in runs]
                    for key in ("first", "again", "floor_query", "floor_write")
                },
            }
        )
    return figures


# -- real-time latency -------------------------------------------------------------------------


@dataclass
class Probes:
    """Probe events sent one at a time, and when each contact's membership appeared."""

    answered: dict[str, float] = field(default_factory=dict)  # external_id -> API answered
    sent: dict[str, float] = field(default_factory=dict)
    seen: dict[str, float] = field(default_factory=dict)  # -> first poll that found it
    failures: list[str] = field(default_factory=list)

    def latencies(self, since_answer: bool = True) -> list[float]:
        start = self.answered if since_answer else self.sent
        return [self.seen[key] - start[key] for key in self.answered if key in self.seen]


def background_bodies(contact_count: int, seconds: int, tag: str) -> list[bytes]:
    """Paced load: BACKGROUND_BATCH events a request, for existing contacts, as a shop's
    tracking sends them (message ids, a purchase now and then)."""
    rng = random.Random(f"{SEED}-{tag}")  # noqa: S311
    requests = seconds * BACKGROUND_EVENTS_PER_SECOND // BACKGROUND_BATCH
    names, weights = EVENT_NAMES
    bodies = []
    for r in range(requests):
        events = []
        for i, name in enumerate(rng.choices(names, weights, k=BACKGROUND_BATCH)):
            events.append(
                {
                    "external_id": f"c-{rng.randrange(contact_count)}",
                    "name": name,
                    "properties": json.loads(event_properties(name, rng)),
                    "message_id": f"{tag}-{r}-{i}",
                }
            )
        bodies.append(json.dumps({"events": events}).encode())
    return bodies


def send_paced(
    port: int,
    headers: dict,
    bodies: list[bytes],
    per_second: float,
    clients: int,
    stop: threading.Event,
    outcome: dict,
) -> None:
    """Send body k at start + k / per_second (late ones go at once); stop when told."""
    next_index = itertools.count()
    accepted, statuses, errors = [], [], []
    began = time.perf_counter()

    def client() -> None:
        connection = http.client.HTTPConnection(HOST, port, timeout=REQUEST_TIMEOUT_SECONDS)
        try:
            for index in next_index:
                if index >= len(bodies) or stop.is_set():
                    break
                delay = began + index / per_second - time.perf_counter()
                if delay > 0 and stop.wait(delay):
                    break
                connection.request("POST", EVENTS_PATH, body=bodies[index], headers=headers)
                response = connection.getresponse()
                answer = response.read()
                statuses.append(response.status)
                if response.status == 200:
                    accepted.append(json.loads(answer)["accepted"])
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    outcome.update(
        seconds=time.perf_counter() - began,
        accepted=sum(accepted),
        requests=len(statuses),
        failed=sum(s != 200 for s in statuses),
        errors=[repr(e) for e in errors],
    )


def send_probes(port: int, headers: dict, tag: str, count: int, probes: Probes) -> None:
    connection = http.client.HTTPConnection(HOST, port, timeout=REQUEST_TIMEOUT_SECONDS)
    began = time.perf_counter()
    try:
        for n in range(count):
            delay = began + n / PROBES_PER_SECOND - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            key = f"probe-{tag}-{n}"
            body = json.dumps(
                {"external_id": key, "name": "probe", "message_id": f"probe-{tag}-{n}"}
            ).encode()
            probes.sent[key] = time.perf_counter()
            connection.request("POST", EVENTS_PATH, body=body, headers=headers)
            response = connection.getresponse()
            answer = response.read()
            if response.status != 200 or json.loads(answer).get("accepted") != 1:
                probes.failures.append(f"{key}: {response.status} {answer[:200]!r}")
                continue
            probes.answered[key] = time.perf_counter()
    finally:
        connection.close()


def watch_memberships(ctx, segment_id: int, probes: Probes, done: threading.Event) -> None:
    """Poll for the probes' memberships; a row found by a query was committed by the time
    that query started, so the query's start is when it is counted as seen."""
    with ctx.database.connect(autocommit=True) as conn:
        while not done.is_set():
            polled_at = time.perf_counter()
            # By name, not "rows after the last id seen": ids are taken at INSERT, and two
            # workers' transactions may commit in the other order.
            waiting = [key for key in list(probes.sent) if key not in probes.seen]
            if waiting:
                rows = conn.execute(
                    "SELECT c.external_id FROM segments_segmentmembership m "
                    "JOIN contacts_contact c ON c.id = m.contact_id "
                    "WHERE m.segment_id = %s AND c.workspace_id = %s AND c.external_id = ANY(%s)",
                    [segment_id, ctx.workspace_id, waiting],
                ).fetchall()
                for (external_id,) in rows:
                    probes.seen[external_id] = polled_at
            done.wait(max(0.0, POLL_SECONDS - (time.perf_counter() - polled_at)))


def backlog_keys(ctx) -> tuple[str, str]:
    """The dirty set and the scheduled flag as the server and the worker name them: under
    their CACHE_KEY_PREFIX, which this process's settings do not share."""
    from django.conf import settings

    from apps.segments import services

    ours = settings.CACHES["default"]["KEY_PREFIX"]
    theirs = ctx.server.env.get("CACHE_KEY_PREFIX", ours)
    keys = services._dirty_key(ctx.workspace_id), services._scheduled_key(ctx.workspace_id)
    return tuple(theirs + key.removeprefix(ours) for key in keys)


def sample_queue(ctx, stop: threading.Event, samples: list) -> None:
    """The backlog: contacts waiting in the dirty set, and tasks waiting in Celery's queue."""

    redis = redis_client.client()
    dirty_key, _scheduled = backlog_keys(ctx)
    while not stop.wait(QUEUE_SAMPLE_SECONDS):
        samples.append((redis.scard(dirty_key), redis.llen("celery")))


def probe_run(ctx, segment_id: int, seconds: int, tag: str, load: bool, contact_count: int) -> dict:
    headers = bearer(ctx.api_key)
    probes = Probes()
    done, stop_load, stop_sampling = threading.Event(), threading.Event(), threading.Event()
    background: dict = {}
    queue: list[tuple[int, int]] = []
    watcher = threading.Thread(
        target=watch_memberships, args=(ctx, segment_id, probes, done), daemon=True
    )
    sampler = threading.Thread(target=sample_queue, args=(ctx, stop_sampling, queue), daemon=True)
    loader = None
    if load:
        # Enough for the whole probe run; the load stops when the probes do.
        bodies = background_bodies(contact_count, seconds + 10, tag)
        loader = threading.Thread(
            target=send_paced,
            args=(
                ctx.server.port,
                headers,
                bodies,
                BACKGROUND_EVENTS_PER_SECOND / BACKGROUND_BATCH,
                BACKGROUND_CLIENTS,
                stop_load,
                background,
            ),
            daemon=True,
        )
    watcher.start()
    sampler.start()
    if loader:
        loader.start()
        time.sleep(2)  # probes start once the load is steady
    send_probes(ctx.server.port, headers, tag, int(seconds * PROBES_PER_SECOND), probes)
    stop_load.set()
    if loader:
        loader.join(timeout=REQUEST_TIMEOUT_SECONDS)
    stop_sampling.set()
    deadline = time.perf_counter() + PROBE_TIMEOUT_SECONDS
    while len(probes.seen) < len(probes.answered) and time.perf_counter() < deadline:
        time.sleep(0.1)
    done.set()
    watcher.join()
    sampler.join()
    latencies = probes.latencies()
    if not latencies:
        raise BenchError(f"{tag}: no probe entered its segment ({probes.failures[:1]})")
    result = latency_summary(
        len(probes.answered), probes.failures, latencies, probes.latencies(since_answer=False)
    )
    result |= {
        "dirty_contacts_max": max((d for d, _q in queue), default=0),
        "dirty_contacts_mean": round(statistics.fmean(d for d, _q in queue), 1) if queue else 0,
        "queued_tasks_max": max((q for _d, q in queue), default=0),
    }
    if load:
        result["background"] = background_summary(background)
    return result


def latency(ctx, data: dict, seconds: int) -> dict:
    """The probe segment beside the reference ones (every change re-evaluates them all)."""
    from apps.accounts.models import Workspace
    from apps.segments import services
    from apps.segments.models import Segment

    workspace = Workspace.objects.get(pk=ctx.workspace_id)
    probe = Segment.objects.create(workspace=workspace, name="Probe", slug="probe", rule=PROBE_RULE)
    services.refresh_segment(probe)
    # Contacts dirtied by the warm-up before the worker existed are gone; start clean.
    redis_client.client().delete(*backlog_keys(ctx))
    log_path = ctx.server.log_path.parent / f"{NAME}-worker.log"
    worker = CeleryWorker(ctx.server.env, log_path, LAUNCHER_WORKER_ARGS, ctx.server.cpus).start()
    try:
        ctx.log("latency: warming the worker up")
        probe_run(ctx, probe.pk, 2, "warm", load=False, contact_count=data["contacts"])
        ctx.log(f"latency floor: {seconds} s of probes, no other load")
        floor = probe_run(
            ctx, probe.pk, seconds, "floor", load=False, contact_count=data["contacts"]
        )
        ctx.log(f"  p50 {floor['p50']:.3f} s, p95 {floor['p95']:.3f} s, p99 {floor['p99']:.3f} s")
        ctx.log(f"latency: {seconds} s of probes under {BACKGROUND_EVENTS_PER_SECOND:,} events/s")
        loaded = probe_run(
            ctx, probe.pk, seconds, "load", load=True, contact_count=data["contacts"]
        )
        ctx.log(
            f"  p50 {loaded['p50']:.3f} s, p95 {loaded['p95']:.3f} s, p99 {loaded['p99']:.3f} s;"
            f" background {loaded['background']['events_per_s']:,} events/s"
        )
    finally:
        worker.stop()
    worker_errors = [line for line in log_path.read_text().splitlines() if "ERROR" in line]
    background = loaded["background"]
    passed = (
        loaded["p95"] < LATENCY_TARGET_P95_SECONDS
        and not loaded["missed"]
        and not background["failed_requests"]
        and not background["errors"]
    )
    return {
        "seconds": seconds,
        "probes_per_s": PROBES_PER_SECOND,
        "background_target_per_s": BACKGROUND_EVENTS_PER_SECOND,
        "background_batch": BACKGROUND_BATCH,
        "poll_seconds": POLL_SECONDS,
        "under_load": loaded,
        "floor": floor,
        "p95_ratio": round(loaded["p95"] / floor["p95"], 2) if floor["p95"] > 0 else None,
        "target_p95_seconds": LATENCY_TARGET_P95_SECONDS,
        "pass": passed,
        "worker": "celery worker --concurrency 2 (prefork), one process",
        "worker_errors": worker_errors[:3],
    }


def run(ctx) -> dict:
    scale_name = os.environ.get("SCALE") or "default"
    size = sizes()
    data = generate(ctx, size)
    figures = evaluation(ctx, data, scale_name)
    realtime = latency(ctx, data, size["load_seconds"])
    kept = ("contacts", "events", "consents", "list_members", "load_seconds", "table_mb",
            "postgres")  # fmt: skip
    return {
        "data": {key: data[key] for key in kept},
        "indexes": "the production indexes, in place during COPY; VACUUM ANALYZE after",
        "evaluation": figures,
        "latency": realtime,
    }
