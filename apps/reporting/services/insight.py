"""Customer insight: who the customers are and how they move, computed per workspace by a
Celery task into a snapshot (InsightSnapshot) that the page and the API read; a page view
never scans events. Each chart is one set-based query over the workspace's events,
contacts or consents, none of them per contact; events are read through event_name_time
(workspace, name, occurred_at) wherever the chart knows the event names.

Definitions (docs/reporting.md explains them for marketers):

- Purchases are the workspace's conversion events (AttributionSettings, "purchase" by
  default); revenue is their numeric `revenue` property, else `amount`.
- RFM: recency scores 5 (last purchase within 30 days), 4 (within 90), 3 (within 180),
  2 (within 365), 1 (longer ago); frequency scores 1 (one purchase), 2 (two), 3 (3-4),
  4 (5-9), 5 (10 or more). A day is 24 hours back from the moment of computing, as
  "within N days" is in segment rules, so a cell saved as a segment selects the same
  contacts. Each of the 25 cells belongs to one named group (RFM_GROUPS).
- Cohorts: a contact's cohort is the month it was first seen (created), in the
  workspace's time zone; it is active in a month when it did anything in it (any event
  except what Orchestra records about it, NOT_ACTIVITY).
- Lifecycle stage at a moment: prospect (no purchase yet), first purchase (one, within
  LAPSE_DAYS), repeat (more, the latest within LAPSE_DAYS), lapsed (none within
  LAPSE_DAYS), won back (bought within LAPSE_DAYS after a gap of more than LAPSE_DAYS
  between two purchases).
- Engagement score: engagement_score() below.
- Best send hour: opens per weekday and hour in the contact's own time zone (the
  workspace's when the contact has none).
- Reach: contacts with consent "subscribed" on each combination of channels.
"""

import datetime as dt
import logging
import time
import zoneinfo
from dataclasses import dataclass
from decimal import Decimal

from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Q
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from apps.accounts.models import Workspace
from apps.channels.choices import ChannelType
from apps.contacts.choices import EventSource
from apps.contacts.models import ContactList
from apps.contacts.services import lists
from apps.reporting.models import AttributionSettings, CustomerRfm, InsightSnapshot
from apps.reporting.services.rollups import REVENUE_SQL
from apps.segments import services as segments
from apps.segments.models import Segment

logger = logging.getLogger(__name__)

SNAPSHOT_VERSION = 1
SNAPSHOTS_KEPT = 3
INSIGHT_LOCK = 7401  # advisory lock class: one refresh per workspace at a time
# A refresh asked for from the page: the page says "recomputing" until a newer snapshot
# is in (or this long has passed, should the task be lost).
REQUEST_SECONDS = 600
STATEMENT_TIMEOUT = "300s"
WORK_MEM = "64MB"

RECENCY_DAYS = (30, 90, 180, 365)  # the recency scores 5, 4, 3 and 2 end here
FREQUENCY_FROM = (1, 2, 3, 5, 10)  # the fewest purchases of frequency scores 1 to 5
SCORES = (1, 2, 3, 4, 5)
# Rewriting more CustomerRfm rows than this refreshes the table's planner statistics.
ANALYZE_AFTER_ROWS = 10_000

# Named groups of the RFM grid: (recency, frequency) cells; together they cover all 25.
RFM_GROUPS = {
    "champions": (gettext_lazy("Champions"), {(5, 4), (5, 5)}),
    "loyal": (gettext_lazy("Loyal"), {(4, 4), (4, 5), (3, 4), (3, 5)}),
    "potential_loyalists": (
        gettext_lazy("Potential loyalists"),
        {(5, 2), (5, 3), (4, 2), (4, 3)},
    ),
    "new_customers": (gettext_lazy("New customers"), {(5, 1)}),
    "promising": (gettext_lazy("Promising"), {(4, 1)}),
    "need_attention": (gettext_lazy("Need attention"), {(3, 1), (3, 2), (3, 3)}),
    "at_risk": (gettext_lazy("At risk"), {(2, 3), (2, 4), (2, 5), (1, 3), (1, 4), (1, 5)}),
    "hibernating": (gettext_lazy("Hibernating"), {(2, 1), (2, 2), (1, 1), (1, 2)}),
}
GROUP_OF_CELL = {cell: key for key, (_label, cells) in RFM_GROUPS.items() for cell in cells}

COHORT_MONTHS = 12
# What Orchestra records about a contact, not something the contact did.
NOT_ACTIVITY = (
    "segment_entered",
    "segment_exited",
    "message_delivered",
    "message_bounced",
    "message_failed",
    "message_complained",
    "unsubscribed",
)

LAPSE_DAYS = 90
LIFECYCLE_PERIODS = (30, 90, 365)
STAGES = {
    "joined": gettext_lazy("Not yet a contact"),
    "prospect": gettext_lazy("Prospect"),
    "first_purchase": gettext_lazy("First purchase"),
    "repeat": gettext_lazy("Repeat customer"),
    "lapsed": gettext_lazy("Lapsed"),
    "won_back": gettext_lazy("Won back"),
}

ENGAGEMENT_DAYS = 30
OPENED, CLICKED = "message_opened", "message_clicked"
VISIT_EVENTS = ("page", "screen", "page_viewed")
ENGAGEMENT_POINTS = {"opens": 1, "clicks": 3, "visits": 1, "purchases": 10}
ENGAGEMENT_MAX = 100
# Histogram bins: 0, 1-9, 10-19, ..., 80-89, 90-100.
ENGAGEMENT_BINS = [(0, 0), (1, 9), *((n, n + 9) for n in range(10, 90, 10)), (90, 100)]

SEND_HOUR_DAYS = 90
REACH_BITS = {"email": 1, "sms": 2, "push": 4}  # ConsentChannel values


def engagement_score(opens: int, clicks: int, visits: int, purchases: int) -> int:
    """How engaged a contact is, 0 to 100, from what they did in the last ENGAGEMENT_DAYS
    days: a point per message opened, 3 per link clicked, a point per page or screen
    viewed, 10 per purchase (a conversion event), at most 100. The SQL that scores every
    contact at once is built from the same ENGAGEMENT_POINTS (_engagement)."""
    points = (
        ENGAGEMENT_POINTS["opens"] * opens
        + ENGAGEMENT_POINTS["clicks"] * clicks
        + ENGAGEMENT_POINTS["visits"] * visits
        + ENGAGEMENT_POINTS["purchases"] * purchases
    )
    return min(ENGAGEMENT_MAX, points)


def conversion_events(workspace: Workspace) -> list[str]:
    """The event names that count as purchases in this workspace."""
    settings = AttributionSettings.objects.filter(workspace=workspace).first()
    names = settings.conversion_events if settings else None
    return [name for name in names or [] if isinstance(name, str)] or ["purchase"]


@dataclass(frozen=True)
class _Context:
    workspace_id: int
    zone: str
    now: dt.datetime
    purchases: list[str]

    def params(self, **more) -> dict:
        return {
            "ws": self.workspace_id,
            "tz": self.zone,
            "now": self.now,
            "purchases": self.purchases,
            **more,
        }


# Computing ------------------------------------------------------------------------------


def compute_insight(workspace: Workspace, now: dt.datetime | None = None) -> dict:
    """Every chart's numbers as of `now`, as plain JSON data; also rewrites the
    workspace's CustomerRfm rows. Call inside a transaction (refresh_insight does)."""
    now = now or timezone.now()
    ctx = _Context(workspace.pk, workspace.timezone, now, conversion_events(workspace))
    with connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL statement_timeout = '{STATEMENT_TIMEOUT}'")
        cursor.execute(f"SET LOCAL work_mem = '{WORK_MEM}'")
        # These queries are planned as costly; compiling them (JIT) takes seconds and
        # saves none.
        cursor.execute("SET LOCAL jit = off")
        cursor.execute(
            "SELECT count(*) FROM contacts_contact WHERE workspace_id = %s", [workspace.pk]
        )
        contacts = cursor.fetchone()[0]
        return {
            "version": SNAPSHOT_VERSION,
            "computed_at": now.isoformat(),
            "timezone": workspace.timezone,
            "conversion_events": ctx.purchases,
            "contacts": contacts,
            "rfm": _rfm(cursor, ctx),
            "cohorts": _cohorts(cursor, ctx),
            "lifecycle": _lifecycle(cursor, ctx),
            "engagement": _engagement(cursor, ctx, contacts),
            "send_hour": _send_hour(cursor, ctx),
            "reach": _reach(cursor, ctx, contacts),
        }


def _money(value) -> float:
    return float(round(Decimal(value or 0), 2))


_RFM_SQL = f"""
WITH purchases AS MATERIALIZED (
    SELECT ev.contact_id, count(*) AS purchases, sum({REVENUE_SQL}) AS revenue,
           max(ev.occurred_at) FILTER (WHERE ev.occurred_at <= %(now)s) AS last_at
    FROM contacts_event ev
    WHERE ev.workspace_id = %(ws)s AND ev.name = ANY(%(purchases)s)
    GROUP BY ev.contact_id
), scored AS MATERIALIZED (
    SELECT contact_id, purchases, revenue, last_at,
           CASE WHEN last_at >= %(r5)s THEN 5 WHEN last_at >= %(r4)s THEN 4
                WHEN last_at >= %(r3)s THEN 3 WHEN last_at >= %(r2)s THEN 2 ELSE 1 END
               AS recency,
           CASE WHEN purchases >= %(f5)s THEN 5 WHEN purchases >= %(f4)s THEN 4
                WHEN purchases >= %(f3)s THEN 3 WHEN purchases >= %(f2)s THEN 2 ELSE 1 END
               AS frequency
    FROM purchases
), changed AS MATERIALIZED (
    -- Only new and changed rows are written: an upsert that changes nothing still locks
    -- (and dirties) every row it meets.
    SELECT s.* FROM scored s
    LEFT JOIN reporting_customerrfm r ON r.contact_id = s.contact_id
    WHERE r.contact_id IS NULL
       OR (r.workspace_id, r.recency, r.frequency, r.purchases, r.revenue, r.last_purchase_at)
          IS DISTINCT FROM (%(ws)s, s.recency, s.frequency, s.purchases, s.revenue, s.last_at)
), kept AS (
    INSERT INTO reporting_customerrfm AS r (workspace_id, contact_id, recency, frequency,
                                            purchases, revenue, last_purchase_at)
    SELECT %(ws)s, contact_id, recency, frequency, purchases, revenue, last_at FROM changed
    ON CONFLICT (contact_id) DO UPDATE SET
        workspace_id = excluded.workspace_id, recency = excluded.recency,
        frequency = excluded.frequency, purchases = excluded.purchases,
        revenue = excluded.revenue, last_purchase_at = excluded.last_purchase_at
    RETURNING 1
), gone AS (
    DELETE FROM reporting_customerrfm r
    WHERE r.workspace_id = %(ws)s
      AND NOT EXISTS (SELECT 1 FROM scored s WHERE s.contact_id = r.contact_id)
    RETURNING 1
)
SELECT recency, frequency, count(*), coalesce(sum(revenue), 0), sum(purchases)
FROM scored GROUP BY 1, 2
UNION ALL  -- recency 0: how many rows were written
SELECT 0, 0, (SELECT count(*) FROM kept) + (SELECT count(*) FROM gone), 0, 0
"""  # noqa: S608 (a constant expression, no input)


def _rfm(cursor, ctx: _Context) -> dict:
    since = {f"r{5 - n}": ctx.now - dt.timedelta(days=days) for n, days in enumerate(RECENCY_DAYS)}
    least = {f"f{score}": FREQUENCY_FROM[score - 1] for score in SCORES}
    cursor.execute(_RFM_SQL, ctx.params(**since, **least))
    found = {(r, f): (n, revenue, purchases) for r, f, n, revenue, purchases in cursor.fetchall()}
    written = found.pop((0, 0))[0]
    if written > ANALYZE_AFTER_ROWS:
        # A first refresh (or a big change) leaves the planner without statistics, and the
        # customers pages would read whole cells to find 50 contacts.
        cursor.execute("ANALYZE reporting_customerrfm")
    cells = []
    for recency in reversed(SCORES):
        for frequency in SCORES:
            n, revenue, purchases = found.get((recency, frequency), (0, 0, 0))
            cells.append(
                {
                    "recency": recency,
                    "frequency": frequency,
                    "group": GROUP_OF_CELL[(recency, frequency)],
                    "contacts": n,
                    "purchases": int(purchases),
                    "revenue": _money(revenue),
                }
            )
    groups = []
    for key, (_label, members) in RFM_GROUPS.items():
        inside = [cell for cell in cells if (cell["recency"], cell["frequency"]) in members]
        groups.append(
            {
                "group": key,
                "contacts": sum(c["contacts"] for c in inside),
                "revenue": round(sum(c["revenue"] for c in inside), 2),
            }
        )
    return {
        "recency_days": list(RECENCY_DAYS),
        "frequency_from": list(FREQUENCY_FROM),
        "customers": sum(cell["contacts"] for cell in cells),
        "revenue": round(sum(cell["revenue"] for cell in cells), 2),
        "cells": cells,
        "groups": groups,
    }


def _month_start(moment: dt.datetime, zone: str, back: int = 0) -> dt.datetime:
    local = moment.astimezone(zoneinfo.ZoneInfo(zone))
    months = local.year * 12 + local.month - 1 - back
    return dt.datetime(months // 12, months % 12 + 1, 1, tzinfo=zoneinfo.ZoneInfo(zone))


_COHORT_SQL = """
WITH cohort AS MATERIALIZED (
    SELECT c.id, date_trunc('month', c.created_at AT TIME ZONE %(tz)s)::date AS month
    FROM contacts_contact c
    WHERE c.workspace_id = %(ws)s AND c.created_at >= %(since)s AND c.created_at <= %(now)s
), active AS (
    SELECT DISTINCT ev.contact_id,
           date_trunc('month', ev.occurred_at AT TIME ZONE %(tz)s)::date AS month
    FROM contacts_event ev
    WHERE ev.workspace_id = %(ws)s AND ev.occurred_at >= %(since)s
      AND ev.occurred_at <= %(now)s AND ev.name <> ALL(%(not_activity)s)
)
SELECT cohort.month, active.month, count(*)
FROM active JOIN cohort ON cohort.id = active.contact_id
WHERE active.month >= cohort.month
GROUP BY 1, 2
UNION ALL
SELECT month, NULL, count(*) FROM cohort GROUP BY 1
"""


def _cohorts(cursor, ctx: _Context) -> dict:
    since = _month_start(ctx.now, ctx.zone, back=COHORT_MONTHS - 1)
    cursor.execute(_COHORT_SQL, ctx.params(since=since, not_activity=list(NOT_ACTIVITY)))
    months = [
        _month_start(ctx.now, ctx.zone, back=n).date() for n in range(COHORT_MONTHS - 1, -1, -1)
    ]
    index = {month: n for n, month in enumerate(months)}
    sizes = [0] * len(months)
    active = [[0] * (len(months) - n) for n in range(len(months))]
    for cohort, month, n in cursor.fetchall():
        if cohort not in index:
            continue
        if month is None:
            sizes[index[cohort]] = n
        elif month in index:
            active[index[cohort]][index[month] - index[cohort]] = n
    return {
        "months": [month.strftime("%Y-%m") for month in months],
        "rows": [
            {"cohort": month.strftime("%Y-%m"), "contacts": sizes[n], "active": active[n]}
            for n, month in enumerate(months)
        ],
    }


def _lifecycle_sql(moments: int) -> str:
    aggregates, stages = [], []
    for n in range(moments):
        d = f"%(d{n})s"
        aggregates.append(
            f"count(*) FILTER (WHERE occurred_at <= {d}) AS n{n}, "
            f"max(occurred_at) FILTER (WHERE occurred_at <= {d}) AS last{n}, "
            f"coalesce(bool_or(gap > %(lapse)s AND occurred_at > {d} - %(lapse)s "
            f"AND occurred_at <= {d}), false) AS back{n}"
        )
        # Only a start moment can come before the contact was created.
        before = f"CASE WHEN c.created_at <= {d} THEN 'prospect' ELSE 'joined' END"
        never_bought = before if n else "'prospect'"
        stages.append(
            f"CASE WHEN coalesce(per.n{n}, 0) = 0 THEN {never_bought} "
            f"WHEN per.last{n} <= {d} - %(lapse)s THEN 'lapsed' "
            f"WHEN per.n{n} = 1 THEN 'first_purchase' "
            f"WHEN per.back{n} THEN 'won_back' ELSE 'repeat' END AS s{n}"
        )
    flows = " UNION ALL ".join(
        f"SELECT {n}, s{n}, s0, count(*) FROM staged GROUP BY 2, 3"  # noqa: S608 (constants)
        for n in range(1, moments)
    )
    return f"""
    WITH p AS (
        SELECT ev.contact_id, ev.occurred_at,
               ev.occurred_at - lag(ev.occurred_at)
                   OVER (PARTITION BY ev.contact_id ORDER BY ev.occurred_at) AS gap
        FROM contacts_event ev
        WHERE ev.workspace_id = %(ws)s AND ev.name = ANY(%(purchases)s)
          AND ev.occurred_at <= %(now)s
    ), per AS (
        SELECT contact_id, {", ".join(aggregates)} FROM p GROUP BY contact_id
    ), staged AS MATERIALIZED (
        SELECT {", ".join(stages)}
        FROM contacts_contact c LEFT JOIN per ON per.contact_id = c.id
        WHERE c.workspace_id = %(ws)s
    )
    {flows}
    """  # noqa: S608 (built from constants)


def _lifecycle(cursor, ctx: _Context) -> dict:
    moments = {"d0": ctx.now}
    for n, days in enumerate(LIFECYCLE_PERIODS, start=1):
        moments[f"d{n}"] = ctx.now - dt.timedelta(days=days)
    cursor.execute(
        _lifecycle_sql(len(moments)), ctx.params(lapse=dt.timedelta(days=LAPSE_DAYS), **moments)
    )
    flows: dict[int, list[dict]] = {n: [] for n in range(1, len(moments))}
    for n, start, end, contacts in cursor.fetchall():
        flows[n].append({"from": start, "to": end, "contacts": contacts})
    order = list(STAGES)
    zone = zoneinfo.ZoneInfo(ctx.zone)
    periods = {}
    for n, days in enumerate(LIFECYCLE_PERIODS, start=1):
        rows = sorted(flows[n], key=lambda f: (order.index(f["from"]), order.index(f["to"])))
        periods[str(days)] = {
            "days": days,
            "from": moments[f"d{n}"].astimezone(zone).date().isoformat(),
            "to": ctx.now.astimezone(zone).date().isoformat(),
            "flows": rows,
        }
    return {"lapse_days": LAPSE_DAYS, "periods": periods}


def _engagement_sql() -> str:
    points = ENGAGEMENT_POINTS
    return f"""
    WITH scores AS (
        SELECT ev.contact_id, least({ENGAGEMENT_MAX}, sum(
            CASE WHEN ev.name = ANY(%(purchases)s) THEN {points["purchases"]}
                 WHEN ev.name = %(opened)s THEN {points["opens"]}
                 WHEN ev.name = %(clicked)s THEN {points["clicks"]}
                 ELSE {points["visits"]} END)) AS score
        FROM contacts_event ev
        WHERE ev.workspace_id = %(ws)s AND ev.name = ANY(%(names)s)
          AND ev.occurred_at >= %(since)s AND ev.occurred_at <= %(now)s
        GROUP BY ev.contact_id
    )
    SELECT CASE WHEN score >= 90 THEN 10 ELSE score / 10 + 1 END, count(*), sum(score)
    FROM scores GROUP BY 1
    """  # noqa: S608 (built from constants)


def _engagement(cursor, ctx: _Context, contacts: int) -> dict:
    names = [*ctx.purchases, OPENED, CLICKED, *VISIT_EVENTS]
    since = ctx.now - dt.timedelta(days=ENGAGEMENT_DAYS)
    cursor.execute(
        _engagement_sql(),
        ctx.params(names=names, since=since, opened=OPENED, clicked=CLICKED),
    )
    counts = [0] * len(ENGAGEMENT_BINS)
    total_score = 0
    for bin_, n, score in cursor.fetchall():
        counts[bin_] = n
        total_score += int(score)
    counts[0] = max(0, contacts - sum(counts))
    return {
        "window_days": ENGAGEMENT_DAYS,
        "points": dict(ENGAGEMENT_POINTS),
        "max": ENGAGEMENT_MAX,
        "bins": [
            {"from": low, "to": high, "contacts": counts[n]}
            for n, (low, high) in enumerate(ENGAGEMENT_BINS)
        ],
        "engaged": contacts - counts[0],
        "mean": round(total_score / contacts, 2) if contacts else None,
    }


_SEND_HOUR_SQL = """
WITH zones AS MATERIALIZED (SELECT name FROM pg_timezone_names)
SELECT channel, extract(isodow FROM local)::int - 1, extract(hour FROM local)::int, count(*)
FROM (
    SELECT coalesce(ev.properties ->> 'channel', '') AS channel,
           ev.occurred_at AT TIME ZONE coalesce(z.name, %(tz)s) AS local
    FROM contacts_event ev
    JOIN contacts_contact c ON c.id = ev.contact_id
    LEFT JOIN zones z ON z.name = c.timezone
    WHERE ev.workspace_id = %(ws)s AND ev.name = %(opened)s
      AND ev.occurred_at >= %(since)s AND ev.occurred_at <= %(now)s
) opens
GROUP BY 1, 2, 3
"""


def _send_hour(cursor, ctx: _Context) -> dict:
    since = ctx.now - dt.timedelta(days=SEND_HOUR_DAYS)
    cursor.execute(_SEND_HOUR_SQL, ctx.params(since=since, opened=OPENED))
    grids: dict[str, list[list[int]]] = {"": [[0] * 24 for _day in range(7)]}
    for channel, weekday, hour, n in cursor.fetchall():
        grids[""][weekday][hour] += n
        if channel in ChannelType.values:
            grid = grids.setdefault(channel, [[0] * 24 for _day in range(7)])
            grid[weekday][hour] += n
    return {
        "window_days": SEND_HOUR_DAYS,
        "opens": grids.pop(""),
        "channels": dict(sorted(grids.items())),
    }


_REACH_SQL = """
SELECT mask, count(*) FROM (
    SELECT bit_or(CASE cs.channel WHEN 'email' THEN 1 WHEN 'sms' THEN 2 WHEN 'push' THEN 4
                  ELSE 0 END) AS mask
    FROM contacts_consent cs
    WHERE cs.workspace_id = %(ws)s AND cs.status = 'subscribed'
    GROUP BY cs.contact_id
) masks
GROUP BY mask
"""


def _reach(cursor, ctx: _Context, contacts: int) -> dict:
    cursor.execute(_REACH_SQL, ctx.params())
    by_mask = dict(cursor.fetchall())
    combinations = []
    for mask, n in sorted(by_mask.items(), key=lambda item: (-item[1], item[0])):
        channels = [channel for channel, bit in REACH_BITS.items() if mask & bit]
        if channels:
            combinations.append({"channels": channels, "contacts": n})
    reachable = sum(c["contacts"] for c in combinations)
    return {
        "contacts": contacts,
        "reachable": reachable,
        "unreachable": max(0, contacts - reachable),
        "channels": {
            channel: sum(c["contacts"] for c in combinations if channel in c["channels"])
            for channel in REACH_BITS
        },
        "combinations": combinations,
    }


# Snapshots ------------------------------------------------------------------------------


def refresh_insight(workspace_id: int, now: dt.datetime | None = None) -> InsightSnapshot | None:
    """Compute and store a new snapshot for the workspace; None when another refresh of
    it is running (or the workspace is gone)."""
    workspace = Workspace.objects.filter(pk=workspace_id).first()
    if workspace is None:
        return None
    started = time.monotonic()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", [INSIGHT_LOCK, workspace_id])
        if not cursor.fetchone()[0]:
            return None
        data = compute_insight(workspace, now)
        snapshot = InsightSnapshot.objects.create(
            workspace=workspace,
            computed_at=dt.datetime.fromisoformat(data["computed_at"]),
            seconds=round(time.monotonic() - started, 3),
            data=data,
        )
        kept = InsightSnapshot.objects.filter(workspace=workspace).order_by("-computed_at", "-id")
        InsightSnapshot.objects.filter(workspace=workspace).exclude(
            pk__in=kept.values("pk")[:SNAPSHOTS_KEPT]
        ).delete()
    requested = _requested_at(workspace_id)
    if requested and requested <= snapshot.computed_at:
        cache.delete(_request_key(workspace_id))
    logger.info("Insight for workspace %s computed in %.2f s.", workspace_id, snapshot.seconds)
    return snapshot


def latest_snapshot(workspace: Workspace) -> InsightSnapshot | None:
    """The newest snapshot in the shape this code reads (after an upgrade that changes
    it, the page waits for the next refresh rather than misreading an older one)."""
    return (
        InsightSnapshot.objects.filter(workspace=workspace, data__version=SNAPSHOT_VERSION)
        .order_by("-computed_at", "-id")
        .first()
    )


def workspaces_to_refresh() -> list[int]:
    return list(Workspace.objects.order_by("pk").values_list("pk", flat=True))


def _request_key(workspace_id: int) -> str:
    return f"reporting:insight:requested:{workspace_id}"


def _requested_at(workspace_id: int) -> dt.datetime | None:
    value = cache.get(_request_key(workspace_id))
    return dt.datetime.fromisoformat(value) if value else None


def refresh_pending_for(workspace_id: int) -> bool:
    """Whether someone asked for a refresh that no snapshot has answered yet."""
    return _requested_at(workspace_id) is not None


def request_refresh(workspace: Workspace, force: bool = False) -> bool:
    """Ask a worker for a new snapshot: once until one is in, unless `force` (someone
    pressed "Recompute now"); answers whether this call asked."""
    key, stamp = _request_key(workspace.pk), timezone.now().isoformat()
    if force:
        cache.set(key, stamp, REQUEST_SECONDS)
    elif not cache.add(key, stamp, REQUEST_SECONDS):
        return False
    from apps.reporting.tasks import refresh_insight_task

    workspace_id = workspace.pk
    transaction.on_commit(lambda: refresh_insight_task.delay(workspace_id))
    return True


def refresh_pending(workspace: Workspace, snapshot: InsightSnapshot | None) -> bool:
    """Whether a refresh was asked for that has not produced a snapshot yet."""
    requested = _requested_at(workspace.pk)
    return bool(requested) and (snapshot is None or snapshot.computed_at < requested)


# RFM cells: their contacts, and saving them as a segment -----------------------------


@dataclass(frozen=True)
class RfmSelection:
    """One cell of the grid ("r5f4") or one named group ("champions")."""

    key: str
    cells: frozenset[tuple[int, int]]
    group: str

    @property
    def label(self) -> str:
        group = str(RFM_GROUPS[self.group][0])
        if len(self.cells) == 1:
            ((recency, frequency),) = self.cells
            return _("R%(r)d F%(f)d: %(group)s") % {"r": recency, "f": frequency, "group": group}
        return group


def rfm_selection(key: str) -> RfmSelection | None:
    """The cell or group a key names; None when it names none."""
    if key in RFM_GROUPS:
        return RfmSelection(key, frozenset(RFM_GROUPS[key][1]), key)
    if len(key) == 4 and key[0] == "r" and key[2] == "f" and key[1::2].isdigit():
        cell = (int(key[1]), int(key[3]))
        if cell in GROUP_OF_CELL:
            return RfmSelection(key, frozenset({cell}), GROUP_OF_CELL[cell])
    return None


def cell_key(recency: int, frequency: int) -> str:
    return f"r{recency}f{frequency}"


def rfm_cell_rule(recency: int, frequency: int, event: str) -> dict:
    """The segment rule that selects exactly the contacts of a cell when purchases are
    one event name (the rule language counts one event name at a time)."""
    parts: list[dict] = []
    if recency > 1:
        parts.append({"event": event, "within_days": RECENCY_DAYS[5 - recency]})
    if recency < 5:
        parts.append({"not": {"event": event, "within_days": RECENCY_DAYS[4 - recency]}})
    least = FREQUENCY_FROM[frequency - 1]
    if frequency == SCORES[-1]:
        count = {"gte": least}
    elif FREQUENCY_FROM[frequency] - 1 == least:
        count = {"eq": least}
    else:
        count = {"gte": least, "lte": FREQUENCY_FROM[frequency] - 1}
    parts.append({"event": event, "count": count})
    return {"all": parts}


def rfm_rule(selection: RfmSelection, purchases: list[str]) -> dict | None:
    """The selection as a segment rule; None when the workspace counts several event
    names as purchases (a rule cannot add up counts of different events)."""
    if len(purchases) != 1:
        return None
    rules = [rfm_cell_rule(r, f, purchases[0]) for r, f in sorted(selection.cells, reverse=True)]
    return rules[0] if len(rules) == 1 else {"any": rules}


def _in_selection(workspace: Workspace, selection: RfmSelection):
    cells = Q()
    for recency, frequency in selection.cells:
        cells |= Q(recency=recency, frequency=frequency)
    return CustomerRfm.objects.filter(cells, workspace=workspace)


def rfm_customers(
    workspace: Workspace, selection: RfmSelection, before: int | None = None, limit: int = 50
) -> list[CustomerRfm]:
    """A page of the contacts the latest snapshot counted in the selection, newest first
    (contact ids below `before`), each with its contact. Each cell is read newest first
    through customer_rfm_cell and only `limit` of each are merged, so a page costs the same
    in a group of 400,000 customers as in a cell of 40."""
    branch = (
        "(SELECT contact_id FROM reporting_customerrfm WHERE workspace_id = %s "
        "AND recency = %s AND frequency = %s AND contact_id < %s "
        "ORDER BY contact_id DESC LIMIT %s)"
    )
    cells = sorted(selection.cells)
    params: list = []
    for recency, frequency in cells:
        params += [workspace.pk, recency, frequency, before or 2**63 - 1, limit]
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT contact_id FROM ({' UNION ALL '.join([branch] * len(cells))}) page "  # noqa: S608
            "ORDER BY contact_id DESC LIMIT %s",
            [*params, limit],
        )
        ids = [row[0] for row in cursor.fetchall()]
    rows = CustomerRfm.objects.filter(workspace=workspace, contact_id__in=ids).select_related(
        "contact"
    )
    return sorted(rows, key=lambda row: -row.contact_id)


def rfm_customer_ids(workspace: Workspace, selection: RfmSelection) -> list[int]:
    return list(_in_selection(workspace, selection).values_list("contact_id", flat=True))


@dataclass
class SavedSelection:
    segment: Segment | None = None
    contact_list: ContactList | None = None
    created: bool = True


def save_rfm_selection(workspace: Workspace, selection: RfmSelection, user=None) -> SavedSelection:
    """Save a cell or group as a segment whose rule selects it (kept current as contacts
    buy); when the rule language cannot express it (several purchase event names), as a
    static list of the contacts the latest snapshot counted in it. A segment with the
    same rule is not saved twice."""
    purchases = conversion_events(workspace)
    rule = rfm_rule(selection, purchases)
    name = _("RFM %(selection)s") % {"selection": selection.label}
    if rule is not None:
        existing = Segment.objects.for_workspace(workspace).filter(rule=rule).first()
        if existing is not None:
            return SavedSelection(segment=existing, created=False)
        description = _(
            "Customers in %(selection)s of the RFM grid: recency from the last %(event)s, "
            "frequency from the number of %(event)s events. Contacts move in and out as "
            "they buy and as time passes."
        ) % {"selection": selection.label, "event": purchases[0]}
        segment = segments.create_segment(workspace, name, rule, description, created_by=user)
        return SavedSelection(segment=segment)
    snapshot = latest_snapshot(workspace)
    when = snapshot.computed_at if snapshot else timezone.now()
    dated = f"{name} ({formats.date_format(timezone.localtime(when), 'SHORT_DATE_FORMAT')})"
    contact_list = lists.create_list(
        workspace,
        dated[:100],
        _(
            "The customers in %(selection)s of the RFM grid when the insight was computed "
            "(%(events)s count as purchases)."
        )
        % {"selection": selection.label, "events": ", ".join(purchases)},
    )
    ids = rfm_customer_ids(workspace, selection)
    lists.add_to_list(contact_list, ids, EventSource.UI)
    return SavedSelection(contact_list=contact_list)
