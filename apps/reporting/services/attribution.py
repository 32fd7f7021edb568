"""Conversions and revenue credited by channel, journey and journey step (the message it
sends) under each attribution model, side by side, from the attribution rollup."""

from collections import defaultdict

from django.db.models import Sum
from django.utils.translation import gettext as _

from apps.journeys.models import Journey
from apps.reporting.choices import AttributionModel
from apps.reporting.models import AttributionDaily
from apps.reporting.services.overview import Period, channel_label

DIMENSIONS = {
    "channel": ("channel",),
    "journey": ("journey_id",),
    "message": ("journey_id", "node_id", "channel"),
}


def attribution(workspace, period: Period, by: str = "channel") -> dict:
    """{"models": [...], "rows": [{"key", "label", <model>: {"conversions", "revenue"}}]},
    the rows ordered by last-touch revenue; conversions no message touched are "Direct"."""
    fields = DIMENSIONS[by]
    rows = AttributionDaily.objects.filter(
        workspace=workspace, day__gte=period.start, day__lte=period.end
    )
    if period.channel:
        rows = rows.filter(channel=period.channel)
    if by != "channel":
        rows = rows.exclude(journey_id=0)
    sums = rows.values("model", *fields).annotate(
        conversions=Sum("conversions"), revenue=Sum("revenue")
    )
    table: dict = defaultdict(dict)
    for row in sums:
        key = tuple(row[field] for field in fields)
        table[key][row["model"]] = {
            "conversions": round(row["conversions"] or 0, 2),
            "revenue": float(row["revenue"] or 0),
        }
    names = dict(
        Journey.objects.for_workspace(workspace)
        .filter(pk__in={key[0] for key in table} if by != "channel" else [])
        .values_list("pk", "name")
    )
    empty = {"conversions": 0, "revenue": 0.0}
    result = []
    for key, models in table.items():
        result.append(
            {
                "key": "/".join(str(part) for part in key),
                "label": _label(by, key, names),
                **{model: models.get(model, empty) for model in AttributionModel.values},
            }
        )
    result.sort(key=lambda r: (-r[AttributionModel.LAST_TOUCH]["revenue"], r["label"]))
    return {"by": by, "models": list(AttributionModel.values), "rows": result}


def _label(by: str, key: tuple, names: dict) -> str:
    if by == "channel":
        return channel_label(key[0]) if key[0] else str(_("Direct (no message)"))
    journey = names.get(key[0], f"#{key[0]}")
    if by == "journey":
        return journey
    return f"{journey} · {key[1]} ({channel_label(key[2])})"
