"""The customer insight page: RFM groups, cohort retention, lifecycle flows, engagement,
best send hour and channel reach, all read from the workspace's latest snapshot (computed
by a Celery task, never from raw events on a page view); the contacts of an RFM cell, and
saving a cell as a segment."""

from django.contrib import messages
from django.core.cache import cache
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import content_disposition_header
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers

from apps.accounts.access import EDIT, workspace_view
from apps.contacts.views.contacts import wants_partial
from apps.contacts.views.exports import csv_lines
from apps.reporting import insight_charts as charts
from apps.reporting.services import insight
from apps.reporting.services.overview import channel_label

CUSTOMERS_PER_PAGE = 50
# A snapshot is replaced every 15 minutes; its figures are kept a little longer.
FIGURES_SECONDS = 3600
DEFAULT_LIFECYCLE_DAYS = "90"


def _choices(query, data: dict | None) -> dict:
    """The page's filters: the lifecycle period and the channel of the send-hour chart."""
    periods = [str(days) for days in insight.LIFECYCLE_PERIODS]
    lifecycle = query.get("lifecycle")
    if lifecycle not in periods:
        lifecycle = DEFAULT_LIFECYCLE_DAYS
    channels = sorted((data or {}).get("send_hour", {}).get("channels", {}))
    channel = query.get("channel") or ""
    return {
        "lifecycle": lifecycle,
        "lifecycle_periods": periods,
        "channel": channel if channel in channels else "",
        "send_hour_channels": [(c, channel_label(c)) for c in channels],
    }


def _rfm_rows(rfm: dict) -> list[dict]:
    """The grid as rows (most recent first) of cells, with their labels and keys."""
    recency, frequency = charts.recency_labels(), charts.frequency_labels()
    cells = {(c["recency"], c["frequency"]): c for c in rfm["cells"]}
    rows = []
    for r in reversed(insight.SCORES):
        row = []
        for f in insight.SCORES:
            cell = dict(cells[(r, f)])
            cell["key"] = insight.cell_key(r, f)
            cell["group_label"] = insight.RFM_GROUPS[cell["group"]][0]
            cell["frequency_label"] = frequency[f]
            row.append(cell)
        rows.append({"recency": r, "label": recency[r], "cells": row})
    return rows


def _figures(snapshot, period: dict, grid: list, choices: dict) -> dict:
    """The page's Plotly figures: built once per snapshot, filter and language, then read
    from the cache (building them costs more than the rest of the page)."""
    key = (
        # computed_at too: a database rebuilt from scratch reuses ids.
        f"reporting:insight:figures:{snapshot.pk}:{snapshot.computed_at.timestamp()}:"
        f"{get_language()}:"
        f"{choices['lifecycle']}:{choices['channel']}"
    )
    figures = cache.get(key)
    if figures is None:
        data = snapshot.data
        figures = {
            "rfm_chart": charts.rfm_grid(data["rfm"]),
            "cohort_chart": charts.cohort_retention(data["cohorts"]),
            "lifecycle_chart": charts.lifecycle_flows(period),
            "engagement_chart": charts.engagement_histogram(data["engagement"]),
            "send_hour_chart": charts.best_send_hour(grid),
            "reach_chart": charts.channel_reach(data["reach"]),
        }
        cache.set(key, figures, FIGURES_SECONDS)
    return figures


def _page_context(request, snapshot) -> dict:
    workspace = request.workspace
    data = snapshot.data if snapshot else None
    choices = _choices(request.GET, data)
    context = {
        "snapshot": snapshot,
        "data": data,
        "pending": insight.refresh_pending(workspace, snapshot),
        "query": request.GET.urlencode(),
        **choices,
    }
    if not data:
        return context
    period = data["lifecycle"]["periods"][choices["lifecycle"]]
    grid = data["send_hour"]["channels"].get(choices["channel"]) or data["send_hour"]["opens"]
    context |= _figures(snapshot, period, grid, choices)
    context |= {
        "rfm_rows": _rfm_rows(data["rfm"]),
        "frequency_labels": charts.frequency_labels(),
        "rfm_groups": [
            {**group, "label": insight.RFM_GROUPS[group["group"]][0]}
            for group in data["rfm"]["groups"]
        ],
        "lifecycle_period": period,
        "lifecycle_stayed": sum(
            f["contacts"]
            for f in period["flows"]
            if f["to"] == "prospect" and f["from"] in ("prospect", "joined")
        ),
        "best_slot": charts.best_slot(grid),
        "send_hour_total": sum(map(sum, grid)),
        "reach_channels": [
            (charts.channel_names([channel]), data["reach"]["channels"].get(channel, 0))
            for channel in insight.REACH_BITS
        ],
    }
    return context


@require_GET
@workspace_view()
@vary_on_headers("HX-Request")
def insight_page(request):
    snapshot = insight.latest_snapshot(request.workspace)
    if snapshot is None:
        insight.request_refresh(request.workspace)
    context = _page_context(request, snapshot)
    if wants_partial(request):
        return render(request, "reporting/partials/insight_body.html", context)
    return render(request, "reporting/insight.html", context)


@require_GET
@workspace_view()
def insight_status(request):
    """Polled while a refresh runs: reloads the page once a newer snapshot is in."""
    snapshot = insight.latest_snapshot(request.workspace)
    shown = request.GET.get("shown", "")
    if snapshot is not None and str(snapshot.pk) != shown:
        response = HttpResponse(status=204)
        response["HX-Refresh"] = "true"
        return response
    context = {
        "snapshot": snapshot,
        "pending": insight.refresh_pending(request.workspace, snapshot),
    }
    return render(request, "reporting/partials/insight_status.html", context)


@require_POST
@workspace_view(change=EDIT)
def insight_recompute(request):
    insight.request_refresh(request.workspace, force=True)
    snapshot = insight.latest_snapshot(request.workspace)
    if wants_partial(request):
        if snapshot is not None and str(snapshot.pk) != request.POST.get("shown", ""):
            # Computed already (a worker was quick, or tasks run inline): show it.
            response = HttpResponse(status=204)
            response["HX-Refresh"] = "true"
            return response
        context = {
            "snapshot": snapshot,
            "pending": insight.refresh_pending(request.workspace, snapshot),
        }
        return render(request, "reporting/partials/insight_status.html", context)
    messages.info(request, _("The insight is being recomputed; this page shows it when done."))
    return redirect("reporting:insight")


def _selection(key: str) -> insight.RfmSelection:
    selection = insight.rfm_selection(key)
    if selection is None:
        raise Http404
    return selection


@require_GET
@workspace_view()
@vary_on_headers("HX-Request")
def insight_rfm_customers(request, selection: str):
    """The contacts the latest snapshot counted in a cell or group of the RFM grid."""
    chosen = _selection(selection)
    after = request.GET.get("after", "")
    before = int(after) if after.isdigit() and len(after) < 19 else None
    page = insight.rfm_customers(request.workspace, chosen, before, CUSTOMERS_PER_PAGE + 1)
    recency, frequency = charts.recency_labels(), charts.frequency_labels()
    context = {
        "selection": chosen,
        "cells": [
            _("last purchase %(recency)s, %(frequency)s purchases")
            % {"recency": recency[r], "frequency": frequency[f]}
            for r, f in sorted(chosen.cells, reverse=True)
        ],
        "customers": page[:CUSTOMERS_PER_PAGE],
        "next_after": page[CUSTOMERS_PER_PAGE - 1].contact_id
        if len(page) > CUSTOMERS_PER_PAGE
        else None,
        "is_first_page": before is None,
        "snapshot": insight.latest_snapshot(request.workspace),
    }
    if wants_partial(request):
        return render(request, "reporting/partials/insight_customers.html", context)
    return render(request, "reporting/insight_customers.html", context)


@require_POST
@workspace_view(change=EDIT)
def insight_save_segment(request, selection: str):
    """Save an RFM cell or group as a segment (or, when the rule language cannot express
    it, as a static list), then show it."""
    chosen = _selection(selection)
    saved = insight.save_rfm_selection(request.workspace, chosen, request.user)
    if saved.segment is not None:
        if saved.created:
            messages.success(
                request, _("The segment %(name)s was saved.") % {"name": saved.segment.name}
            )
        else:
            messages.info(
                request,
                _("This is already saved as the segment %(name)s.") % {"name": saved.segment.name},
            )
        return redirect("segments:detail", pk=saved.segment.pk)
    messages.success(
        request,
        _(
            "Several events count as purchases here, which a segment rule cannot add up: the "
            "contacts were saved as the static list %(name)s."
        )
        % {"name": saved.contact_list.name},
    )
    return redirect(reverse("contacts:list") + f"?list={saved.contact_list.slug}")


def _rfm_export(data: dict):
    frequency, recency = charts.frequency_labels(), charts.recency_labels()
    for cell in data["rfm"]["cells"]:
        yield [
            cell["recency"],
            recency[cell["recency"]],
            cell["frequency"],
            frequency[cell["frequency"]],
            cell["group"],
            cell["contacts"],
            cell["purchases"],
            cell["revenue"],
        ]


def _send_hour_export(data: dict):
    grids = [("", data["send_hour"]["opens"]), *data["send_hour"]["channels"].items()]
    days = charts.weekday_names()
    for channel, grid in grids:
        for day, hours in enumerate(grid):
            for hour, opens in enumerate(hours):
                yield [channel, day + 1, days[day], hour, opens]


# Each chart's numbers as CSV: (columns, rows from the snapshot's data).
EXPORTS = {
    "rfm": (
        [
            "recency_score",
            "last_purchase",
            "frequency_score",
            "purchases_range",
            "group",
            "customers",
            "purchases",
            "revenue",
        ],
        _rfm_export,
    ),
    "rfm_groups": (
        ["group", "customers", "revenue"],
        lambda data: ([g["group"], g["contacts"], g["revenue"]] for g in data["rfm"]["groups"]),
    ),
    "cohorts": (
        ["cohort", "contacts", "month", "active", "share"],
        lambda data: (
            [
                row["cohort"],
                row["contacts"],
                n,
                active,
                round(active / row["contacts"], 4) if row["contacts"] else "",
            ]
            for row in data["cohorts"]["rows"]
            for n, active in enumerate(row["active"])
        ),
    ),
    "lifecycle": (
        ["period_days", "from_date", "to_date", "stage_at_start", "stage_at_end", "contacts"],
        lambda data: (
            [period["days"], period["from"], period["to"], f["from"], f["to"], f["contacts"]]
            for period in data["lifecycle"]["periods"].values()
            for f in period["flows"]
        ),
    ),
    "engagement": (
        ["score_from", "score_to", "contacts"],
        lambda data: ([b["from"], b["to"], b["contacts"]] for b in data["engagement"]["bins"]),
    ),
    "send_hour": (["channel", "isoweekday", "weekday", "hour", "opens"], _send_hour_export),
    "reach": (
        ["channels", "contacts"],
        lambda data: (
            *(["+".join(c["channels"]), c["contacts"]] for c in data["reach"]["combinations"]),
            ["", data["reach"]["unreachable"]],
        ),
    ),
}


@require_GET
@workspace_view()
def insight_export(request, chart: str):
    """The numbers behind one of the insight charts, from the latest snapshot, as CSV
    (the header alone until a snapshot is in)."""
    if chart not in EXPORTS:
        raise Http404
    snapshot = insight.latest_snapshot(request.workspace)
    columns, rows = EXPORTS[chart]

    def lines():
        yield columns
        if snapshot is not None:
            for row in rows(snapshot.data):
                yield ["" if cell is None else str(cell) for cell in row]

    response = StreamingHttpResponse(csv_lines(lines()), content_type="text/csv; charset=utf-8")
    stamp = f"-{snapshot.computed_at:%Y%m%d-%H%M}" if snapshot else ""
    response["Content-Disposition"] = content_disposition_header(
        as_attachment=True, filename=f"insight-{chart}{stamp}.csv"
    )
    return response
