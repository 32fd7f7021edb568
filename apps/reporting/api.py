from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.journeys.models import Journey
from apps.reporting.services import attribution as attribution_service
from apps.reporting.services import insight, journey_report
from apps.reporting.services import overview as reports

PERIOD_PARAMETERS = [
    OpenApiParameter("from", OpenApiTypes.DATE, description="First day (YYYY-MM-DD)."),
    OpenApiParameter("to", OpenApiTypes.DATE, description="Last day; today if absent."),
    OpenApiParameter("days", OpenApiTypes.INT, description="The last N days (30 by default)."),
    OpenApiParameter("channel", OpenApiTypes.STR, enum=["email", "sms", "push", "webhook"]),
]


class ReportOverviewView(APIView):
    """The dashboard's numbers: key figures beside the previous period, sends and clicks
    per day and channel, channels compared, top journeys. Days are in the workspace's time
    zone; conversions and revenue are credited by last touch."""

    @extend_schema(parameters=PERIOD_PARAMETERS, responses={200: OpenApiTypes.OBJECT})
    def get(self, request):
        return Response(reports.overview(request.workspace, _period(request)))


class ReportAttributionView(APIView):
    """Conversions and revenue credited under each attribution model (first touch, last
    touch, linear, time decay), by channel, journey or journey step ("message")."""

    @extend_schema(
        parameters=[
            *PERIOD_PARAMETERS,
            OpenApiParameter("by", OpenApiTypes.STR, enum=list(attribution_service.DIMENSIONS)),
        ],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request):
        by = request.query_params.get("by") or "channel"
        if by not in attribution_service.DIMENSIONS:
            raise serializers.ValidationError({"by": ["One of channel, journey, message."]})
        return Response(attribution_service.attribution(request.workspace, _period(request), by))


class ReportJourneyView(APIView):
    """One journey's report: funnel, entries and conversions per day, lift over the holdout
    group with its interval, random split results with Pearson's chi-squared test."""

    @extend_schema(parameters=PERIOD_PARAMETERS, responses={200: OpenApiTypes.OBJECT})
    def get(self, request, pk: int):
        journey = get_object_or_404(Journey.objects.for_workspace(request.workspace), pk=pk)
        graph = journey.live_version.graph if journey.live_version else journey.draft
        report = journey_report.journey_report(journey, graph, _period(request))
        return Response({"journey": journey.pk, "name": journey.name, **report})


def _period(request):
    try:
        return reports.period_from(request.workspace, request.query_params)
    except reports.PeriodError as error:
        raise serializers.ValidationError({"period": [str(error)]}) from None


class ReportInsightView(APIView):
    """The customer insight as of its latest computation (every 15 minutes): RFM cells and
    groups, cohort retention, lifecycle-stage flows, the engagement score distribution,
    opens per weekday and hour in each contact's time zone, and reach per combination of
    channels. `computed_at` is null (and `data` too) until the first computation, which
    this request then asks for. docs/reporting.md defines every number."""

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request):
        snapshot = insight.latest_snapshot(request.workspace)
        if snapshot is None:
            insight.request_refresh(request.workspace)
            return Response({"computed_at": None, "data": None})
        return Response({"computed_at": snapshot.computed_at, "data": snapshot.data})
