"""Date-attribute entries (a renewal date, a birthday): the contact enters on the day the
attribute plus `offset_days` falls on, at `at` o'clock in the contact's own time zone.
With `"yearly": true` only the month and day count (birthdays, anniversaries)."""

import datetime as dt
from types import SimpleNamespace

from django.db import DataError, connection, transaction
from django.utils import timezone

from apps.channels.services.policy import contact_timezone
from apps.contacts.models import Contact
from apps.journeys.choices import JourneyStatus
from apps.journeys.graph import parse_time_of_day
from apps.journeys.models import Journey
from apps.journeys.services import engine, triggers

# Candidates are narrowed in SQL to dates within a day of today in UTC (every time zone's
# today is among them), then checked exactly in Python in the contact's zone.
CANDIDATES_SQL = """
SELECT c.id, left(c.attributes ->> %(attribute)s, 10)
FROM contacts_contact c
WHERE c.workspace_id = %(workspace)s
  AND c.attributes ->> %(attribute)s ~ '^\\d{4}-\\d{2}-\\d{2}'
  AND {window}
"""
EXACT_WINDOW = (
    "left(c.attributes ->> %(attribute)s, 10)::date + %(offset)s "
    "BETWEEN %(today)s::date - 1 AND %(today)s::date + 1"
)
YEARLY_WINDOW = (
    "to_char(left(c.attributes ->> %(attribute)s, 10)::date + %(offset)s, 'MM-DD') "
    "IN (%(yesterday)s, %(today_md)s, %(tomorrow)s)"
)


def enroll_due_dates(now: dt.datetime | None = None) -> int:
    """Enroll every contact whose date has come in every live date-entry journey."""
    now = now or timezone.now()
    enrolled = 0
    for journey in Journey.objects.filter(status=JourneyStatus.LIVE).select_related(
        "live_version", "workspace"
    ):
        entry = (journey.live_version.graph.get("entry") or {}) if journey.live_version else {}
        if entry.get("type") == "date_attribute":
            enrolled += _enroll_journey(journey, entry, now)
    return enrolled


def _enroll_journey(journey: Journey, entry: dict, now: dt.datetime) -> int:
    attribute, offset = entry["attribute"], int(entry.get("offset_days", 0))
    at = parse_time_of_day(entry.get("at", "09:00"))
    yearly = bool(entry.get("yearly"))
    today = now.date()
    params = {
        "attribute": attribute,
        "offset": offset,
        "workspace": journey.workspace_id,
        "today": today.isoformat(),
        "today_md": today.strftime("%m-%d"),
        "yesterday": (today - dt.timedelta(days=1)).strftime("%m-%d"),
        "tomorrow": (today + dt.timedelta(days=1)).strftime("%m-%d"),
    }
    sql = CANDIDATES_SQL.replace("{window}", YEARLY_WINDOW if yearly else EXACT_WINDOW)
    with connection.cursor() as cursor:
        try:
            with transaction.atomic():
                cursor.execute(sql, params)
                candidates = cursor.fetchall()
        except DataError:
            # A text shaped like a date that is none (2024-02-30) fails the cast for the
            # whole query: then every date-shaped value is checked here instead.
            cursor.execute(CANDIDATES_SQL.replace("{window}", "TRUE"), params)
            candidates = cursor.fetchall()
    contacts = Contact.objects.in_bulk([pk for pk, _date in candidates])
    enrolled = 0
    for pk, text in candidates:
        contact = contacts.get(pk)
        occurrence = _occurrence(text, offset, yearly, contact, journey, now)
        if contact is None or occurrence is None:
            continue
        local = now.astimezone(contact_timezone(contact, journey.workspace))
        if occurrence != local.date() or local.time().replace(tzinfo=None) < at:
            continue
        with transaction.atomic():
            batch = engine.Batch(now=now)
            # What templates see as the triggering event: the date that came.
            entry = SimpleNamespace(name="date_attribute", properties={attribute: text},
                                    occurred_at=now)  # fmt: skip
            enrollment = triggers.enroll(
                journey, contact, batch, event=entry, key=occurrence.isoformat()
            )
            if enrollment is not None:
                engine.save(batch, [enrollment])
                enrolled += 1
    return enrolled


def _occurrence(text, offset, yearly, contact, journey, now) -> dt.date | None:
    try:
        date = dt.date.fromisoformat(text) + dt.timedelta(days=offset)
    except ValueError:
        return None
    if not yearly or contact is None:
        return date
    local_year = now.astimezone(contact_timezone(contact, journey.workspace)).year
    try:
        return date.replace(year=local_year)
    except ValueError:  # 29 February in a common year: the 28th
        return date.replace(year=local_year, day=28)
