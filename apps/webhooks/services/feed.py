"""The feed: new rows of the raw tables become deliveries for the subscriptions that want
them, without any call from the code that writes those rows.

Each source is read in id order from its position, like the reporting rollups (and with
their `settled_high_id`, so a row whose transaction was still open is not skipped). A
chunk's deliveries are inserted in one INSERT … SELECT and the position moves on in the
same transaction; (subscription, event_id) is unique and the insert does nothing on a
conflict, so a chunk read twice queues nothing twice.

Contact updates have no id to follow: they are read by `updated_at`, up to a moment
UPDATE_LAG behind the database's clock (after the writes in flight have ended), because
`updated_at` is stamped by the application before its transaction commits. A contact
changed several times between two runs gives one `contact.updated` carrying its state
then. A change within a second of the contact's creation counts as part of creating it.

A subscription only receives events that happened after it was created: history is never
replayed into a new subscription.
"""

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.db import connection, transaction

from apps.reporting.services.rollups import settled_high_id

logger = logging.getLogger(__name__)

CHUNK_IDS = 20_000
UPDATE_LAG = timedelta(seconds=5)

# The columns every statement fills, from a source query `x` with workspace_id, event_id,
# event_type, at (when it happened) and data (jsonb).
_INSERT = """
INSERT INTO webhooks_webhookdelivery
    (workspace_id, subscription_id, event_id, event_type, payload, status, attempts,
     next_attempt_at, created_at, request_headers, request_body, response_body, error)
SELECT x.workspace_id, s.id, x.event_id, x.event_type,
       jsonb_build_object('id', x.event_id, 'type', x.event_type, 'created_at', x.at,
                          'workspace', jsonb_build_object('id', w.id, 'slug', w.slug),
                          'data', x.data),
       'pending', 0, now(), now(), '{}'::jsonb, '', '', ''
FROM ({source}) x
JOIN webhooks_webhooksubscription s
  ON s.workspace_id = x.workspace_id AND s.is_active AND x.at >= s.created_at
 AND s.event_types && ARRAY[x.event_type, '*']::varchar[]
JOIN accounts_workspace w ON w.id = x.workspace_id
ON CONFLICT (subscription_id, event_id) DO NOTHING
"""

_CONTACT_BRIEF = "jsonb_build_object('id', c.id, 'external_id', c.external_id, 'email', c.email)"
_CONTACT_FULL = """jsonb_build_object('id', c.id, 'external_id', c.external_id,
    'email', c.email, 'phone', c.phone, 'first_name', c.first_name, 'last_name', c.last_name,
    'timezone', c.timezone, 'locale', c.locale, 'attributes', c.attributes,
    'created_at', c.created_at, 'updated_at', c.updated_at)"""

# contacts_event: segment entered/exited, unsubscribed, and the workspace's conversions.
_EVENTS = f"""
SELECT ev.workspace_id, 'evt_ce_' || ev.id AS event_id,
       CASE ev.name WHEN 'segment_entered' THEN 'segment.entered'
                    WHEN 'segment_exited' THEN 'segment.exited'
                    ELSE 'contact.unsubscribed' END AS event_type,
       ev.received_at AS at,
       jsonb_build_object('contact', {_CONTACT_BRIEF}, 'occurred_at', ev.occurred_at)
       || CASE WHEN ev.name = 'unsubscribed'
               THEN jsonb_build_object('properties', ev.properties)
               ELSE jsonb_build_object('segment', jsonb_build_object(
                   'slug', ev.properties ->> 'segment',
                   'name', ev.properties ->> 'segment_name')) END AS data
FROM contacts_event ev
JOIN contacts_contact c ON c.id = ev.contact_id
WHERE ev.id > %(low)s AND ev.id <= %(high)s
  AND ev.name IN ('segment_entered', 'segment_exited', 'unsubscribed')
UNION ALL
SELECT ev.workspace_id, 'evt_cv_' || ev.id, 'conversion', ev.received_at,
       jsonb_build_object('contact', {_CONTACT_BRIEF}, 'occurred_at', ev.occurred_at,
                          'event', ev.name, 'properties', ev.properties)
FROM contacts_event ev
JOIN contacts_contact c ON c.id = ev.contact_id
LEFT JOIN reporting_attributionsettings a ON a.workspace_id = ev.workspace_id
WHERE ev.id > %(low)s AND ev.id <= %(high)s
  AND coalesce(a.conversion_events, '["purchase"]'::jsonb) ? ev.name
"""  # noqa: S608 (constant expressions, no input)

# journeys_journeystep: entered, completed, exited.
_STEPS = f"""
SELECT en.workspace_id, 'evt_js_' || st.id AS event_id,
       CASE st.outcome WHEN 'entered' THEN 'journey.enrolled'
                       WHEN 'completed' THEN 'journey.completed'
                       ELSE 'journey.exited' END AS event_type,
       st.at,
       jsonb_build_object('contact', {_CONTACT_BRIEF},
                          'journey', jsonb_build_object('id', j.id, 'name', j.name),
                          'enrollment_id', en.id, 'step', st.node_id,
                          'detail', st.detail) AS data
FROM journeys_journeystep st
JOIN journeys_enrollment en ON en.id = st.enrollment_id
JOIN journeys_journey j ON j.id = en.journey_id
JOIN contacts_contact c ON c.id = en.contact_id
WHERE st.id > %(low)s AND st.id <= %(high)s
  AND st.outcome IN ('entered', 'completed', 'exited')
"""  # noqa: S608

# channels_messageevent: sent, delivered, opened, clicked (with the URL), bounced.
_MESSAGES = f"""
SELECT m.workspace_id, 'evt_me_' || e.id AS event_id, 'message.' || e.kind AS event_type,
       e.at,
       jsonb_build_object('contact', {_CONTACT_BRIEF},
                          'message', jsonb_build_object(
                              'id', m.id, 'channel', ch.type, 'template', t.slug,
                              'subject', m.subject, 'journey_id', m.journey_id,
                              'step', nullif(m.node_id, '')),
                          'detail', CASE WHEN e.kind <> 'clicked' THEN e.detail END,
                          'url', CASE WHEN e.kind = 'clicked' THEN e.detail END) AS data
FROM channels_messageevent e
JOIN channels_message m ON m.id = e.message_id
JOIN channels_channel ch ON ch.id = m.channel_id
LEFT JOIN channels_templateversion tv ON tv.id = m.template_version_id
LEFT JOIN channels_template t ON t.id = tv.template_id
JOIN contacts_contact c ON c.id = m.contact_id
WHERE e.id > %(low)s AND e.id <= %(high)s
  AND e.kind IN ('sent', 'delivered', 'opened', 'clicked', 'bounced')
"""  # noqa: S608

# contacts_contact: created (by id).
_CREATED = f"""
SELECT c.workspace_id, 'evt_cc_' || c.id AS event_id, 'contact.created' AS event_type,
       c.created_at AS at, jsonb_build_object('contact', {_CONTACT_FULL}) AS data
FROM contacts_contact c
WHERE c.id > %(low)s AND c.id <= %(high)s
"""  # noqa: S608

# contacts_contact: updated (by updated_at), only in workspaces that listen for it.
_UPDATED = f"""
SELECT c.workspace_id,
       'evt_cu_' || c.id || '_' || (extract(epoch FROM c.updated_at) * 1000000)::bigint
           AS event_id,
       'contact.updated' AS event_type, c.updated_at AS at,
       jsonb_build_object('contact', {_CONTACT_FULL}) AS data
FROM contacts_contact c
WHERE c.updated_at > %(low_at)s AND c.updated_at <= %(high_at)s
  AND c.updated_at > c.created_at + interval '1 second'
  AND c.workspace_id IN (
      SELECT workspace_id FROM webhooks_webhooksubscription
      WHERE is_active AND event_types && ARRAY['contact.updated', '*']::varchar[])
"""  # noqa: S608


def _with_deliveries(source: str) -> str:
    return _INSERT.replace("{source}", source)


@dataclass(frozen=True)
class Source:
    key: str  # the position's name
    table: str
    statement: str


SOURCES = (
    Source("contacts_event", "contacts_event", _with_deliveries(_EVENTS)),
    Source("journeys_journeystep", "journeys_journeystep", _with_deliveries(_STEPS)),
    Source("channels_messageevent", "channels_messageevent", _with_deliveries(_MESSAGES)),
    Source("contacts_contact", "contacts_contact", _with_deliveries(_CREATED)),
)
UPDATED_SOURCE = "contacts_contact.updated_at"
_UPDATED_STATEMENT = _with_deliveries(_UPDATED)


def run_feed() -> dict[str, int]:
    """Turn every source's new rows into deliveries; answers how many were queued by each."""
    queued = {source.key: feed_source(source) for source in SOURCES}
    queued[UPDATED_SOURCE] = feed_contact_updates()
    return queued


def _any_subscription() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT EXISTS (SELECT 1 FROM webhooks_webhooksubscription WHERE is_active)")
        return cursor.fetchone()[0]


def feed_source(source: Source) -> int:
    high = settled_high_id(source.table)
    if high is None:
        logger.info("Webhook feed: writes to %s still in flight; next run.", source.table)
        return 0
    # With no subscription anywhere, nothing can match: skip straight to the end.
    listening = _any_subscription()
    queued = 0
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            low = _locked_position(cursor, source.key)
            if low >= high:
                return queued
            upto = min(high, low + CHUNK_IDS) if listening else high
            if listening:
                cursor.execute(source.statement, {"low": low, "high": upto})
                queued += cursor.rowcount
            cursor.execute(
                "UPDATE webhooks_webhookfeedposition SET last_id = %s, updated_at = now() "
                "WHERE source = %s",
                [upto, source.key],
            )


def feed_contact_updates() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement_timestamp() - %s", [UPDATE_LAG])
        high_at = cursor.fetchone()[0]
    if settled_high_id("contacts_contact") is None:
        return 0
    with transaction.atomic(), connection.cursor() as cursor:
        _locked_position(cursor, UPDATED_SOURCE)
        cursor.execute(
            "SELECT last_at FROM webhooks_webhookfeedposition WHERE source = %s",
            [UPDATED_SOURCE],
        )
        low_at = cursor.fetchone()[0]
        if low_at is None:
            # The first run starts now: earlier changes are history.
            low_at = high_at
        queued = 0
        if low_at < high_at:
            cursor.execute(_UPDATED_STATEMENT, {"low_at": low_at, "high_at": high_at})
            queued = cursor.rowcount
        cursor.execute(
            "UPDATE webhooks_webhookfeedposition SET last_at = %s, updated_at = now() "
            "WHERE source = %s",
            [max(low_at, high_at), UPDATED_SOURCE],
        )
        return queued


def _locked_position(cursor, key: str) -> int:
    cursor.execute(
        "INSERT INTO webhooks_webhookfeedposition (source, last_id, updated_at) "
        "VALUES (%s, 0, now()) ON CONFLICT (source) DO NOTHING",
        [key],
    )
    cursor.execute(
        "SELECT last_id FROM webhooks_webhookfeedposition WHERE source = %s FOR UPDATE", [key]
    )
    return cursor.fetchone()[0]
