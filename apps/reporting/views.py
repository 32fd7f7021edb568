from django.http import Http404, HttpResponseBadRequest, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import formats
from django.utils.http import content_disposition_header
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers

from apps.accounts.access import workspace_view
from apps.accounts.models import ApiKey, Membership
from apps.channels.choices import ChannelType
from apps.contacts.views.contacts import wants_partial
from apps.contacts.views.exports import csv_lines
from apps.journeys.models import Journey
from apps.reporting import charts
from apps.reporting.choices import AttributionModel
from apps.reporting.services import attribution as attribution_service
from apps.reporting.services import journey_report as journey_reports_service
from apps.reporting.services import overview as reports

PRESET_DAYS = (7, 30, 90, 365)


def _display(value, kind: str) -> str:
    if value is None:
        return "-"
    if kind == "percent":
        return formats.number_format(value * 100, 1) + " %"
    if kind == "money":
        return formats.number_format(value, 2, use_l10n=True, force_grouping=True)
    return formats.number_format(value, 0, force_grouping=True)


def _tiles(kpis: list[dict]) -> list[dict]:
    for tile in kpis:
        tile["display"] = _display(tile["value"], tile["format"])
        tile["previous_display"] = _display(tile["previous"], tile["format"])
        change = tile["change"]
        tile["change_display"] = None if change is None else f"{change * 100:+.0f} %"
        tile["trend"] = "" if not change else ("up" if change > 0 else "down")
    return kpis


@require_GET
@workspace_view()
@vary_on_headers("HX-Request")
def dashboard(request):
    workspace = request.workspace
    try:
        period = reports.period_from(workspace, request.GET)
    except reports.PeriodError as error:
        period, problem = reports.period_from(workspace, {}), str(error)
    else:
        problem = ""
    data = reports.overview(workspace, period)
    context = {
        "period": period,
        "problem": problem,
        "data": data,
        "tiles": _tiles(data["kpis"]),
        "over_time_chart": charts.over_time(data["over_time"]),
        "channel_chart": data["channels"] and charts.channel_comparison(data["channels"]),
        "journey_chart": data["top_journeys"] and charts.top_journeys(data["top_journeys"]),
        "preset_days": PRESET_DAYS,
        "channels": ChannelType.choices,
        "query": request.GET.urlencode(),
    }
    if wants_partial(request):
        return render(request, "reporting/partials/dashboard_body.html", context)
    context |= {
        "has_activity": reports.workspace_has_activity(workspace),
        "member_count": Membership.objects.for_workspace(workspace).count(),
        "has_api_key": ApiKey.objects.for_workspace(workspace)
        .filter(revoked_at__isnull=True)
        .exists(),
    }
    return render(request, "reporting/dashboard.html", context)


CHANNEL_COLUMNS = ["channel", "sent", "delivered", "unique_opens", "unique_clicks", "bounced",
                   "unsubscribed", "open_rate", "click_rate", "conversions", "conversion_rate",
                   "revenue"]  # fmt: skip
TOP_JOURNEY_COLUMNS = ["journey", "name", "entered", "sent", "converted", "conversion_rate",
                       "attributed_conversions", "attributed_revenue"]  # fmt: skip
# Each chart's numbers as CSV: (columns, rows from the overview).
EXPORTS = {
    "kpis": (
        ["kpi", "value", "previous_period", "change"],
        lambda data: ([t["key"], t["value"], t["previous"], t["change"]] for t in data["kpis"]),
    ),
    "over_time": (
        ["day", "channel", "sent", "unique_opens", "unique_clicks"],
        lambda data: (
            [day, channel, series["sent"][n], series["opens"][n], series["clicks"][n]]
            for channel, series in sorted(data["over_time"]["channels"].items())
            for n, day in enumerate(data["over_time"]["days"])
        ),
    ),
    "channels": (
        CHANNEL_COLUMNS,
        lambda data: ([row[key] for key in CHANNEL_COLUMNS] for row in data["channels"]),
    ),
    "top_journeys": (
        TOP_JOURNEY_COLUMNS,
        lambda data: ([row[key] for key in TOP_JOURNEY_COLUMNS] for row in data["top_journeys"]),
    ),
}


@require_GET
@workspace_view()
def dashboard_export(request, chart: str):
    """The numbers behind one of the dashboard's charts, for the same filters, as CSV."""
    if chart not in EXPORTS:
        raise Http404
    try:
        period = reports.period_from(request.workspace, request.GET)
    except reports.PeriodError as error:
        return HttpResponseBadRequest(str(error), content_type="text/plain; charset=utf-8")
    data = reports.overview(request.workspace, period)
    columns, rows = EXPORTS[chart]
    channel = f"-{period.channel}" if period.channel else ""
    return _csv_response(columns, rows(data), f"{chart}-{period.start}-{period.end}{channel}.csv")


def _journey_for(request, pk: int) -> Journey:
    return get_object_or_404(
        Journey.objects.for_workspace(request.workspace).select_related("live_version"), pk=pk
    )


def _journey_graph(journey: Journey) -> dict:
    """The published graph the numbers come from (the draft before a first publish)."""
    return journey.live_version.graph if journey.live_version else journey.draft


@require_GET
@workspace_view()
def reports_index(request):
    """The reports, each with what it answers."""
    return render(request, "reporting/reports_index.html")


@require_GET
@workspace_view()
def journey_reports(request):
    """Every journey, with its report a click away."""
    journeys = Journey.objects.for_workspace(request.workspace).order_by("name")
    return render(request, "reporting/journey_reports.html", {"journeys": journeys})


@require_GET
@workspace_view()
@vary_on_headers("HX-Request")
def journey_report(request, pk: int):
    journey = _journey_for(request, pk)
    try:
        period = reports.period_from(request.workspace, request.GET)
        problem = ""
    except reports.PeriodError as error:
        period, problem = reports.period_from(request.workspace, {}), str(error)
    report = journey_reports_service.journey_report(journey, _journey_graph(journey), period)
    context = {
        "journey": journey,
        "period": period,
        "problem": problem,
        "report": report,
        "funnel_chart": charts.journey_funnel(report["funnel"]),
        "over_time_chart": charts.journey_over_time(report["over_time"]),
        "holdout_chart": report["holdout"] and charts.holdout_rates(report["holdout"]),
        "split_charts": [
            (split, charts.split_rates(split), f"split-{n}-data")
            for n, split in enumerate(report["splits"], 1)
        ],
        "preset_days": PRESET_DAYS,
        "query": request.GET.urlencode(),
    }
    if wants_partial(request):
        return render(request, "reporting/partials/journey_report_body.html", context)
    return render(request, "reporting/journey_report.html", context)


JOURNEY_EXPORTS = {
    "funnel": (
        ["step", "type", "reached", "share_of_entered"],
        lambda report: (
            [s["node"] or "entry", s["type"], s["reached"], s.get("share")]
            for s in report["funnel"]
        ),
    ),
    "over_time": (
        ["day", "entered", "converted"],
        lambda report: ([d["day"], d["entered"], d["converted"]] for d in report["over_time"]),
    ),
    "splits": (
        ["step", "branch", "took", "converted", "rate", "p_value"],
        lambda report: (
            [split["node"], b["branch"], b["took"], b["converted"], b["rate"], split["p_value"]]
            for split in report["splits"]
            for b in split["branches"]
        ),
    ),
}


@require_GET
@workspace_view()
def journey_report_export(request, pk: int, chart: str):
    """The numbers behind one of the journey report's charts, as CSV."""
    journey = _journey_for(request, pk)
    if chart not in JOURNEY_EXPORTS:
        raise Http404
    try:
        period = reports.period_from(request.workspace, request.GET)
    except reports.PeriodError as error:
        return HttpResponseBadRequest(str(error), content_type="text/plain; charset=utf-8")
    report = journey_reports_service.journey_report(journey, _journey_graph(journey), period)
    columns, rows = JOURNEY_EXPORTS[chart]
    return _csv_response(
        columns, rows(report), f"journey-{journey.pk}-{chart}-{period.start}-{period.end}.csv"
    )


def _csv_response(columns: list[str], rows, filename: str) -> StreamingHttpResponse:
    def lines():
        yield columns
        for row in rows:
            yield ["" if cell is None else str(cell) for cell in row]

    response = StreamingHttpResponse(csv_lines(lines()), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = content_disposition_header(
        as_attachment=True, filename=filename
    )
    return response


ATTRIBUTION_VIEWS = {"channel": _("By channel"), "journey": _("By journey"),
                     "message": _("By journey step")}  # fmt: skip


def _attribution_request(request):
    period = reports.period_from(request.workspace, request.GET)
    by = request.GET.get("by") or "channel"
    if by not in ATTRIBUTION_VIEWS:
        raise reports.PeriodError(_("Show attribution by channel, journey or message."))
    return period, by


@require_GET
@workspace_view()
@vary_on_headers("HX-Request")
def attribution(request):
    try:
        period, by = _attribution_request(request)
        problem = ""
    except reports.PeriodError as error:
        period, by, problem = reports.period_from(request.workspace, {}), "channel", str(error)
    data = attribution_service.attribution(request.workspace, period, by)
    labels = dict(AttributionModel.choices)
    context = {
        "period": period,
        "by": by,
        "problem": problem,
        "data": data,
        "model_labels": [(model, labels[model]) for model in data["models"]],
        "chart": data["rows"] and charts.attribution_models(data, labels),
        "views": ATTRIBUTION_VIEWS,
        "preset_days": PRESET_DAYS,
        "channels": ChannelType.choices,
        "query": request.GET.urlencode(),
    }
    if wants_partial(request):
        return render(request, "reporting/partials/attribution_body.html", context)
    return render(request, "reporting/attribution.html", context)


@require_GET
@workspace_view()
def attribution_export(request):
    try:
        period, by = _attribution_request(request)
    except reports.PeriodError as error:
        return HttpResponseBadRequest(str(error), content_type="text/plain; charset=utf-8")
    data = attribution_service.attribution(request.workspace, period, by)
    columns = [by] + [f"{m}_{k}" for m in data["models"] for k in ("conversions", "revenue")]
    rows = (
        [row["label"]] + [row[m][k] for m in data["models"] for k in ("conversions", "revenue")]
        for row in data["rows"]
    )
    return _csv_response(columns, rows, f"attribution-{by}-{period.start}-{period.end}.csv")
