"""The dashboard's numbers for a period and channel, each beside the period before it, all
read from the rollups (and a few cached counts of what is true now)."""

import datetime as dt
import zoneinfo
from dataclasses import dataclass
from decimal import Decimal

from django.core.cache import cache
from django.db import connection
from django.db.models import Count, Q, Sum
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.channels.choices import ChannelType
from apps.contacts.choices import ConsentChannel
from apps.contacts.models import Consent, Contact
from apps.journeys.models import OPEN_STATES, Enrollment, Journey
from apps.reporting.choices import AttributionModel
from apps.reporting.models import AttributionDaily, JourneyDaily, MessageDaily

DEFAULT_DAYS = 30
MAX_DAYS = 731
# Counts of what is true now (contacts, consent, enrollments) scan large tables: kept for
# a few minutes, which a dashboard can live with.
NOW_COUNTS_SECONDS = 300
TOP_JOURNEYS = 5
# The model the dashboard's conversions and revenue are counted under.
DASHBOARD_MODEL = AttributionModel.LAST_TOUCH


@dataclass(frozen=True)
class Period:
    """Days start..end (both included) in the workspace's time zone, one channel or all."""

    start: dt.date
    end: dt.date
    channel: str = ""

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def previous(self) -> "Period":
        end = self.start - dt.timedelta(days=1)
        return Period(end - dt.timedelta(days=self.days - 1), end, self.channel)

    def dates(self) -> list[dt.date]:
        return [self.start + dt.timedelta(days=n) for n in range(self.days)]


class PeriodError(ValueError):
    """The period asked for cannot be shown; the message says why."""


def period_from(workspace, data) -> Period:
    """The period from query parameters `from`, `to` (YYYY-MM-DD) or `days`, and
    `channel`; the last 30 days by default. PeriodError names what is wrong."""
    today = timezone.localdate(timezone=_zone(workspace))
    channel = (data.get("channel") or "").strip()
    if channel and channel not in ChannelType.values:
        raise PeriodError(_("Unknown channel %(c)r.") % {"c": channel})
    try:
        if data.get("from") or data.get("to"):
            start = dt.date.fromisoformat(data.get("from") or "")
            end = dt.date.fromisoformat(data.get("to") or today.isoformat())
        else:
            days = int(data.get("days") or DEFAULT_DAYS)
            if days < 1:
                raise PeriodError(_("days must be 1 or more."))
            end, start = today, today - dt.timedelta(days=days - 1)
    except ValueError as exc:
        if isinstance(exc, PeriodError):
            raise
        raise PeriodError(_("Dates are YYYY-MM-DD, and days a whole number.")) from None
    if start > end:
        raise PeriodError(_("The period starts after it ends."))
    if (end - start).days >= MAX_DAYS:
        raise PeriodError(_("At most %(n)d days at a time.") % {"n": MAX_DAYS})
    return Period(start, end, channel)


def _zone(workspace) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(workspace.timezone)


def _messages(workspace, period: Period):
    rows = MessageDaily.objects.filter(
        workspace=workspace, day__gte=period.start, day__lte=period.end
    )
    return rows.filter(channel=period.channel) if period.channel else rows


def _attribution(workspace, period: Period):
    rows = AttributionDaily.objects.filter(
        workspace=workspace, model=DASHBOARD_MODEL, day__gte=period.start, day__lte=period.end
    )
    if period.channel:
        return rows.filter(channel=period.channel)
    return rows


def _totals(workspace, period: Period) -> dict:
    sums = _messages(workspace, period).aggregate(
        sent=Sum("sent"),
        delivered=Sum("delivered"),
        unique_opens=Sum("unique_opens"),
        unique_clicks=Sum("unique_clicks"),
        bounced=Sum("bounced"),
        unsubscribed=Sum("unsubscribed"),
    )
    credited = (
        _attribution(workspace, period)
        .exclude(channel="")
        .aggregate(conversions=Sum("conversions"), revenue=Sum("revenue"))
    )
    totals = {key: value or 0 for key, value in sums.items()}
    totals["conversions"] = credited["conversions"] or 0
    totals["revenue"] = credited["revenue"] or Decimal(0)
    sent = totals["sent"]
    totals["open_rate"] = _share(totals["unique_opens"], sent)
    totals["click_rate"] = _share(totals["unique_clicks"], sent)
    totals["conversion_rate"] = _share(totals["conversions"], sent)
    return totals


def _share(part, whole) -> float | None:
    return float(part) / whole if whole else None


def now_counts(workspace) -> dict:
    """Contacts, reachable contacts per channel, contacts active in journeys: now."""
    # created_at too: a database rebuilt from scratch reuses ids.
    key = f"reporting:now:{workspace.pk}:{workspace.created_at.timestamp()}"
    counts = cache.get(key)
    if counts is None:
        reachable = dict(
            Consent.objects.for_workspace(workspace)
            .filter(status="subscribed")
            .values("channel")
            .annotate(n=Count("id"))
            .values_list("channel", "n")
        )
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(DISTINCT contact_id) FROM journeys_enrollment "
                "WHERE workspace_id = %s AND state = ANY(%s)",
                [workspace.pk, list(OPEN_STATES)],
            )
            in_journeys = cursor.fetchone()[0]
        counts = {
            "contacts": Contact.objects.for_workspace(workspace).count(),
            "reachable": reachable,
            "in_journeys": in_journeys,
        }
        cache.set(key, counts, NOW_COUNTS_SECONDS)
    return counts


def overview(workspace, period: Period) -> dict:
    """Everything the dashboard shows, as plain data (the API answers it as JSON)."""
    current, previous = _totals(workspace, period), _totals(workspace, period.previous())
    now = now_counts(workspace)
    return {
        "period": {
            "from": period.start.isoformat(),
            "to": period.end.isoformat(),
            "channel": period.channel,
            "previous_from": period.previous().start.isoformat(),
            "previous_to": period.previous().end.isoformat(),
            "attribution_model": DASHBOARD_MODEL,
        },
        "kpis": _kpis(current, previous, now),
        "over_time": over_time(workspace, period),
        "channels": channel_comparison(workspace, period),
        "top_journeys": top_journeys(workspace, period),
    }


KPI_LABELS = {
    "contacts": _("Contacts"),
    "in_journeys": _("Active in journeys"),
    "sent": _("Messages sent"),
    "open_rate": _("Open rate"),
    "click_rate": _("Click rate"),
    "conversion_rate": _("Conversion rate"),
    "revenue": _("Attributed revenue"),
}


def _kpis(current: dict, previous: dict, now: dict) -> list[dict]:
    # What is true now has no previous period to compare with ("compared": False).
    tiles = [
        {"key": "contacts", "value": now["contacts"], "format": "number"},
        {"key": "in_journeys", "value": now["in_journeys"], "format": "number"},
    ]
    for channel, label in ConsentChannel.choices:
        tiles.append(
            {
                "key": f"reachable_{channel}",
                "label": _("Reachable by %(channel)s") % {"channel": label},
                "value": now["reachable"].get(channel, 0),
                "format": "number",
            }
        )
    for tile in tiles:
        tile |= {"previous": None, "compared": False}
    for key, kind in (("sent", "number"), ("open_rate", "percent"), ("click_rate", "percent"),
                      ("conversion_rate", "percent"), ("revenue", "money")):  # fmt: skip
        tiles.append(
            {"key": key, "value": current[key], "previous": previous[key], "format": kind,
             "compared": True}
        )  # fmt: skip
    for tile in tiles:
        tile.setdefault("label", str(KPI_LABELS.get(tile["key"], tile["key"])))
        tile["change"] = _change(tile["value"], tile["previous"])
        if isinstance(tile["value"], Decimal):
            tile["value"] = float(tile["value"])
        if isinstance(tile["previous"], Decimal):
            tile["previous"] = float(tile["previous"])
    return tiles


def _change(value, previous) -> float | None:
    """Relative change against the previous period; None when there is nothing to compare."""
    if value is None or not previous:
        return None
    return float(value) / float(previous) - 1


def over_time(workspace, period: Period) -> dict:
    """Per channel and day: sent, unique opens and unique clicks (every day present)."""
    rows = (
        _messages(workspace, period)
        .values("channel", "day")
        .annotate(sent=Sum("sent"), opens=Sum("unique_opens"), clicks=Sum("unique_clicks"))
    )
    days = period.dates()
    series: dict[str, dict[str, list[int]]] = {}
    index = {day: n for n, day in enumerate(days)}
    for row in rows:
        channel = series.setdefault(
            row["channel"], {name: [0] * len(days) for name in ("sent", "opens", "clicks")}
        )
        for name in ("sent", "opens", "clicks"):
            channel[name][index[row["day"]]] += row[name] or 0
    return {"days": [day.isoformat() for day in days], "channels": series}


def channel_comparison(workspace, period: Period) -> list[dict]:
    sums = {
        row["channel"]: row
        for row in _messages(workspace, period)
        .values("channel")
        .annotate(
            sent=Sum("sent"),
            delivered=Sum("delivered"),
            opens=Sum("unique_opens"),
            clicks=Sum("unique_clicks"),
            bounced=Sum("bounced"),
            unsubscribed=Sum("unsubscribed"),
        )
    }
    credited = {
        row["channel"]: row
        for row in _attribution(workspace, period)
        .exclude(channel="")
        .values("channel")
        .annotate(conversions=Sum("conversions"), revenue=Sum("revenue"))
    }
    comparison = []
    for channel in sorted(set(sums) | set(credited)):
        row = sums.get(channel, {})
        sent = row.get("sent") or 0
        conversions = (credited.get(channel) or {}).get("conversions") or 0
        comparison.append(
            {
                "channel": channel,
                "label": channel_label(channel),
                "sent": sent,
                "delivered": row.get("delivered") or 0,
                "unique_opens": row.get("opens") or 0,
                "unique_clicks": row.get("clicks") or 0,
                "bounced": row.get("bounced") or 0,
                "unsubscribed": row.get("unsubscribed") or 0,
                "open_rate": _share(row.get("opens") or 0, sent),
                "click_rate": _share(row.get("clicks") or 0, sent),
                "conversions": round(conversions, 2),
                "conversion_rate": _share(conversions, sent),
                "revenue": float((credited.get(channel) or {}).get("revenue") or 0),
            }
        )
    return comparison


def channel_label(channel: str) -> str:
    return str(ChannelType(channel).label) if channel in ChannelType.values else channel


def top_journeys(workspace, period: Period, limit: int = TOP_JOURNEYS) -> list[dict]:
    """The journeys with the most conversions credited to their messages in the period
    (then goal conversions, then entries); with a channel chosen, the journeys that sent
    on it, credited for its messages only."""
    steps = {
        row["journey_id"]: row
        for row in JourneyDaily.objects.filter(
            workspace=workspace, day__gte=period.start, day__lte=period.end
        )
        .values("journey_id")
        .annotate(
            entered=Sum("count", filter=Q(outcome="entered")),
            converted=Sum("count", filter=Q(outcome="converted")),
        )
    }
    sent = dict(
        _messages(workspace, period)
        .exclude(journey_id=0)
        .values("journey_id")
        .annotate(n=Sum("sent"))
        .values_list("journey_id", "n")
    )
    credited = {
        row["journey_id"]: row
        for row in _attribution(workspace, period)
        .exclude(journey_id=0)
        .values("journey_id")
        .annotate(conversions=Sum("conversions"), revenue=Sum("revenue"))
    }
    journeys = set(sent) | set(credited) if period.channel else set(steps) | set(sent)
    rows = []
    for journey_id in journeys:
        step = steps.get(journey_id, {})
        credit = credited.get(journey_id, {})
        entered = step.get("entered") or 0
        rows.append(
            {
                "journey": journey_id,
                "entered": entered,
                "sent": sent.get(journey_id) or 0,
                "converted": step.get("converted") or 0,
                "conversion_rate": _share(step.get("converted") or 0, entered),
                "attributed_conversions": round(credit.get("conversions") or 0, 2),
                "attributed_revenue": float(credit.get("revenue") or 0),
            }
        )
    rows.sort(
        key=lambda r: (-r["attributed_conversions"], -r["converted"], -r["entered"], r["journey"])
    )
    rows = rows[:limit]
    names = dict(
        Journey.objects.for_workspace(workspace)
        .filter(pk__in=[r["journey"] for r in rows])
        .values_list("pk", "name")
    )
    for row in rows:
        row["name"] = names.get(row["journey"], f"#{row['journey']}")
    return rows


def workspace_has_activity(workspace) -> bool:
    return (
        Contact.objects.for_workspace(workspace).exists()
        or MessageDaily.objects.filter(workspace=workspace).exists()
        or Enrollment.objects.filter(workspace=workspace).exists()
    )
