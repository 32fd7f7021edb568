"""The marketer's journeys: the list, the gallery of starters, the builder (a canvas driven by
static/js/journey_builder.js, with side panels rendered here), the forecast, the version
history, and the steps editor that needs no canvas."""

import json
import secrets

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseBadRequest, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from apps.accounts.access import EDIT, workspace_view
from apps.contacts.filters import ContactFilterSet
from apps.contacts.models import Contact
from apps.journeys.choices import JourneyStatus
from apps.journeys.forms import (
    ContactSearchForm,
    JourneyFilterSet,
    JourneySettingsForm,
    Vocabulary,
    settings_of,
)
from apps.journeys.forms import (
    node_form as make_node_form,
)
from apps.journeys.forms.nodes import graph_problems
from apps.journeys.forms.steps import SAVE, StepsEditor
from apps.journeys.graph import branches_of
from apps.journeys.models import Journey, JourneyVersion
from apps.journeys.services import builder, gallery
from apps.journeys.services import forecast as forecasting
from apps.journeys.services import journeys as services
from apps.journeys.services import versions as history
from apps.journeys.services.simulate import simulate
from apps.segments.forms import builder_config

TEST_CONTACTS_SHOWN = 10


def journey_for(request, pk: int) -> Journey:
    journeys = Journey.objects.for_workspace(request.workspace).select_related(
        "live_version", "workspace"
    )
    return get_object_or_404(journeys, pk=pk)


def require_editor(request) -> None:
    if not request.membership.can_edit:
        raise PermissionDenied


def hx_trigger(response, name: str, detail: dict):
    # ASCII JSON: a header carries latin-1 only.
    response["HX-Trigger"] = json.dumps({name: detail})
    return response


# The list and the gallery -------------------------------------------------------------------


@require_GET
@workspace_view()
def journey_list(request):
    journeys = Journey.objects.for_workspace(request.workspace).select_related("live_version")
    filterset = JourneyFilterSet(request.GET or None, queryset=journeys.order_by("-updated_at"))
    enrolled = builder.enrolled_counts(request.workspace)
    context = {
        "rows": [(journey, enrolled.get(journey.pk, 0)) for journey in filterset.qs],
        "filter_form": filterset.form,
        "filtered": bool(request.GET.get("status")),
    }
    return render(request, "journeys/journey_list.html", context)


@workspace_view(change=EDIT)
def journey_new(request):
    """The gallery; posting a starter (or "blank") creates the draft and opens it."""
    if request.method == "POST":
        require_editor(request)
        key = request.POST.get("starter", "")
        try:
            journey = gallery.create_from_starter(request.workspace, key, request.user)
        except gallery.UnknownStarter:
            messages.error(request, _("Choose one of the journeys below."))
            return redirect("journeys:new")
        messages.success(
            request,
            _(
                "The draft %(name)s was created. Set up each step, test it with a contact, "
                "then publish."
            )
            % {"name": journey.name},
        )
        return redirect("journeys:builder", pk=journey.pk)
    return render(
        request,
        "journeys/journey_new.html",
        {"starters": gallery.STARTERS, "blank": gallery.BLANK},
    )


# The builder --------------------------------------------------------------------------------


def builder_page(request, journey: Journey, graph: dict, *, version=None, compared=None):
    readonly = (
        version is not None
        or not request.membership.can_edit
        or journey.status == JourneyStatus.ARCHIVED
    )
    diff, removed = (None, None)
    if compared is not None:
        diff, removed = history.diff_for_canvas(graph, compared)
    context = {
        "journey": journey,
        "version": version,
        "compared": compared,
        "readonly": readonly,
        "actions": [] if readonly else lifecycle_actions(journey),
        "node_types": builder.NODE_TYPES,
        "journey_data": builder.builder_data(
            journey, graph, readonly=readonly, diff=diff, removed_nodes=removed
        ),
    }
    return render(request, "journeys/journey_builder.html", context)


def lifecycle_actions(journey: Journey) -> list[str]:
    """The buttons that apply to the journey's status (ids journey-<action>)."""
    return {
        JourneyStatus.DRAFT: ["save", "publish", "archive"],
        JourneyStatus.LIVE: ["save", "publish", "pause", "archive"],
        JourneyStatus.PAUSED: ["save", "publish", "resume", "archive"],
    }.get(journey.status, [])


@require_GET
@workspace_view()
def journey_builder(request, pk: int):
    journey = journey_for(request, pk)
    return builder_page(request, journey, journey.draft)


def _posted_json(request, name: str):
    try:
        return json.loads(request.POST.get(name) or "")
    except ValueError:
        return None


@require_POST
@workspace_view(change=EDIT)
def node_form(request, pk: int):
    """The side panel for one node: its form; with validate=1 the form as posted, and once
    valid the node as edited in HX-Trigger journeyNodeChanged."""
    journey = journey_for(request, pk)
    node = _posted_json(request, "node")
    if not isinstance(node, dict) or not isinstance(node.get("id"), str):
        return HttpResponseBadRequest(_("The panel needs the node as JSON."))
    vocabulary = Vocabulary(request.workspace)
    validating = request.POST.get("validate") == "1"
    form = make_node_form(node, vocabulary, request.POST if validating else None, live=True)
    context = {
        "journey": journey,
        "node": node,
        "node_json": json.dumps(node),
        "node_ids": request.POST.get("node_ids", "[]"),
        "form": form,
        "label": builder.node_type_label(node.get("type")),
        "help": builder.NODE_TYPES_BY_KEY[node["type"]].help if form else "",
        "vocabulary": vocabulary,
        "problems": [] if validating else graph_problems(node, vocabulary.references),
    }
    if node.get("type") == "condition":
        # The segment builder runs once per module URL: a fresh one for each panel.
        context["rule_builder_config"] = builder_config(request.workspace)
        context["panel_nonce"] = secrets.token_hex(4)
    valid = validating and form is not None and form.is_valid()
    template = "journeys/partials/node_form.html"
    if request.POST.get("part") == "rule":
        # The rule builder's own post: only the problems are swapped (out of band), so the
        # builder being used is not redrawn under the marketer's hands.
        template = "journeys/partials/node_form_problems.html"
        context["oob"] = True
    response = render(request, template, context)
    if valid:
        branches = branches_of(form.node)
        hx_trigger(
            response,
            "journeyNodeChanged",
            {"node": form.node, "branches": list(branches) if branches is not None else None},
        )
    return response


@require_POST
@workspace_view(change=EDIT)
def settings_form(request, pk: int):
    """The side panel for the journey's own settings; once valid, the settings in
    HX-Trigger journeySettingsChanged."""
    journey = journey_for(request, pk)
    settings = _posted_json(request, "settings")
    if not isinstance(settings, dict):
        settings = settings_of(journey.draft)
    vocabulary = Vocabulary(request.workspace)
    validating = request.POST.get("validate") == "1"
    form = JourneySettingsForm(
        request.POST if validating else None, settings=settings, vocabulary=vocabulary, live=True
    )
    context = {
        "journey": journey,
        "form": form,
        "settings_json": json.dumps(settings),
        "vocabulary": vocabulary,
    }
    response = render(request, "journeys/partials/settings_form.html", context)
    if validating and form.is_valid():
        hx_trigger(response, "journeySettingsChanged", {"settings": form.settings})
    return response


@workspace_view(change=EDIT)
def test_panel(request, pk: int):
    """Test with a contact: GET finds contacts; POST runs the simulation on the canvas's
    graph (the saved draft when none is posted) and answers the path it would take."""
    journey = journey_for(request, pk)
    if request.method == "POST":
        return _simulate(request, journey)
    search = ContactSearchForm(request.GET or None)
    contacts = Contact.objects.for_workspace(request.workspace)
    query = search.data.get("q", "").strip() if search.is_bound else ""
    if query:
        contacts = ContactFilterSet({"q": query}, queryset=contacts).qs
    context = {
        "journey": journey,
        "search": search,
        "contacts": list(contacts.order_by("-id")[:TEST_CONTACTS_SHOWN]),
        "query": query,
    }
    if request.htmx and request.htmx.target == "journey-test-contacts":
        return render(request, "journeys/partials/test_contacts.html", context)
    return render(request, "journeys/partials/test_panel.html", context)


def _simulate(request, journey: Journey):
    require_editor(request)
    contact_id = request.POST.get("contact", "")
    contact = None
    if contact_id.isdigit():
        contact = Contact.objects.for_workspace(request.workspace).filter(pk=contact_id).first()
    graph = _posted_json(request, "graph")
    if not isinstance(graph, dict):
        graph = journey.draft
    context = {"journey": journey, "contact": contact, "result": None, "problems": []}
    if contact is None:
        context["problems"] = [_("Choose a contact of this workspace.")]
    else:
        problems = services.check(request.workspace, graph)
        if problems:
            context["problems"] = problems.as_list()
        else:
            context["result"] = simulate(journey, contact, graph)
            context["steps"] = builder.simulation_steps(graph, context["result"])
    response = render(request, "journeys/partials/test_result.html", context)
    result = context["result"]
    if result is not None:
        hx_trigger(
            response,
            "journeyPathSimulated",
            {"path": [step["node"] for step in result.path], "messages": result.messages},
        )
    return response


@require_POST
@workspace_view(change=EDIT)
def forecast(request, pk: int):
    """The forecast for the graph posted as JSON (the canvas as it stands)."""
    journey = journey_for(request, pk)
    try:
        graph = json.loads(request.body or b"null")
    except ValueError:
        graph = None
    if not isinstance(graph, dict):
        return JsonResponse({"detail": _("Post the journey graph as JSON.")}, status=400)
    return JsonResponse(forecasting.forecast(journey, graph).as_dict())


# Versions -----------------------------------------------------------------------------------


@require_GET
@workspace_view()
def version_list(request, pk: int):
    journey = journey_for(request, pk)
    versions = list(
        JourneyVersion.objects.filter(journey=journey)
        .select_related("published_by")
        .order_by("-number")
    )
    context = {
        "journey": journey,
        "versions": history.version_rows(journey, versions),
        "draft_changes": history.graph_diff(versions[0].graph, journey.draft) if versions else None,
        "can_edit": request.membership.can_edit and journey.status != JourneyStatus.ARCHIVED,
    }
    return render(request, "journeys/journey_versions.html", context)


def version_for(journey: Journey, number: int) -> JourneyVersion:
    return get_object_or_404(JourneyVersion, journey=journey, number=number)


@require_GET
@workspace_view()
def version_builder(request, pk: int, number: int):
    """A version read-only on the canvas; ?compare=<number or draft> draws the difference."""
    journey = journey_for(request, pk)
    version = version_for(journey, number)
    compared = None
    against = request.GET.get("compare", "")
    if against:
        compared = history.comparison(journey, against)
        if compared is None:
            messages.error(
                request, _("There is no version %(n)s to compare with.") % {"n": against}
            )
    return builder_page(request, journey, version.graph, version=version, compared=compared)


@workspace_view(change=EDIT)
def version_restore(request, pk: int, number: int):
    """GET asks for confirmation; POST makes the version's graph the draft again."""
    journey = journey_for(request, pk)
    version = version_for(journey, number)
    require_editor(request)
    if request.method == "POST":
        try:
            services.restore(journey, version)
        except services.JourneyError as error:
            messages.error(request, " ".join(error.problems))
            return redirect("journeys:versions", pk=journey.pk)
        messages.success(
            request,
            _("Version %(n)s is the draft again. Publish it to make it live.") % {"n": number},
        )
        return redirect("journeys:builder", pk=journey.pk)
    changes = history.graph_diff(journey.draft, version.graph)
    return render(
        request,
        "journeys/journey_restore.html",
        {"journey": journey, "version": version, "changes": changes},
    )


# The steps editor ----------------------------------------------------------------------------


@workspace_view(change=EDIT)
def steps_editor(request, pk: int):
    """The journey as an ordered list of steps, editable without a canvas or JavaScript."""
    journey = journey_for(request, pk)
    vocabulary = Vocabulary(request.workspace)
    readonly = not request.membership.can_edit or journey.status == JourneyStatus.ARCHIVED
    if request.method == "POST":
        if readonly:
            raise PermissionDenied
        editor = StepsEditor(journey, vocabulary, request.POST)
        if editor.handle(request.POST.get("action", SAVE), request.user):
            messages.success(request, _("The journey was saved."))
            return redirect("journeys:steps", pk=journey.pk)
    else:
        editor = StepsEditor(journey, vocabulary)
        editor.show_problems()
    context = {"journey": journey, "editor": editor, "readonly": readonly, "vocabulary": vocabulary}
    return render(request, "journeys/journey_steps.html", context)
