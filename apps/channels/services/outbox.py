"""The outbox: a message is a row first (queued, in the transaction that caused it), then a
worker claims it, checks the policies, renders it and sends it, once.

Exactly once: the idempotency key is unique per workspace, so one cause makes one row; a
worker claims rows with `FOR UPDATE SKIP LOCKED`, so two workers never hold the same row;
and each send is recorded by its own statement right after the provider accepted it. A
worker killed mid-batch leaves its unsent rows `sending`; the lease sweeper returns them
to the queue once their lease ends. The one window left is a kill between the provider's
acceptance and that statement's commit (docs/delivery.md).
"""

import datetime as dt
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.accounts.models import Workspace
from apps.channels import providers
from apps.channels.choices import ChannelType, MessageEventKind, MessageStatus
from apps.channels.models import Channel, Message, Template, TemplateVersion
from apps.channels.services import policy
from apps.channels.services.rendering import render_message
from apps.channels.services.scope import message_scopes
from apps.contacts.models import Contact
from orchestra import redis_client

log = logging.getLogger(__name__)

SEND_BATCH = 200  # messages claimed at a time by one worker
MAX_ATTEMPTS = 5  # a transient failure is retried this many times in all
RETRY_BASE_SECONDS = 30  # then 30 s, 60 s, 120 s, ...
RETRY_MAX_SECONDS = 3600
SEND_TASK_SECONDS = 60  # one task sends for at most this long, then queues its successor
RATE_WAIT_MAX_SECONDS = 1.0  # a rate-limited channel waits this long at most, then defers
# A batch stops starting sends this long before its lease ends (a quarter of a short lease):
# one send (connect, SMTP timeout) must fit in it. See docs/delivery.md.
LEASE_MARGIN_SECONDS = 60
# Records of sends wait for the disk at least this often (see RECORD_SQL): a crash of
# PostgreSQL itself may repeat at most the sends of this last stretch.
RECORD_DURABLE_EVERY_SECONDS = 0.05


class NoChannel(Exception):
    """The workspace has no active channel of the type the template is for."""


def default_channel(workspace: Workspace, channel_type: str) -> Channel | None:
    """The workspace's default channel of a type. A workspace without any email channel
    gets one that sends with this server's email settings, so a first send needs no setup."""
    channels = Channel.objects.for_workspace(workspace).filter(type=channel_type, is_active=True)
    channel = channels.order_by("-is_default", "pk").first()
    if channel is None and channel_type == ChannelType.EMAIL:
        channel = ensure_server_email_channel(workspace)
    return channel


def ensure_server_email_channel(workspace: Workspace) -> Channel | None:
    if Channel.objects.for_workspace(workspace).filter(type=ChannelType.EMAIL).exists():
        return None
    channel, _created = Channel.objects.get_or_create(
        workspace=workspace,
        name=_("Email"),
        defaults={"type": ChannelType.EMAIL, "provider": "server", "is_default": True},
    )
    return channel


@dataclass
class QueuedMessage:
    message: Message
    created: bool  # False: the idempotency key had been used, nothing new was queued


@dataclass
class MessageRequest:
    """One message to queue (queue_messages): what queue_message takes, as one item."""

    contact: Contact
    template: Template
    idempotency_key: str
    channel: Channel | None = None  # None: the workspace's default for the template's type
    context: dict | None = None
    journey_id: int | None = None
    node_id: str = ""
    priority: int = 0
    due_at: dt.datetime | None = None


def queue_message(
    contact: Contact,
    template: Template,
    idempotency_key: str,
    *,
    channel: Channel | None = None,
    context: dict | None = None,
    journey_id: int | None = None,
    node_id: str = "",
    priority: int = 0,
    due_at: dt.datetime | None = None,
) -> QueuedMessage:
    """Queue one message, in the caller's transaction; sent once it commits.

    The same idempotency key a second time answers the first message and queues nothing.
    """
    request = MessageRequest(
        contact=contact,
        template=template,
        idempotency_key=idempotency_key,
        channel=channel,
        context=context,
        journey_id=journey_id,
        node_id=node_id,
        priority=priority,
        due_at=due_at,
    )
    return queue_messages(contact.workspace, [request])[0]


# One statement for any number of messages: each pinned to its template's current version,
# and an idempotency key already used (before, or earlier in the same list) queues nothing.
QUEUE_SQL = """
WITH versions AS (
    SELECT DISTINCT ON (template_id) template_id, id
    FROM channels_templateversion
    WHERE template_id = ANY(%(templates)s)
    ORDER BY template_id, number DESC
)
INSERT INTO channels_message (workspace_id, contact_id, channel_id, template_version_id,
    idempotency_key, status, reason, priority, context, journey_id, node_id, recipient,
    subject, links, provider_message_id, attempts, due_at, created_at)
SELECT %(workspace)s, r.contact_id, r.channel_id, v.id, r.idempotency_key, 'queued', '',
       r.priority, r.context, r.journey_id, r.node_id, '', '', '[]'::jsonb, '', 0,
       COALESCE(r.due_at, %(now)s), %(now)s
FROM jsonb_to_recordset(%(rows)s::jsonb) AS r(n int, contact_id bigint, channel_id bigint,
     template_id bigint, idempotency_key varchar, priority smallint, context jsonb,
     journey_id bigint, node_id varchar, due_at timestamptz)
LEFT JOIN versions v ON v.template_id = r.template_id
ORDER BY r.n
ON CONFLICT (workspace_id, idempotency_key) DO NOTHING
RETURNING id, idempotency_key, template_version_id
"""


def queue_messages(workspace: Workspace, requests: list[MessageRequest]) -> list[QueuedMessage]:
    """Queue many messages of one workspace in one statement, in the caller's transaction;
    answers a QueuedMessage for each request, in order. Each is what queue_message would
    have made of it: the default channel for its template's type when it names none
    (NoChannel, and nothing queued, when there is none), pinned to the template's current
    version, and an idempotency key used before answers the first message, queuing
    nothing. Consent, suppression, pressure and quiet hours are checked at send time."""
    if not requests:
        return []
    defaults: dict[str, Channel | None] = {}
    channels, rows = [], []
    for n, request in enumerate(requests):
        channel = request.channel
        if channel is None:
            kind = request.template.channel
            if kind not in defaults:
                defaults[kind] = default_channel(workspace, kind)
            channel = defaults[kind]
        if channel is None or channel.type != request.template.channel:
            raise NoChannel(
                _("No active %(type)s channel in this workspace.")
                % {"type": request.template.channel}
            )
        if workspace.pk != request.contact.workspace_id or not (
            workspace.pk == request.template.workspace_id == channel.workspace_id
        ):
            raise ValueError("A message's contact, template and channel are the workspace's.")
        channels.append(channel)
        rows.append(
            {
                "n": n,
                "contact_id": request.contact.pk,
                "channel_id": channel.pk,
                "template_id": request.template.pk,
                "idempotency_key": request.idempotency_key,
                "priority": request.priority,
                "context": request.context or {},
                "journey_id": request.journey_id,
                "node_id": request.node_id,
                "due_at": request.due_at.isoformat() if request.due_at else None,
            }
        )
    now = timezone.now()
    params = {
        "workspace": workspace.pk,
        "templates": sorted({request.template.pk for request in requests}),
        "now": now,
        "rows": json.dumps(rows),
    }
    with connection.cursor() as cursor:
        cursor.execute(QUEUE_SQL, params)
        inserted = {key: (pk, version_id) for pk, key, version_id in cursor.fetchall()}
    earlier = {request.idempotency_key for request in requests} - inserted.keys()
    messages: dict[str, Message] = {}
    if earlier:
        messages = {
            message.idempotency_key: message
            for message in Message.objects.filter(workspace=workspace, idempotency_key__in=earlier)
        }
    answers = []
    for request, channel in zip(requests, channels, strict=True):
        key = request.idempotency_key
        if key in messages:  # queued before, or by an earlier request of this list
            answers.append(QueuedMessage(messages[key], created=False))
            continue
        pk, version_id = inserted[key]
        message = Message(
            pk=pk,
            workspace=workspace,
            contact=request.contact,
            channel=channel,
            template_version_id=version_id,
            idempotency_key=key,
            status=MessageStatus.QUEUED,
            priority=request.priority,
            context=request.context or {},
            journey_id=request.journey_id,
            node_id=request.node_id,
            due_at=request.due_at or now,
            created_at=now,
        )
        message._state.adding = False
        messages[key] = message
        answers.append(QueuedMessage(message, created=True))
    if inserted:
        transaction.on_commit(wake_senders, robust=True)
    return answers


def wake_senders() -> None:
    """Have a worker send what is due now (at most one such task waits at a time)."""
    from apps.channels.tasks import send_due_messages_task

    redis_client.schedule_once("send-messages", send_due_messages_task)


# Sending ---------------------------------------------------------------------------------

CLAIM_SQL = """
UPDATE channels_message SET status = 'sending', lease_until = %s, attempts = attempts + 1
WHERE id IN (
    SELECT id FROM channels_message
    WHERE status = 'queued' AND due_at <= %s
    ORDER BY due_at
    LIMIT %s
    FOR UPDATE SKIP LOCKED
)
RETURNING id
"""

# One statement per outcome, in autocommit, sent the moment the outcome is known: once it
# reaches PostgreSQL it commits even if this worker dies that instant. Most commit without
# waiting for the disk (`synchronous_commit` off for that transaction alone: visible at once,
# lost only if PostgreSQL itself crashes before its WAL writer flushes); one at least every
# RECORD_DURABLE_EVERY_SECONDS waits, and with it every record before it is on disk.
RECORD_SQL = """
WITH durability AS (
    SELECT set_config('synchronous_commit',
                      COALESCE(%(commit)s, current_setting('synchronous_commit')), true)
), changed AS (
    UPDATE channels_message
    SET status = %(status)s, reason = %(reason)s, due_at = %(due_at)s, lease_until = NULL,
        attempts = attempts - %(uncount)s,
        sent_at = COALESCE(%(sent_at)s, sent_at),
        provider_message_id = COALESCE(%(provider_id)s, provider_message_id),
        recipient = COALESCE(%(recipient)s, recipient),
        subject = COALESCE(%(subject)s, subject),
        links = COALESCE(%(links)s::jsonb, links)
    WHERE id = %(id)s AND status = 'sending'
    RETURNING id
)
INSERT INTO channels_messageevent (message_id, kind, detail, at)
SELECT id, %(kind)s, %(reason)s, %(now)s FROM changed, durability
"""


def send_due_messages(
    seconds: float = SEND_TASK_SECONDS, on_full_batch: Callable[[], None] | None = None
) -> tuple[int, bool]:
    """Claim and send due messages for up to `seconds`; answers (messages handled,
    whether due messages were left over for a successor task). `on_full_batch` is called
    when a claim comes back full: more may be due than one worker sends alone."""
    deadline = time.monotonic() + seconds
    handled = 0
    while True:
        claimed_at = time.monotonic()  # no later than the lease's start
        ids = claim_due(SEND_BATCH)
        if not ids:
            return handled, False
        if len(ids) == SEND_BATCH and on_full_batch is not None:
            on_full_batch()
        send_batch(ids, lease_deadline(claimed_at))
        handled += len(ids)
        if time.monotonic() > deadline:
            return handled, True


def claim_due(limit: int) -> list[int]:
    now = timezone.now()
    lease_until = now + dt.timedelta(seconds=settings.MESSAGE_LEASE_SECONDS)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(CLAIM_SQL, [lease_until, now, limit])
        return [row[0] for row in cursor.fetchall()]


def lease_deadline(claimed_at: float) -> float:
    """The monotonic time after which a batch claimed at `claimed_at` starts no more sends:
    a little before its lease ends, so the sweeper never hands a message to another worker
    while this one may still send it."""
    lease = settings.MESSAGE_LEASE_SECONDS
    return claimed_at + lease - min(LEASE_MARGIN_SECONDS, lease / 4)


def send_batch(ids: list[int], deadline: float | None = None) -> None:
    """Decide, render and send claimed messages, recording each outcome as it happens.
    After `deadline` (time.monotonic()) no send starts: the rest go back to the queue."""
    messages = list(
        Message.objects.filter(pk__in=ids, status=MessageStatus.SENDING)
        .select_related("contact")
        .order_by("-priority", "due_at", "pk")
    )
    if not messages:
        return
    _share_channels_and_versions(messages)
    now = timezone.now()
    decisions = policy.decide(messages, now)
    to_send = []
    for message in messages:
        decision = decisions[message.pk]
        if decision.action == policy.DROP:
            record(message, MessageStatus.DROPPED, MessageEventKind.DROPPED, decision.reason)
        elif decision.action == policy.DEFER:
            record(message, MessageStatus.QUEUED, MessageEventKind.DEFERRED, decision.reason,
                   due_at=decision.until, uncount=True)  # fmt: skip
        else:
            to_send.append((message, decision.recipient))
    scopes = message_scopes([message for message, _recipient in to_send])
    by_channel: dict[int, list] = {}
    for message, recipient in to_send:
        by_channel.setdefault(message.channel_id, []).append((message, recipient))
    for group in by_channel.values():
        _send_group(group, scopes, deadline)


def _share_channels_and_versions(messages: list[Message]) -> None:
    """A batch has few channels and template versions: each is loaded once and shared by
    its messages (a version's content is parsed and cached by its id, see rendering)."""
    channels = Channel.objects.select_related("workspace").in_bulk({m.channel_id for m in messages})
    versions = TemplateVersion.objects.in_bulk({m.template_version_id for m in messages})
    for message in messages:
        message.channel = channels[message.channel_id]
        message.template_version = versions[message.template_version_id]


def _send_group(group: list, scopes: dict, deadline: float | None) -> None:
    channel = group[0][0].channel
    provider = providers.for_channel(channel)
    try:
        provider.open()
    except providers.SendError as error:
        for message, _recipient in group:
            fail(message, error)
        return
    try:
        for index, (message, recipient) in enumerate(group):
            if deadline is not None and time.monotonic() > deadline:
                for later, _r in group[index:]:
                    reason = _("The batch's lease ran out before it was sent.")
                    record(later, MessageStatus.QUEUED, MessageEventKind.RELEASED, reason,
                           uncount=True)  # fmt: skip
                return
            wait = take_rate_token(channel)
            if wait:
                due_at = timezone.now() + dt.timedelta(seconds=wait)
                for later, _r in group[index:]:
                    reason = _("Over the channel's rate limit.")
                    record(later, MessageStatus.QUEUED, MessageEventKind.DEFERRED, reason,
                           due_at=due_at, uncount=True)  # fmt: skip
                return
            _send_one(provider, message, recipient, scopes[message.pk])
    finally:
        provider.close()


def _send_one(provider, message: Message, recipient: str, scope: dict) -> None:
    try:
        rendered = render_message(message.template_version, scope, message.pk, message.channel.type)
    except Exception as error:
        log.warning("Message %s did not render: %s", message.pk, error)
        fail(
            message,
            providers.PermanentError(_("The template did not render: %(e)s") % {"e": error}),
        )
        return
    outgoing = providers.Outgoing(
        message_id=message.pk,
        contact_id=message.contact_id,
        recipient=recipient,
        subject=rendered.subject,
        html=rendered.html,
        text=rendered.text,
        body=rendered.body,
        headers=rendered.headers,
        data={"context": message.context, "contact": scope.get("contact", {})},
    )
    try:
        provider_id = provider.send(outgoing)
    except providers.SendError as error:
        fail(message, error)
        return
    record(
        message,
        MessageStatus.SENT,
        MessageEventKind.SENT,
        "",
        sent_at=timezone.now(),
        provider_id=provider_id or "",
        recipient=recipient,
        subject=rendered.subject,
        links=rendered.links,
    )


def fail(message: Message, error: "providers.SendError") -> None:
    """A permanent error, or the last attempt, fails the message; else a retry later."""
    reason = str(error.message)[:300]
    if error.permanent or message.attempts >= MAX_ATTEMPTS:
        record(message, MessageStatus.FAILED, MessageEventKind.FAILED, reason)
        return
    delay = min(RETRY_BASE_SECONDS * 2 ** (message.attempts - 1), RETRY_MAX_SECONDS)
    record(message, MessageStatus.QUEUED, MessageEventKind.RETRY, reason,
           due_at=timezone.now() + dt.timedelta(seconds=delay))  # fmt: skip


def record(message: Message, status: str, kind: str, reason: str, *, due_at=None,
           uncount: bool = False, sent_at=None, provider_id=None, recipient=None,
           subject=None, links=None) -> bool:  # fmt: skip
    """Move a claimed message on, with its history line, in one statement."""
    now = timezone.now()
    params = {
        "id": message.pk,
        "status": status,
        "kind": kind,
        "reason": reason[:300],
        "due_at": due_at or message.due_at,
        "uncount": 1 if uncount else 0,
        "sent_at": sent_at,
        "provider_id": provider_id,
        "recipient": recipient,
        "subject": subject[:300] if subject is not None else None,
        "links": json.dumps(links) if links is not None else None,
        "now": now,
        "commit": "off",
    }
    global _last_durable
    durable_at = time.monotonic()
    if durable_at - _last_durable >= RECORD_DURABLE_EVERY_SECONDS:
        params["commit"] = None  # the server's own setting: on, unless told otherwise
    # Straight on psycopg with the parameters bound by the server (prepared once the
    # connection has run it a few times): quoting thirteen parameters into the text for each
    # message, as Django's cursors do, took more CPU than the rest of recording.
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(RECORD_SQL, params)
        recorded = cursor.rowcount == 1
    if params["commit"] is None:
        _last_durable = durable_at
    return recorded


_last_durable = 0.0  # time.monotonic() of this process's last record that waited for disk


def release_expired_leases() -> int:
    """Messages left `sending` by a worker that died go back to the queue."""
    now = timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            """
            WITH released AS (
                UPDATE channels_message SET status = 'queued', lease_until = NULL
                WHERE status = 'sending' AND lease_until < %s
                RETURNING id
            )
            INSERT INTO channels_messageevent (message_id, kind, detail, at)
            SELECT id, %s, %s, %s FROM released
            """,
            [now, MessageEventKind.RELEASED, _("The worker sending it stopped."), now],
        )
        released = cursor.rowcount
    if released:
        wake_senders()
    return released


def take_rate_token(channel: Channel) -> float:
    """0 when the channel may send now; else how many seconds until it may, if that is
    longer than a worker waits. A token bucket in Redis, shared by every worker."""
    if not channel.rate_per_second:
        return 0.0
    while True:
        wait = float(
            _token_bucket()(
                keys=[redis_client.key("rate", channel.pk)],
                args=[channel.rate_per_second, time.time()],
            )
        )
        if wait <= 0:
            return 0.0
        if wait > RATE_WAIT_MAX_SECONDS:
            return wait
        time.sleep(wait)


# Lua, so that taking a token is atomic across workers: answers 0 (taken) or the wait.
RATE_LIMIT_LUA = """
local rate = tonumber(ARGV[1])
local now = tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or rate
local at = tonumber(state[2]) or now
tokens = math.min(rate, tokens + (now - at) * rate)
local wait = 0
if tokens >= 1 then
    tokens = tokens - 1
else
    wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'at', now)
redis.call('EXPIRE', KEYS[1], 60)
return tostring(wait)
"""


def _token_bucket():
    return redis_client.client().register_script(RATE_LIMIT_LUA)
