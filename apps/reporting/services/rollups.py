"""Rollups kept current from the raw tables' new rows.

Each source table (message history, journey step log, contact events) is read in id
order from its watermark; a chunk's counts are added to the rollup rows and the watermark
moves on in the same transaction, so a run that dies adds nothing and a run repeated adds
nothing twice.

Ids are handed out before their transactions commit, so a row with a small id can become
visible after a larger one. A run therefore only goes as far as the largest id it can see,
and first waits for the transactions that were in flight when it looked to end: none of
them can then still add a row below that id.
"""

import logging
import time
from dataclasses import dataclass

from django.db import connection, transaction

logger = logging.getLogger(__name__)

CHUNK_IDS = 50_000
# How long a run waits for the writes in flight to end before leaving a source for the
# next run (a long import holds it back meanwhile).
SETTLE_SECONDS = 5.0

# A numeric property as revenue, when it fits the rollup's column.
REVENUE_SQL = """
CASE
    WHEN jsonb_typeof(ev.properties -> 'revenue') = 'number'
         AND abs((ev.properties ->> 'revenue')::numeric) < 1e15
        THEN round((ev.properties ->> 'revenue')::numeric, 2)
    WHEN jsonb_typeof(ev.properties -> 'amount') = 'number'
         AND abs((ev.properties ->> 'amount')::numeric) < 1e15
        THEN round((ev.properties ->> 'amount')::numeric, 2)
    ELSE 0
END
"""


@dataclass(frozen=True)
class Source:
    table: str
    statements: tuple[str, ...]  # each takes %(low)s and %(high)s: low < id <= high


MESSAGES = Source(
    "channels_messageevent",
    (
        """
        INSERT INTO reporting_messagedaily AS r (workspace_id, day, channel, journey_id,
            node_id, sent, delivered, opens, unique_opens, clicks, unique_clicks, bounced,
            complained, failed, dropped, unsubscribed)
        SELECT m.workspace_id, (e.at AT TIME ZONE w.timezone)::date, c.type,
               coalesce(m.journey_id, 0), m.node_id,
               count(*) FILTER (WHERE e.kind = 'sent'),
               count(*) FILTER (WHERE e.kind = 'delivered'),
               count(*) FILTER (WHERE e.kind = 'opened'),
               count(*) FILTER (WHERE e.kind = 'opened' AND e.first),
               count(*) FILTER (WHERE e.kind = 'clicked'),
               count(*) FILTER (WHERE e.kind = 'clicked' AND e.first),
               count(*) FILTER (WHERE e.kind = 'bounced'),
               count(*) FILTER (WHERE e.kind = 'complained'),
               count(*) FILTER (WHERE e.kind = 'failed'),
               count(*) FILTER (WHERE e.kind = 'dropped'),
               count(*) FILTER (WHERE e.kind = 'unsubscribed')
        FROM (
            SELECT e.*, (e.kind IN ('opened', 'clicked') AND NOT EXISTS (
                SELECT 1 FROM channels_messageevent earlier
                WHERE earlier.message_id = e.message_id AND earlier.kind = e.kind
                  AND earlier.id < e.id)) AS first
            FROM channels_messageevent e
            WHERE e.id > %(low)s AND e.id <= %(high)s
              AND e.kind IN ('sent', 'delivered', 'opened', 'clicked', 'bounced',
                             'complained', 'failed', 'dropped', 'unsubscribed')
        ) e
        JOIN channels_message m ON m.id = e.message_id
        JOIN channels_channel c ON c.id = m.channel_id
        JOIN accounts_workspace w ON w.id = m.workspace_id
        GROUP BY 1, 2, 3, 4, 5
        ON CONFLICT (workspace_id, day, channel, journey_id, node_id) DO UPDATE SET
            sent = r.sent + excluded.sent, delivered = r.delivered + excluded.delivered,
            opens = r.opens + excluded.opens,
            unique_opens = r.unique_opens + excluded.unique_opens,
            clicks = r.clicks + excluded.clicks,
            unique_clicks = r.unique_clicks + excluded.unique_clicks,
            bounced = r.bounced + excluded.bounced,
            complained = r.complained + excluded.complained,
            failed = r.failed + excluded.failed, dropped = r.dropped + excluded.dropped,
            unsubscribed = r.unsubscribed + excluded.unsubscribed
        """,
    ),
)

JOURNEY_STEPS = Source(
    "journeys_journeystep",
    (
        """
        INSERT INTO reporting_journeydaily AS r (workspace_id, journey_id, day, node_id,
                                                 outcome, branch, holdout, count)
        SELECT en.workspace_id, en.journey_id, (s.at AT TIME ZONE w.timezone)::date,
               s.node_id, s.outcome,
               CASE WHEN s.outcome = 'branched' THEN left(s.detail, 100) ELSE '' END,
               en.holdout, count(*)
        FROM journeys_journeystep s
        JOIN journeys_enrollment en ON en.id = s.enrollment_id
        JOIN accounts_workspace w ON w.id = en.workspace_id
        WHERE s.id > %(low)s AND s.id <= %(high)s
        GROUP BY 1, 2, 3, 4, 5, 6, 7
        ON CONFLICT (workspace_id, journey_id, day, node_id, outcome, branch, holdout)
        DO UPDATE SET count = r.count + excluded.count
        """,
        # Each goal reached, credited to every branch the enrollment took before it (on the
        # day of the conversion): the A/B and condition results.
        """
        INSERT INTO reporting_journeydaily AS r (workspace_id, journey_id, day, node_id,
                                                 outcome, branch, holdout, count)
        SELECT en.workspace_id, en.journey_id, (s.at AT TIME ZONE w.timezone)::date,
               taken.node_id, 'split_converted', taken.branch, en.holdout, count(*)
        FROM journeys_journeystep s
        JOIN journeys_enrollment en ON en.id = s.enrollment_id
        JOIN accounts_workspace w ON w.id = en.workspace_id
        CROSS JOIN LATERAL (
            SELECT DISTINCT b.node_id, left(b.detail, 100) AS branch
            FROM journeys_journeystep b
            WHERE b.enrollment_id = s.enrollment_id AND b.outcome = 'branched' AND b.id < s.id
        ) taken
        WHERE s.id > %(low)s AND s.id <= %(high)s AND s.outcome = 'converted'
        GROUP BY 1, 2, 3, 4, 5, 6, 7
        ON CONFLICT (workspace_id, journey_id, day, node_id, outcome, branch, holdout)
        DO UPDATE SET count = r.count + excluded.count
        """,
    ),
)


# Conversions (the workspace's conversion events) credited to the messages sent to the
# contact within the lookback window before it, under each attribution model; a conversion
# no message touched goes to channel "" (direct). Time decay halves a message's weight for
# each half-life between it and the conversion (clamped: exp() must not underflow).
ATTRIBUTION_SQL = f"""
WITH conv AS (
    SELECT ev.id, ev.workspace_id, ev.contact_id, ev.occurred_at,
           (ev.occurred_at AT TIME ZONE w.timezone)::date AS day, {REVENUE_SQL} AS revenue,
           coalesce(s.lookback_days, 7) AS lookback_days,
           coalesce(s.half_life_hours, 48) AS half_life_hours
    FROM contacts_event ev
    JOIN accounts_workspace w ON w.id = ev.workspace_id
    LEFT JOIN reporting_attributionsettings s ON s.workspace_id = ev.workspace_id
    WHERE ev.id > %(low)s AND ev.id <= %(high)s
      AND coalesce(s.conversion_events, '["purchase"]'::jsonb) ? ev.name
), touch AS (
    SELECT conv.id AS conv_id, c.type AS channel, coalesce(m.journey_id, 0) AS journey_id,
           m.node_id,
           row_number() OVER (PARTITION BY conv.id ORDER BY m.sent_at, m.id) AS from_first,
           row_number() OVER (PARTITION BY conv.id ORDER BY m.sent_at DESC, m.id DESC)
               AS from_last,
           count(*) OVER (PARTITION BY conv.id) AS touches,
           exp(greatest(-700.0, -ln(2.0) * extract(epoch FROM conv.occurred_at - m.sent_at)
                                 / (3600.0 * greatest(conv.half_life_hours, 1)))) AS weight
    FROM conv
    JOIN channels_message m ON m.contact_id = conv.contact_id
    JOIN channels_channel c ON c.id = m.channel_id
    WHERE m.sent_at IS NOT NULL AND m.sent_at <= conv.occurred_at
      AND m.sent_at > conv.occurred_at - make_interval(days => conv.lookback_days)
), credit AS (
    SELECT t.conv_id, t.channel, t.journey_id, t.node_id, models.model, models.share
    FROM (SELECT *, sum(weight) OVER (PARTITION BY conv_id) AS total_weight FROM touch) t
    CROSS JOIN LATERAL (VALUES
        ('first_touch', CASE WHEN t.from_first = 1 THEN 1.0 ELSE 0.0 END),
        ('last_touch', CASE WHEN t.from_last = 1 THEN 1.0 ELSE 0.0 END),
        ('linear', 1.0 / t.touches),
        ('time_decay', t.weight / t.total_weight)
    ) AS models(model, share)
    WHERE models.share > 0
    UNION ALL
    SELECT conv.id, '', 0, '', models.model, 1.0
    FROM conv CROSS JOIN (VALUES ('first_touch'), ('last_touch'), ('linear'), ('time_decay'))
        AS models(model)
    WHERE NOT EXISTS (SELECT 1 FROM touch WHERE touch.conv_id = conv.id)
)
INSERT INTO reporting_attributiondaily AS r (workspace_id, day, model, channel, journey_id,
                                             node_id, conversions, revenue)
SELECT conv.workspace_id, conv.day, credit.model, credit.channel, credit.journey_id,
       credit.node_id, sum(credit.share), sum(credit.share * conv.revenue)
FROM credit JOIN conv ON conv.id = credit.conv_id
GROUP BY 1, 2, 3, 4, 5, 6
ON CONFLICT (workspace_id, day, model, channel, journey_id, node_id) DO UPDATE SET
    conversions = r.conversions + excluded.conversions, revenue = r.revenue + excluded.revenue
"""  # noqa: S608 (constant expressions, no input)

EVENTS = Source(
    "contacts_event",
    (
        f"""
        INSERT INTO reporting_eventdaily AS r (workspace_id, day, name, count, revenue)
        SELECT ev.workspace_id, (ev.occurred_at AT TIME ZONE w.timezone)::date,
               left(ev.name, 200), count(*), sum({REVENUE_SQL})
        FROM contacts_event ev
        JOIN accounts_workspace w ON w.id = ev.workspace_id
        WHERE ev.id > %(low)s AND ev.id <= %(high)s
        GROUP BY 1, 2, 3
        ON CONFLICT (workspace_id, day, name)
        DO UPDATE SET count = r.count + excluded.count, revenue = r.revenue + excluded.revenue
        """,  # noqa: S608 (a constant expression, no input)
        """
        INSERT INTO reporting_segmentdaily AS r (workspace_id, day, segment, entered, exited)
        SELECT ev.workspace_id, (ev.occurred_at AT TIME ZONE w.timezone)::date,
               left(ev.properties ->> 'segment', 100),
               count(*) FILTER (WHERE ev.name = 'segment_entered'),
               count(*) FILTER (WHERE ev.name = 'segment_exited')
        FROM contacts_event ev
        JOIN accounts_workspace w ON w.id = ev.workspace_id
        WHERE ev.id > %(low)s AND ev.id <= %(high)s
          AND ev.name IN ('segment_entered', 'segment_exited')
          AND jsonb_typeof(ev.properties -> 'segment') = 'string'
        GROUP BY 1, 2, 3
        ON CONFLICT (workspace_id, day, segment)
        DO UPDATE SET entered = r.entered + excluded.entered, exited = r.exited + excluded.exited
        """,
        ATTRIBUTION_SQL,
    ),
)

SOURCES = (MESSAGES, JOURNEY_STEPS, EVENTS)


def refresh_rollups() -> dict[str, int]:
    """Count every source's new rows; answers how many rows of each were counted."""
    return {source.table: refresh_source(source) for source in SOURCES}


def refresh_source(source: Source) -> int:
    high = settled_high_id(source.table)
    if high is None:
        logger.info("Rollups: writes to %s still in flight; next run.", source.table)
        return 0
    counted = 0
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            _plan_for_chunks(cursor)
            low = _locked_watermark(cursor, source.table)
            if low >= high:
                return counted
            upto = min(high, low + CHUNK_IDS)
            for statement in source.statements:
                cursor.execute(statement, {"low": low, "high": upto})
            cursor.execute(
                f"SELECT count(*) FROM {source.table} WHERE id > %s AND id <= %s",  # noqa: S608
                [low, upto],
            )
            counted += cursor.fetchone()[0]
            cursor.execute(
                "UPDATE reporting_rollupwatermark SET last_id = %s, updated_at = now() "
                "WHERE source = %s",
                [upto, source.table],
            )


# The write transactions running in this database now (each holds a lock on its own
# transaction id; pg_locks shows them whichever role runs them).
_WRITERS_SQL = """
SELECT l.transactionid::text FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'transactionid' AND l.mode = 'ExclusiveLock' AND l.granted
  AND a.datname = current_database() AND l.pid <> pg_backend_pid()
"""


def settled_high_id(table: str) -> int | None:
    """The largest id in `table` below which no row can still appear, or None when the
    transactions in flight did not end within SETTLE_SECONDS."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT coalesce(max(id), 0) FROM {table}")  # noqa: S608
        high = cursor.fetchone()[0]
        # Read after the max: whoever holds a smaller id uncommitted is in flight now.
        cursor.execute(_WRITERS_SQL)
        in_flight = {row[0] for row in cursor.fetchall()}
        deadline = time.monotonic() + SETTLE_SECONDS
        while in_flight:
            if time.monotonic() > deadline:
                return None
            time.sleep(0.05)
            cursor.execute(_WRITERS_SQL)
            in_flight &= {row[0] for row in cursor.fetchall()}
    return high


def _plan_for_chunks(cursor) -> None:
    """A chunk is some 50,000 new rows looked up in large tables by key: index lookups
    beat hashing a whole table (10M messages) for each chunk, and the statements' cost
    crosses PostgreSQL's JIT threshold, whose compiling took most of a chunk's time
    (bench/reporting.py)."""
    cursor.execute("SET LOCAL jit = off")
    cursor.execute("SET LOCAL enable_hashjoin = off")
    cursor.execute("SET LOCAL enable_mergejoin = off")


def _locked_watermark(cursor, table: str) -> int:
    cursor.execute(
        "INSERT INTO reporting_rollupwatermark (source, last_id, updated_at) "
        "VALUES (%s, 0, now()) ON CONFLICT (source) DO NOTHING",
        [table],
    )
    cursor.execute(
        "SELECT last_id FROM reporting_rollupwatermark WHERE source = %s FOR UPDATE", [table]
    )
    return cursor.fetchone()[0]
