"""What is checked at send time, always, for a batch of claimed messages at once: the
contact has an address and consents on the channel, the address is not suppressed, the
workspace's contact-pressure limits leave room, and it is not quiet hours for the contact.
"""

import datetime as dt
import zoneinfo
from collections import defaultdict
from dataclasses import dataclass

from django.utils.translation import gettext as _

from apps.channels import providers
from apps.channels.choices import ChannelType, MessageStatus, OverLimitAction
from apps.channels.models import DeliveryPolicy, Message, Suppression
from apps.contacts.choices import ConsentStatus
from apps.contacts.models import Consent

SEND, DEFER, DROP = "send", "defer", "drop"
CONSENTED_CHANNELS = {ChannelType.EMAIL, ChannelType.SMS, ChannelType.PUSH}
DAY, WEEK = dt.timedelta(days=1), dt.timedelta(days=7)


@dataclass(frozen=True)
class Decision:
    action: str
    reason: str = ""
    until: dt.datetime | None = None  # for DEFER
    recipient: str = ""  # for SEND


def policy_for(workspace) -> DeliveryPolicy:
    policy = DeliveryPolicy.objects.filter(workspace=workspace).first()
    return policy or DeliveryPolicy(workspace=workspace)


def decide(messages: list[Message], now: dt.datetime) -> dict[int, Decision]:
    """{message id: decision} for messages of any workspaces, in priority order."""
    decisions: dict[int, Decision] = {}
    by_workspace: dict[int, list[Message]] = defaultdict(list)
    for message in messages:
        by_workspace[message.workspace_id].append(message)
    for group in by_workspace.values():
        decisions.update(_decide_workspace(group, now))
    return decisions


def _decide_workspace(messages: list[Message], now: dt.datetime) -> dict[int, Decision]:
    workspace = messages[0].channel.workspace
    policy = policy_for(workspace)
    decisions: dict[int, Decision] = {}
    recipients: dict[int, str] = {}
    senders: dict[int, providers.Provider] = {}
    for message in messages:
        if not message.channel.is_active:
            decisions[message.pk] = Decision(DROP, _("The channel is switched off."))
            continue
        provider = senders.get(message.channel_id)
        if provider is None:
            provider = senders[message.channel_id] = providers.for_channel(message.channel)
        recipient = provider.recipient(message.contact)
        if not recipient:
            decisions[message.pk] = Decision(DROP, _("The contact has no address on this channel."))
        else:
            recipients[message.pk] = recipient
    waiting = [m for m in messages if m.pk not in decisions]
    consents = _consents(workspace, waiting)
    suppressed = _suppressed(workspace, waiting, recipients)
    for message in waiting:
        kind = message.channel.type
        if kind in CONSENTED_CHANNELS:
            status = consents.get((message.contact_id, kind), ConsentStatus.UNKNOWN)
            if status == ConsentStatus.UNSUBSCRIBED:
                decisions[message.pk] = Decision(
                    DROP, _("The contact unsubscribed from %(c)s.") % {"c": kind}
                )
                continue
            if status != ConsentStatus.SUBSCRIBED and policy.require_opt_in:
                decisions[message.pk] = Decision(
                    DROP, _("The contact has not opted in to %(c)s.") % {"c": kind}
                )
                continue
        reason = suppressed.get((kind, recipients[message.pk]))
        if reason:
            decisions[message.pk] = Decision(
                DROP, _("The address is suppressed (%(r)s).") % {"r": reason}
            )
            continue
        quiet_until = _quiet_until(policy, message.contact, workspace, now)
        if quiet_until:
            decisions[message.pk] = Decision(
                DEFER, _("Quiet hours for the contact."), until=quiet_until
            )
    # Pressure last: only messages that would otherwise go out use up the contact's room.
    candidates = [m for m in waiting if m.pk not in decisions]
    decisions.update(_apply_pressure(policy, candidates, now, set(decisions)))
    for message in candidates:
        decisions.setdefault(message.pk, Decision(SEND, recipient=recipients[message.pk]))
    return decisions


def _consents(workspace, messages) -> dict[tuple[int, str], str]:
    contact_ids = {m.contact_id for m in messages if m.channel.type in CONSENTED_CHANNELS}
    if not contact_ids:
        return {}
    rows = Consent.objects.for_workspace(workspace).filter(contact_id__in=contact_ids)
    return {(c, channel): status for c, channel, status in
            rows.values_list("contact_id", "channel", "status")}  # fmt: skip


def _suppressed(workspace, messages, recipients) -> dict[tuple[str, str], str]:
    addresses = {recipients[m.pk] for m in messages}
    if not addresses:
        return {}
    rows = Suppression.objects.for_workspace(workspace).filter(address__in=addresses)
    return {(kind, address): reason for kind, address, reason in
            rows.values_list("channel_type", "address", "reason")}  # fmt: skip


def contact_timezone(contact, workspace) -> zoneinfo.ZoneInfo:
    for name in (contact.timezone, workspace.timezone, "UTC"):
        try:
            return zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
            continue
    return zoneinfo.ZoneInfo("UTC")


def _quiet_until(policy: DeliveryPolicy, contact, workspace, now) -> dt.datetime | None:
    """The end of the contact's quiet hours when `now` falls in them, else None."""
    start, end = policy.quiet_hours_start, policy.quiet_hours_end
    if start is None or end is None or start == end:
        return None
    local = now.astimezone(contact_timezone(contact, workspace))
    time = local.time().replace(tzinfo=None)
    quiet = start <= time < end if start < end else (time >= start or time < end)
    if not quiet:
        return None
    day = local.date() if time < end else local.date() + dt.timedelta(days=1)
    return _first_instant_at(dt.datetime.combine(day, end), local.tzinfo)


def _first_instant_at(wall: dt.datetime, zone) -> dt.datetime:
    """The first moment the clock of `zone` shows `wall` or later (UTC). A time that comes
    twice (clocks going back) is its first occurrence; a time skipped (clocks going
    forward) is the moment the clock jumps past it."""
    first = wall.replace(tzinfo=zone, fold=0).astimezone(dt.UTC)
    if first.astimezone(zone).replace(tzinfo=None) == wall:
        return first
    # In the gap: fold=1 reads the time with the offset from before the jump (an instant
    # before it), fold=0 with the one after (an instant after it); the jump lies between.
    before = wall.replace(tzinfo=zone, fold=1).astimezone(dt.UTC)
    after = first
    before, after = min(before, after), max(before, after)
    while after - before > dt.timedelta(seconds=1):
        middle = before + (after - before) / 2
        if middle.astimezone(zone).replace(tzinfo=None) >= wall:
            after = middle
        else:
            before = middle
    return after.replace(microsecond=0)


def _apply_pressure(
    policy: DeliveryPolicy, messages: list[Message], now, not_going: set[int]
) -> dict[int, Decision]:
    """Over the per-day or per-week limit: defer (until the contact has room) or drop. When
    room is short, the highest-priority due messages of the contact go first, wherever they
    are (this batch or still queued); `not_going` are this batch's messages already dropped
    or deferred for another reason, which take no room."""
    limits = [
        (limit, span)
        for limit, span in ((policy.max_per_day, DAY), (policy.max_per_week, WEEK))
        if limit is not None
    ]
    if not limits or not messages:
        return {}
    contact_ids = {m.contact_id for m in messages}
    sent = defaultdict(list)
    scoped = Message.objects.for_workspace(policy.workspace)
    for contact_id, sent_at in scoped.filter(
        contact_id__in=contact_ids, sent_at__gt=now - WEEK
    ).values_list("contact_id", "sent_at"):
        sent[contact_id].append(sent_at)
    competing = defaultdict(list)  # due messages of these contacts, in the order they may go
    batch_ids = {m.pk for m in messages}
    for contact_id, pk, priority, due_at in scoped.filter(
        contact_id__in=contact_ids,
        status__in=[MessageStatus.QUEUED, MessageStatus.SENDING],
        due_at__lte=now,
    ).values_list("contact_id", "pk", "priority", "due_at"):
        if pk not in batch_ids and pk not in not_going:
            competing[contact_id].append((-priority, due_at, pk))
    for message in messages:
        competing[message.contact_id].append((-message.priority, message.due_at, message.pk))
    decisions = {}
    for contact_id, queue in competing.items():
        times = sorted(sent[contact_id])
        room = min(limit - sum(1 for t in times if t > now - span) for limit, span in limits)
        # The messages ahead that fit go now: they count when the next room opens.
        going_now = times + [now] * max(0, room)
        for rank, (_priority, _due, pk) in enumerate(sorted(queue)):
            if pk not in batch_ids or rank < room:
                continue
            if policy.over_limit == OverLimitAction.DROP:
                decisions[pk] = Decision(DROP, _("Over the contact's message limit."))
            else:
                decisions[pk] = Decision(
                    DEFER,
                    _("Over the contact's message limit."),
                    until=_room_at(going_now, limits, now),
                )
    return decisions


def _room_at(times: list[dt.datetime], limits, now) -> dt.datetime:
    """When the contact will next be under every limit, as its sends age out."""
    at = now
    for limit, span in limits:
        recent = [t for t in times if t > now - span]
        if len(recent) >= limit:
            # The send that must age out for one more to fit.
            at = max(at, recent[len(recent) - limit] + span)
    return at + dt.timedelta(seconds=1)
