"""Sending: personalised emails queued in the outbox (COPY into channels_message, for
subscribed contacts), sent by real Celery worker processes (1, then 2) to a local SMTP
server in a process of its own that only counts, beside the floor: a plain smtplib loop
sending as many pre-rendered messages to the same server over one connection (and two such
loops side by side: what the server takes at most).

Every run is checked for exactly-once: the server counts distinct Message-ID headers and
duplicates, and the database must say sent, with one `sent` history line, for every row.
Then `outbox.send_due_messages` runs in this process under cProfile;
BENCH_PROFILE_OUT=<file> writes the whole profile there.
"""

import cProfile
import io
import json
import multiprocessing
import os
import pstats
import re
import smtplib
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from bench.harness import (
    HOST,
    BenchError,
    CeleryWorker,
    copy_data,
    figure,
    free_port,
    prefork_args,
)

NAME = "send_messages"
TITLE = "Sending: personalised email through the outbox"
# Run alone (`python -m bench send_messages`) it has a database of its own.
DATABASE_NAME = "orchestra_send_bench"
WORKER_PROCESSES = (1, 2)
TARGET_RATE = 2_000  # messages/s with 2 worker processes on 2 cores
TARGET_RATIO = 0.5  # of the plain smtplib loop's rate
PROFILE_MESSAGES = 2_000
# 100,000 messages take minutes per worker setting: one round of those is enough.
ONE_ROUND_FROM = 20_000
# Plain loops side by side, to show how many messages a second the SMTP server takes at most.
SERVER_CEILING_CONNECTIONS = 2
VIP_EVERY = 10  # one contact in ten is in the segment "vip" (a conditional block)
STALL_SECONDS = 60  # no message arriving at the server for this long fails the run
POLL_SECONDS = 0.05
SENDER = "news@shop.example.com"

CONTACT_COLUMNS = ["workspace_id", "external_id", "email", "first_name", "last_name",
                   "timezone", "locale", "attributes", "created_at", "updated_at"]  # fmt: skip
CONSENT_COLUMNS = ["workspace_id", "contact_id", "channel", "status", "source", "updated_at"]
MEMBER_COLUMNS = ["workspace_id", "segment_id", "contact_id", "entered_at"]
MESSAGE_COLUMNS = ["workspace_id", "contact_id", "channel_id", "template_version_id",
                   "idempotency_key", "status", "reason", "priority", "context", "node_id",
                   "recipient", "subject", "links", "provider_message_id", "attempts",
                   "due_at", "created_at"]  # fmt: skip
FIRST_NAMES = ["Anna", "Bo", "Camilla", "Dan", "Emma", "Frederik", "Greta", "Henrik", "Ida"]
LAST_NAMES = ["Jensen", "Nielsen", "Hansen", "Andersson", "Johansson", "Larsen", "Berg"]
TIMEZONES = ["Europe/Copenhagen", "Europe/Stockholm", "Europe/Oslo", "Europe/Berlin"]
PLANS = ["free", "pro", "team"]

# A newsletter as marketers write them: a style sheet to inline, a preheader, personal
# fields with defaults, a block for one segment, four tracked links and a mailto.
TEMPLATE = {
    "slug": "weekly-news",
    "name": "Weekly news",
    "channel": "email",
    "subject": "{{ contact.first_name | default: 'Hello' }}, this week's picks for you",
    "preheader": "New arrivals in {{ contact.attributes.plan | default: 'your' }} plan",
    "html": """<html><head><style>
body { font-family: Helvetica, Arial, sans-serif; color: #222; background: #f6f6f6 }
.wrap { max-width: 600px; margin: 0 auto; background: #fff; padding: 24px }
h1 { font-size: 22px; color: #111 } p { line-height: 1.5; font-size: 15px }
.button { display: inline-block; padding: 10px 18px; background: #0a7; color: #fff }
.muted { color: #888; font-size: 12px }
</style></head><body><div class="wrap">
<h1>Hi {{ contact.first_name | default: 'there' }}!</h1>
<p>Here is what is new this week, picked for a {{ contact.attributes.plan }} member.</p>
{% if contact.segments contains "vip" %}<p><strong>As a VIP you get early access:</strong>
<a href="https://shop.example.com/vip?c={{ contact.id }}">your private sale</a>.</p>{% endif %}
<p><a class="button" href="https://shop.example.com/new">See the new arrivals</a></p>
<p>Also: <a href="https://shop.example.com/sale">the sale</a> and
<a href="https://blog.example.com/guide">our sizing guide</a>.</p>
<p class="muted">Questions? <a href="mailto:help@shop.example.com">Write to us</a>.</p>
</div></body></html>""",
}


# -- the SMTP server -------------------------------------------------------------------------

MESSAGE_ID_RE = re.compile(rb"^Message-ID:\s*(\S+)", re.IGNORECASE | re.MULTILINE)


def serve_counting_sink(port: int, received, distinct, ready) -> None:
    """An aiosmtpd server that only counts messages and distinct Message-IDs (in shared
    memory, read by the benchmark). Runs in a process of its own."""
    from aiosmtpd.controller import Controller

    seen: set[bytes] = set()

    class Counting:
        async def handle_DATA(self, server, session, envelope):
            match = MESSAGE_ID_RE.search(envelope.content)
            if match and match.group(1) not in seen:
                seen.add(match.group(1))
                distinct.value += 1
            received.value += 1
            return "250 OK"

        async def handle_RSET(self, server, session, envelope):
            return "250 OK"

    controller = Controller(Counting(), hostname=HOST, port=port)
    controller.start()
    ready.set()
    threading.Event().wait()  # until the benchmark terminates this process


class Sink:
    """The counting SMTP server's process."""

    def __init__(self):
        context = multiprocessing.get_context("spawn")
        self.port = free_port()
        self.received = context.Value("q", 0, lock=False)
        self.distinct = context.Value("q", 0, lock=False)
        ready = context.Event()
        self.process = context.Process(
            target=serve_counting_sink,
            args=(self.port, self.received, self.distinct, ready),
            daemon=True,
        )
        self.process.start()
        if not ready.wait(30):
            raise BenchError("the SMTP sink did not start")

    def reset(self) -> None:
        """Counts start from zero; Message-IDs seen before still count as duplicates."""
        self.received.value = 0
        self.distinct.value = 0

    def wait_for(self, count: int, what: str) -> None:
        last, last_change = -1, time.monotonic()
        while self.received.value < count:
            if self.received.value != last:
                last, last_change = self.received.value, time.monotonic()
            elif time.monotonic() - last_change > STALL_SECONDS:
                raise BenchError(f"{what}: the server got {last:,} of {count:,} and no more")
            time.sleep(POLL_SECONDS)

    def stop(self) -> None:
        self.process.terminate()
        self.process.join(30)


# -- the data ----------------------------------------------------------------------------------


def copy_rows(conn, table: str, columns: list[str], rows) -> None:
    sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
    with conn.cursor() as cursor, cursor.copy(sql) as copy:
        copy.write(copy_data(rows))


@dataclass
class Setup:
    contact_ids: list[int]
    channel_id: int
    version_id: int
    template_id: int


def generate(ctx, count: int, sink: Sink) -> Setup:
    """Contacts subscribed to email (COPY), a tenth of them in the segment vip, the
    template (through the service, as a marketer saves it) and an SMTP channel."""
    from apps.accounts.models import Workspace
    from apps.channels.models import Channel
    from apps.channels.services.templates import create_template, current_version
    from apps.segments.models import Segment

    workspace = Workspace.objects.get(pk=ctx.workspace_id)
    ctx.reset_contacts()
    now = datetime.now(UTC).isoformat()
    rows = (
        (ctx.workspace_id, f"c-{n}", f"c{n}@example.com", FIRST_NAMES[n % len(FIRST_NAMES)],
         LAST_NAMES[n % len(LAST_NAMES)], TIMEZONES[n % len(TIMEZONES)], "en",
         json.dumps({"plan": PLANS[n % len(PLANS)]}), now, now)
        for n in range(count)
    )  # fmt: skip
    with ctx.database.connect() as conn:
        copy_rows(conn, "contacts_contact", CONTACT_COLUMNS, rows)
        conn.commit()
        contact_ids = [row[0] for row in conn.execute(
            "SELECT id FROM contacts_contact WHERE workspace_id = %s ORDER BY id",
            [ctx.workspace_id])]  # fmt: skip
        copy_rows(conn, "contacts_consent", CONSENT_COLUMNS,
                  ((ctx.workspace_id, pk, "email", "subscribed", "bench", now)
                   for pk in contact_ids))  # fmt: skip
        conn.commit()
    segment = Segment.objects.create(
        workspace=workspace,
        name="VIP",
        slug="vip",
        rule={"attr": "plan", "op": "eq", "value": "vip"},
    )
    with ctx.database.connect() as conn:
        copy_rows(conn, "segments_segmentmembership", MEMBER_COLUMNS,
                  ((ctx.workspace_id, segment.pk, pk, now)
                   for pk in contact_ids[::VIP_EVERY]))  # fmt: skip
        conn.commit()
    template, problems = create_template(workspace, TEMPLATE)
    if problems:
        raise BenchError(f"the benchmark's template has problems: {problems}")
    channel = Channel.objects.create(
        workspace=workspace,
        name="Bench SMTP",
        type="email",
        provider="smtp",
        config={"host": HOST, "port": sink.port, "use_tls": False, "from_email": SENDER},
        is_default=True,
    )
    ctx.database.vacuum_analyze("contacts_contact", "contacts_consent",
                                "segments_segmentmembership")  # fmt: skip
    return Setup(contact_ids, channel.pk, current_version(template).pk, template.pk)


def queue(ctx, setup: Setup, contact_ids: list[int], tag: str) -> float:
    """A fresh outbox of one queued message per contact, by COPY; answers its seconds."""
    ctx.database.execute("TRUNCATE channels_messageevent, channels_message CASCADE")
    now = datetime.now(UTC).isoformat()
    rows = [
        (ctx.workspace_id, pk, setup.channel_id, setup.version_id, f"{tag}:{pk}", "queued", "",
         0, "{}", "", "", "", "[]", "", 0, now, now)
        for pk in contact_ids
    ]  # fmt: skip
    began = time.perf_counter()
    with ctx.database.connect() as conn:
        copy_rows(conn, "channels_message", MESSAGE_COLUMNS, rows)
        conn.commit()
    seconds = time.perf_counter() - began
    ctx.database.vacuum_analyze("channels_message")
    return seconds


# -- ours: Celery workers ------------------------------------------------------------------------


SENT_RE = re.compile(
    r"INFO/([\w-]+)\] Task apps\.channels\.tasks\.send_due_messages_task\[[^\]]+\] "
    r"succeeded in [\d.]+s: (\d+)"
)


def sent_by_process(worker: CeleryWorker) -> dict[str, int]:
    """Messages each pool process sent, from what its send tasks answered."""
    sent: dict[str, int] = {}
    for process, handled in SENT_RE.findall(worker.log_tail(1 << 24)):
        if int(handled):
            sent[process] = sent.get(process, 0) + int(handled)
    return sent


def check_exactly_once(ctx, sink: Sink, count: int, what: str) -> None:
    statuses = dict(
        ctx.database.execute("SELECT status, count(*) FROM channels_message GROUP BY 1")
    )
    sent_lines = ctx.database.count("channels_messageevent", "kind = 'sent'")
    twice = ctx.database.execute(
        "SELECT count(*) FROM (SELECT message_id FROM channels_messageevent WHERE kind = 'sent' "
        "GROUP BY message_id HAVING count(*) > 1) AS t"
    )[0][0]
    if statuses != {"sent": count} or sent_lines != count or twice:
        raise BenchError(f"{what}: statuses {statuses}, {sent_lines} sent lines, {twice} twice")
    if sink.received.value != count or sink.distinct.value != count:
        raise BenchError(
            f"{what}: the server got {sink.received.value:,} messages, "
            f"{sink.distinct.value:,} distinct, for {count:,}"
        )


def measure_workers(ctx, setup: Setup, sink: Sink, processes: int, tag: str) -> float:
    """Seconds from handing the outbox to idle workers to the last message recorded sent."""
    from orchestra.celery import app

    count = len(setup.contact_ids)
    queue(ctx, setup, setup.contact_ids, tag)
    log_path = ctx.server.log_path.parent / f"{NAME}-worker-{tag}.log"
    worker = CeleryWorker(ctx.server.env, log_path, prefork_args(processes)).start()
    try:
        sink.reset()
        began = datetime.now(UTC)
        # What queue_message's commit does: wake a sender; the senders wake each other
        # while a full batch is due (outbox.send_due_messages).
        app.send_task("apps.channels.tasks.send_due_messages_task")
        sink.wait_for(count, f"{processes} worker processes")
        last_sent = ctx.database.execute("SELECT max(sent_at) FROM channels_message")[0][0]
        while ctx.database.count("channels_message", "status = 'sent'") < count:
            time.sleep(POLL_SECONDS)  # the last records commit just after the server's 250
            last_sent = ctx.database.execute("SELECT max(sent_at) FROM channels_message")[0][0]
    finally:
        worker.stop()
    if worker.errors():
        raise BenchError(f"the worker logged errors: {worker.errors()[:3]}")
    check_exactly_once(ctx, sink, count, f"{processes} worker processes")
    sent_by = sent_by_process(worker)
    if len(sent_by) != processes or sum(sent_by.values()) != count:
        raise BenchError(f"{processes} worker processes: messages sent by each: {sent_by}")
    ctx.log(f"  sent by each process: {', '.join(f'{n:,}' for n in sent_by.values())}")
    return (last_sent - began).total_seconds()


# -- the floor: a plain smtplib loop -------------------------------------------------------------


def prerendered(setup: Setup, count: int):
    """A function of a run's name answering [(recipient, message bytes)], as our pipeline
    makes them, to build before the clock starts: one message rendered for real, its
    recipient and Message-ID changed for each."""
    from django.conf import settings

    from apps.channels.models import Channel, Message, TemplateVersion
    from apps.channels.providers import Outgoing, for_channel
    from apps.channels.services.rendering import render_message
    from apps.channels.services.scope import message_scopes
    from apps.contacts.models import Contact

    contact = Contact.objects.get(pk=setup.contact_ids[1])
    channel = Channel.objects.select_related("workspace").get(pk=setup.channel_id)
    version = TemplateVersion.objects.get(pk=setup.version_id)
    fake = Message(pk=1, contact=contact, channel=channel, template_version=version, context={})
    scope = message_scopes([fake])[1]
    rendered = render_message(version, scope, 1, "email")
    provider = for_channel(channel)
    provider.connection = None
    email = provider.build(
        Outgoing(message_id=1, contact_id=contact.pk, recipient=contact.email,
                 subject=rendered.subject, html=rendered.html, text=rendered.text,
                 headers=rendered.headers)
    )  # fmt: skip
    data = email.message().as_bytes(linesep="\r\n")  # as smtplib sends bytes: unchanged
    message_id = f"<message-1@{settings.MESSAGE_ID_DOMAIN}>".encode()

    def make(run: str) -> list[tuple[str, bytes]]:
        """A Message-ID of its own for each message of each run: the server counts repeats."""
        messages = []
        for n in range(count):
            recipient = f"floor{n}@example.com"
            body = data.replace(contact.email.encode(), recipient.encode())
            body = body.replace(message_id, f"<floor-{run}-{n}@bench>".encode())
            messages.append((recipient, body))
        return messages

    return make


def smtp_loop(port: int, messages: list[tuple[str, bytes]]) -> None:
    smtp = smtplib.SMTP(HOST, port)
    for recipient, data in messages:
        smtp.sendmail(SENDER, [recipient], data)
    smtp.quit()


def measure_floor(sink: Sink, messages: list[tuple[str, bytes]], connections: int = 1) -> float:
    """Seconds for plain smtplib loops to send the messages: one connection (the floor), or
    several in processes of their own (what the SMTP server can take at most)."""
    sink.reset()
    began = time.perf_counter()
    if connections == 1:
        smtp_loop(sink.port, messages)
    else:
        context = multiprocessing.get_context("fork")  # the messages are already in memory
        loops = [context.Process(target=smtp_loop, args=(sink.port, messages[n::connections]))
                 for n in range(connections)]  # fmt: skip
        for loop in loops:
            loop.start()
        for loop in loops:
            loop.join()
    seconds = time.perf_counter() - began
    if sink.received.value != len(messages) or sink.distinct.value != len(messages):
        raise BenchError(f"the floor: the server got {sink.received.value:,} of {len(messages):,}")
    return seconds


# -- where the time goes ---------------------------------------------------------------------------


# The parts of the send path, as (file name ending, function) in cProfile's statistics.
STAGES = [
    ("claim the batch", "services/outbox.py", "claim_due"),
    ("load the batch", "services/outbox.py", "_share_channels_and_versions"),
    ("policies (consent, suppression, quiet hours, pressure)", "services/policy.py", "decide"),
    ("template scopes (contact, segments, event)", "services/scope.py", "message_scopes"),
    ("render: Liquid, CSS inlined, links tracked, text part", "rendering.py", "render_message"),
    ("… of which the text part from the HTML", "rendering.py", "html_to_text"),
    ("provider: the MIME message and SMTP", "providers/email.py", "send"),
    ("… of which Django's MIME message", "core/mail/message.py", "message"),
    ("… of which the MIME message as bytes", "core/mail/message.py", "as_bytes"),
    ("… of which address checks (sanitize_address)", "core/mail/message.py", "sanitize_address"),
    ("… of which SMTP (smtplib sendmail)", "smtplib.py", "sendmail"),
    ("record each outcome", "services/outbox.py", "record"),
]


def run_in_process(ctx, setup: Setup, sink: Sink, count: int, profiler=None) -> tuple[float, float]:
    """outbox.send_due_messages here, on `count` queued messages: (wall, CPU) seconds."""
    from django.db import connections

    from apps.channels.services import outbox

    queue(ctx, setup, setup.contact_ids[:count], f"inline-{time.monotonic_ns()}")
    sink.reset()
    wall, cpu = time.perf_counter(), time.process_time()
    if profiler is not None:
        profiler.enable()
    outbox.send_due_messages()
    if profiler is not None:
        profiler.disable()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    connections.close_all()
    check_exactly_once(ctx, sink, count, "the in-process run")
    return wall, cpu


def profile_send(ctx, setup: Setup, sink: Sink) -> dict:
    """Where a message's time goes: outbox.send_due_messages in this process for
    PROFILE_MESSAGES, timed plainly (wall and CPU), then its parts under cProfile."""
    count = min(PROFILE_MESSAGES, len(setup.contact_ids))
    run_in_process(ctx, setup, sink, count)  # warm: templates parsed, connections open
    wall, cpu = run_in_process(ctx, setup, sink, count)
    profiler = cProfile.Profile()
    profiled, _cpu = run_in_process(ctx, setup, sink, count, profiler)
    stats = pstats.Stats(profiler, stream=io.StringIO()).stats
    if os.environ.get("BENCH_PROFILE_OUT"):  # the whole profile, to read by hand
        with open(os.environ["BENCH_PROFILE_OUT"], "w") as out:
            pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(80)
    stages = []
    for label, path_end, function in STAGES:
        seconds = sum(
            cumulative
            for (path, _line, name), (_cc, _calls, _own, cumulative, _callers) in stats.items()
            if name == function and path.endswith(path_end)
        )
        stages.append({"stage": label, "share": round(seconds / profiled, 3)})
    return {
        "messages": count,
        "wall_us_per_message": round(wall / count * 1e6),
        "cpu_us_per_message": round(cpu / count * 1e6),
        "stages": stages,
    }


def run(ctx) -> dict:
    count = ctx.scale["messages"]
    sink = Sink()
    try:
        ctx.log(f"send: {count:,} subscribed contacts, the template and the channel")
        setup = generate(ctx, count, sink)
        floor_messages = prerendered(setup, count)  # floor_messages(run)
        ours = {processes: [] for processes in WORKER_PROCESSES}
        floor, ceiling = [], []
        rounds = ctx.rounds if count <= ONE_ROUND_FROM else 1
        for round_ in range(rounds):
            ctx.log(f"send round {round_ + 1}/{rounds}")
            floor.append(measure_floor(sink, floor_messages(f"r{round_}-one")))
            ctx.log(f"  plain smtplib loop: {count / floor[-1]:,.0f} messages/s")
            messages = floor_messages(f"r{round_}-side-by-side")
            ceiling.append(measure_floor(sink, messages, SERVER_CEILING_CONNECTIONS))
            del messages  # 100,000 messages are some 350 MB
            ctx.log(
                f"  {SERVER_CEILING_CONNECTIONS} such loops side by side: "
                f"{count / ceiling[-1]:,.0f} messages/s"
            )
            for processes in WORKER_PROCESSES:
                seconds = measure_workers(ctx, setup, sink, processes, f"r{round_}-p{processes}")
                ours[processes].append(seconds)
                ctx.log(f"  {processes} worker process(es): {count / seconds:,.0f} messages/s")
        queue_seconds = queue(ctx, setup, setup.contact_ids, "queue")
        ctx.log(f"profile: {PROFILE_MESSAGES:,} messages through send_due_messages in-process")
        profile = profile_send(ctx, setup, sink)
        ctx.log(
            f"  {profile['wall_us_per_message']} µs a message, "
            f"{profile['cpu_us_per_message']} µs of it CPU in this process"
        )
    finally:
        sink.stop()
    floor_what = "plain smtplib loop, pre-rendered messages, one connection"
    figures = [
        figure(
            "Personalised emails, 1 worker process",
            "messages/s",
            count,
            ours[1],
            floor,
            floor_what,
            note="queued by COPY; from handing the outbox to an idle worker to the last "
            "message recorded sent; every message checked sent exactly once",
        ),
        figure(
            "Personalised emails, 2 worker processes",
            "messages/s",
            count,
            ours[2],
            floor,
            floor_what,
            min_rate=TARGET_RATE,
            min_ratio=TARGET_RATIO,
            note="celery worker --pool prefork --concurrency 2",
        ),
    ]
    return {
        "figures": figures,
        "workers": "celery worker --pool prefork --concurrency 1, then 2 (the benchmark's own "
        "Redis as broker), not pinned: the 2 cores are shared with PostgreSQL and the SMTP "
        "server",
        "rounds": rounds,
        "server_ceiling": {
            "connections": SERVER_CEILING_CONNECTIONS,
            "messages_per_s": round(count / min(ceiling)),
        },
        "queue_seconds": round(queue_seconds, 2),
        "profile": profile,
        "about": (
            f"{count:,} messages, each rendered from Liquid for its contact (segment block, "
            "CSS inlined, 4 links tracked, open pixel, unsubscribe link and headers), sent over "
            "SMTP to an aiosmtpd server in its own process that only counts, and recorded one "
            "by one. The SMTP server and PostgreSQL share the 2 cores with the workers."
        ),
    }
