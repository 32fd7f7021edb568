"""The marketer's view of segments: the list, the builder with its live preview, and the
segment page (the rule in words, size over time, members, what uses it)."""

import datetime as dt
import json
import zoneinfo

import plotly.graph_objects as go
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers

from apps.accounts.access import EDIT, workspace_view
from apps.contacts.views.contacts import wants_partial
from apps.contacts.views.exports import csv_lines
from apps.segments import services
from apps.segments.forms import (
    EMPTY_RULE,
    RuleForm,
    SegmentForm,
    builder_config,
    rule_in_words,
)
from apps.segments.models import Segment, SegmentMembership, SegmentSize
from apps.segments.tasks import refresh_segment_task

MEMBERS_PER_PAGE = 50
# The chart shows the latest measurements; the CSV export has all of them.
SIZE_POINTS_CHARTED = 2000
SHORTEST_CHARTED_SPAN = dt.timedelta(days=2)


def segment_for(request, pk: int) -> Segment:
    segments = Segment.objects.for_workspace(request.workspace).select_related("workspace")
    return get_object_or_404(segments, pk=pk)


def require_editor(request) -> None:
    """The builder is for marketers and owners (its preview posts, which analysts may not)."""
    if not request.membership.can_edit:
        raise PermissionDenied


# The list -----------------------------------------------------------------------------


@require_GET
@workspace_view()
def segment_list(request):
    segments = Segment.objects.for_workspace(request.workspace).order_by("name")
    return render(request, "segments/segment_list.html", {"segments": segments})


# The builder --------------------------------------------------------------------------


def builder_page(request, form: SegmentForm, segment: Segment | None = None):
    context = {
        "form": form,
        "segment": segment,
        "builder_config": builder_config(request.workspace, segment),
        "problems": form.errors.get("rule", []),
    }
    return render(request, "segments/segment_form.html", context)


@workspace_view(change=EDIT)
def segment_create(request):
    require_editor(request)
    form = SegmentForm(request.POST or None, initial={"rule": EMPTY_RULE})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            segment = services.create_segment(
                request.workspace, data["name"], data["rule"], data["description"],
                created_by=request.user,
            )  # fmt: skip
        except services.InvalidRule as exc:
            form.add_error("rule", exc.problems)
        else:
            messages.success(request, _("The segment %(name)s was saved.") % {"name": segment})
            return redirect("segments:detail", pk=segment.pk)
    return builder_page(request, form)


@workspace_view(change=EDIT)
def segment_edit(request, pk: int):
    require_editor(request)
    segment = segment_for(request, pk)
    initial = {"name": segment.name, "description": segment.description, "rule": segment.rule}
    form = SegmentForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.update_segment(
                segment, name=data["name"], rule=data["rule"], description=data["description"]
            )
        except services.InvalidRule as exc:
            form.add_error("rule", exc.problems)
        else:
            messages.success(request, _("The segment %(name)s was saved.") % {"name": segment})
            return redirect("segments:detail", pk=segment.pk)
    return builder_page(request, form, segment)


@require_POST
@workspace_view(change=EDIT)
def segment_preview(request):
    """The builder's live count and sample for the rule as it stands (unsaved)."""
    form = RuleForm(request.POST)
    context = {"problems": [], "count": None, "sample": []}
    if not form.is_valid():
        context["problems"] = form.errors["rule"]
    else:
        try:
            context["count"], context["sample"] = services.preview(
                request.workspace, form.cleaned_data["rule"]
            )
        except services.InvalidRule as exc:
            context["problems"] = exc.problems
    return render(request, "segments/partials/segment_preview.html", context)


# The segment page ---------------------------------------------------------------------


def members_context(request, segment: Segment) -> dict:
    """One page of members, newest contacts first.

    Keyset pagination on the (segment, contact) unique index: "after" is the last contact
    id shown, so a page costs the same at any depth and nothing counts the members.
    """
    members = (
        SegmentMembership.objects.for_workspace(request.workspace)
        .filter(segment=segment)
        .select_related("contact")
        .order_by("-contact_id")
    )
    after = request.GET.get("after", "")
    if after.isdigit():
        members = members.filter(contact_id__lt=int(after))
    page = list(members[: MEMBERS_PER_PAGE + 1])
    has_next = len(page) > MEMBERS_PER_PAGE
    page = page[:MEMBERS_PER_PAGE]
    return {
        "segment": segment,
        "members": page,
        "is_first_page": not after.isdigit(),
        "next_after": page[-1].contact_id if has_next else None,
    }


def size_chart(segment: Segment, sizes: list[SegmentSize]) -> dict:
    """The size-over-time figure (plotly.js draws it), times in the workspace's zone."""
    zone = zoneinfo.ZoneInfo(segment.workspace.timezone or "UTC")
    times = [size.measured_at.astimezone(zone).replace(tzinfo=None) for size in sizes]
    counts = [size.size for size in sizes]
    figure = go.Figure(
        go.Scatter(
            x=times,
            y=counts,
            mode="lines+markers",
            # The size holds between refreshes, so the line steps rather than slopes.
            line={"color": "#0172ad", "width": 2, "shape": "hv"},
            marker={"size": 6},
            name=_("Members"),
            hovertemplate="%{x|%d %b %Y %H:%M}<br>%{y:,} " + _("members") + "<extra></extra>",
        )
    )
    xaxis: dict = {"title": {"text": ""}}
    if times[-1] - times[0] < SHORTEST_CHARTED_SPAN:
        # A first measurement or two would otherwise fill the axis with milliseconds.
        middle = times[0] + (times[-1] - times[0]) / 2
        xaxis["range"] = [middle - SHORTEST_CHARTED_SPAN / 2, middle + SHORTEST_CHARTED_SPAN / 2]
    yaxis = {"rangemode": "tozero", "tickformat": ",d", "title": {"text": _("Members")}}
    if max(counts) < 5:
        yaxis |= {"dtick": 1, "range": [0, max(counts) + 1]}  # whole members only
    figure.update_layout(
        template="plotly_white",
        height=280,
        margin={"l": 56, "r": 16, "t": 8, "b": 40},
        xaxis=xaxis,
        yaxis=yaxis,
        showlegend=False,
        font={"family": "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif", "size": 12},
    )
    return json.loads(figure.to_json())


@require_GET
@workspace_view()
@vary_on_headers("HX-Request")
def segment_detail(request, pk: int):
    segment = segment_for(request, pk)
    members = members_context(request, segment)
    if wants_partial(request):
        return render(request, "segments/partials/segment_members.html", members)
    sizes = list(segment.sizes.order_by("-measured_at")[:SIZE_POINTS_CHARTED])[::-1]
    context = {
        **members,
        "rule_words": rule_in_words(request.workspace, segment.rule),
        "rule_json": json.dumps(segment.rule, indent=2, ensure_ascii=False),
        "sizes": sizes,
        "size_chart": size_chart(segment, sizes) if sizes else None,
        "used_by_segments": services.segments_using(segment),
        "used_by_journeys": services.journeys_using(segment),
    }
    return render(request, "segments/segment_detail.html", context)


@require_GET
@workspace_view()
def segment_size_csv(request, pk: int):
    """The size history behind the chart, every measurement."""
    segment = segment_for(request, pk)
    rows = segment.sizes.order_by("measured_at").values_list("measured_at", "size")

    def lines():
        yield ["measured_at", "size"]
        for measured_at, size in rows.iterator(chunk_size=2000):
            yield [measured_at.isoformat(), str(size)]

    response = StreamingHttpResponse(csv_lines(lines()), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = content_disposition_header(
        as_attachment=True, filename=f"segment-{segment.slug}-size.csv"
    )
    return response


@require_POST
@workspace_view(change=EDIT)
def segment_refresh(request, pk: int):
    segment = segment_for(request, pk)
    transaction.on_commit(lambda: refresh_segment_task.delay(segment.pk))
    messages.success(
        request,
        _("%(name)s is being recounted; the numbers update in a moment.") % {"name": segment},
    )
    return redirect("segments:detail", pk=segment.pk)


@workspace_view(change=EDIT)
def segment_delete(request, pk: int):
    segment = segment_for(request, pk)
    if request.method == "POST":
        try:
            services.delete_segment(segment)
        except services.InvalidRule:
            users = ", ".join(other.name for other in services.segments_using(segment))
            messages.error(
                request,
                _("%(name)s was not deleted: the segment %(users)s uses it. Change that first.")
                % {"name": segment, "users": users},
            )
            return redirect("segments:detail", pk=segment.pk)
        messages.success(request, _("The segment %(name)s was deleted.") % {"name": segment})
        return redirect("segments:list")
    context = {
        "segment": segment,
        "used_by_segments": services.segments_using(segment),
        "used_by_journeys": services.journeys_using(segment),
    }
    return render(request, "segments/segment_delete.html", context)
