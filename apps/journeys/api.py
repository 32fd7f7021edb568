from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiExample, extend_schema, inline_serializer
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from apps.accounts.choices import Scope
from apps.contacts.models import Contact
from apps.journeys.models import Journey, JourneyVersion, NodeStats
from apps.journeys.services import journeys as services
from apps.journeys.services.builder import problems_by_node
from apps.journeys.services.simulate import simulate
from orchestra.api import WorkspaceViewSetMixin

GRAPH_EXAMPLE = {
    "name": "Welcome series",
    "entry": {"type": "event", "event": "signed_up"},
    "reentry": {"after_days": 30},
    "exit_when": {"event": "unsubscribed"},
    "start": "hello",
    "nodes": [
        {"id": "hello", "type": "send", "channel": "email", "template": "welcome-1"},
        {"id": "wait1", "type": "wait", "until_event": "purchase", "timeout": "P3D"},
        {"id": "nudge", "type": "send", "channel": "email", "template": "nudge"},
        {"id": "bought", "type": "goal", "event": "purchase"},
        {"id": "done", "type": "exit"},
    ],
    "edges": [
        {"from": "hello", "to": "wait1"},
        {"from": "wait1", "to": "bought", "branch": "event"},
        {"from": "wait1", "to": "nudge", "branch": "timeout"},
        {"from": "nudge", "to": "done"},
    ],
}


class JourneySerializer(serializers.ModelSerializer):
    graph = serializers.JSONField(source="draft", help_text="The draft graph (JSON contract).")
    live_version = serializers.IntegerField(
        source="live_version.number", allow_null=True, read_only=True, default=None
    )

    class Meta:
        model = Journey
        fields = [
            "id",
            "name",
            "status",
            "priority",
            "graph",
            "live_version",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class JourneyVersionSerializer(serializers.ModelSerializer):
    class Meta:
        model = JourneyVersion
        fields = ["number", "graph", "published_at"]


def _refused(error: services.JourneyError, workspace=None, graph=None):
    """A refusal lists every problem under "graph"; with the graph at hand it also sorts
    them by node ("nodes": {node id: [...]}) and keeps the journey's own ("journey"), so
    the canvas can show each problem on the node it concerns."""
    detail = {"graph": error.problems}
    if workspace is not None:
        nodes, journey = problems_by_node(workspace, graph, error.problems)
        detail |= {"nodes": nodes, "journey": journey}
    return serializers.ValidationError(detail)


def _graph(request) -> dict:
    if not isinstance(request.data, dict):
        raise serializers.ValidationError(
            {"graph": [_("Send the journey graph as a JSON object.")]}
        )
    return request.data


class JourneyViewSet(WorkspaceViewSetMixin, viewsets.ModelViewSet):
    """Journeys: create a draft from the graph, publish, pause, resume, archive; enroll
    contacts into API-entry journeys; per-node numbers; simulate a contact's path."""

    queryset = Journey.objects.select_related("live_version")
    serializer_class = JourneySerializer
    filterset_fields = ["status"]
    ordering_fields = ["name", "updated_at", "created_at"]
    http_method_names = ["get", "post", "put", "delete", "head", "options"]
    action_scopes = {"enroll": Scope.INGEST, "simulate": Scope.READ}

    @extend_schema(
        request=inline_serializer("JourneyGraph", {"name": serializers.CharField()}),
        examples=[OpenApiExample("Welcome", value=GRAPH_EXAMPLE, request_only=True)],
    )
    def create(self, request, *args, **kwargs):
        """A draft journey from the graph; every problem is listed when it does not validate."""
        try:
            journey = services.create_journey(
                request.workspace,
                _graph(request),
                request.user if request.user.is_authenticated else None,
            )
        except services.JourneyError as error:
            raise _refused(error, request.workspace, request.data) from None
        return Response(JourneySerializer(journey).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=inline_serializer("JourneyGraphUpdate", {"name": serializers.CharField()})
    )
    def update(self, request, *args, **kwargs):
        """Replace the draft graph (contacts in flight keep their published version)."""
        journey = self.get_object()
        try:
            services.update_draft(journey, _graph(request))
        except services.JourneyError as error:
            raise _refused(error, request.workspace, request.data) from None
        return Response(JourneySerializer(journey).data)

    def destroy(self, request, *args, **kwargs):
        """Only a journey never published can be deleted; archive the others."""
        journey = self.get_object()
        if journey.versions.exists():
            return Response(
                {"detail": _("This journey has been published: archive it instead.")},
                status=status.HTTP_409_CONFLICT,
            )
        journey.delete()
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        request=inline_serializer(
            "PublishRequest",
            {
                "move_to": serializers.DictField(
                    child=serializers.CharField(),
                    required=False,
                    help_text="Move contacts in flight: {old node id: node id in the new version}.",
                )
            },
        ),
        responses=JourneySerializer,
    )
    @action(detail=True, methods=["post"])
    def publish(self, request, pk=None):
        """Freeze the draft as a new version and make the journey live."""
        journey = self.get_object()
        move_to = request.data.get("move_to") if isinstance(request.data, dict) else None
        try:
            services.publish(
                journey,
                request.user if request.user.is_authenticated else None,
                move_to=move_to if isinstance(move_to, dict) else None,
            )
        except services.JourneyError as error:
            raise _refused(error, request.workspace, journey.draft) from None
        journey.refresh_from_db()
        return Response(JourneySerializer(journey).data)

    def _lifecycle(self, change):
        journey = self.get_object()
        try:
            change(journey)
        except services.JourneyError as error:
            return Response({"detail": " ".join(error.problems)}, status=status.HTTP_409_CONFLICT)
        journey.refresh_from_db()
        return Response(JourneySerializer(journey).data)

    @extend_schema(request=None, responses=JourneySerializer)
    @action(detail=True, methods=["post"])
    def pause(self, request, pk=None):
        """Nobody moves on until resumed; due steps wait."""
        return self._lifecycle(services.pause)

    @extend_schema(request=None, responses=JourneySerializer)
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        """Moves on everyone whose step came due during the pause."""
        return self._lifecycle(services.resume)

    @extend_schema(
        request=inline_serializer(
            "ArchiveRequest", {"reason": serializers.CharField(required=False)}
        ),
        responses=JourneySerializer,
    )
    @action(detail=True, methods=["post"])
    def archive(self, request, pk=None):
        """Everyone still in the journey exits with the reason."""
        reason = str(request.data.get("reason", "")) if isinstance(request.data, dict) else ""
        return self._lifecycle(lambda journey: services.archive(journey, reason))

    @extend_schema(
        request=inline_serializer(
            "EnrollRequest",
            {
                "external_id": serializers.CharField(required=False),
                "email": serializers.EmailField(required=False),
                "contact": serializers.IntegerField(required=False),
                "key": serializers.CharField(required=False),
            },
        ),
        examples=[OpenApiExample("By external id", value={"external_id": "u1"}, request_only=True)],
    )
    @action(detail=True, methods=["post"])
    def enroll(self, request, pk=None):
        """Enroll a contact into a live journey whose entry is `api`."""
        journey = self.get_object()
        contact = _contact(request)
        try:
            enrollment = services.enroll_contact(
                journey, contact, key=str(request.data.get("key") or "")
            )
        except services.JourneyError as error:
            return Response({"detail": " ".join(error.problems)}, status=status.HTTP_409_CONFLICT)
        if enrollment is None:
            return Response(
                {
                    "enrolled": False,
                    "detail": _(
                        "The contact is in this journey already, or its re-entry rule does "
                        "not allow it yet."
                    ),
                }
            )
        return Response(
            {
                "enrolled": True,
                "enrollment": enrollment.pk,
                "node": enrollment.node_id,
                "state": enrollment.state,
            },
            status=status.HTTP_201_CREATED,
        )

    @extend_schema(
        responses=inline_serializer(
            "JourneyStats",
            {
                "nodes": serializers.DictField(child=serializers.DictField()),
                "enrolled": serializers.IntegerField(),
                "waiting": serializers.IntegerField(),
            },
        )
    )
    @action(detail=True, methods=["get"])
    def stats(self, request, pk=None):
        """Per node: entered, waiting now, completed, exited, converted, branches taken
        (summed over the journey's versions)."""
        journey = self.get_object()
        return Response(journey_stats(journey))

    @extend_schema(responses=JourneyVersionSerializer(many=True))
    @action(detail=True, methods=["get"])
    def versions(self, request, pk=None):
        """Published versions, newest first."""
        journey = self.get_object()
        return Response(
            JourneyVersionSerializer(journey.versions.order_by("-number"), many=True).data
        )

    @extend_schema(
        request=inline_serializer("RestoreRequest", {"version": serializers.IntegerField()}),
        responses=JourneySerializer,
    )
    @action(detail=True, methods=["post"])
    def restore(self, request, pk=None):
        """A published version's graph becomes the draft again."""
        journey = self.get_object()
        number = request.data.get("version") if isinstance(request.data, dict) else None
        version = (
            journey.versions.filter(number=number).first() if isinstance(number, int) else None
        )
        if version is None:
            raise serializers.ValidationError({"version": [_("A published version number.")]})
        try:
            services.restore(journey, version)
        except services.JourneyError as error:
            raise _refused(error) from None
        return Response(JourneySerializer(journey).data)

    @extend_schema(
        request=inline_serializer(
            "SimulateRequest",
            {
                "external_id": serializers.CharField(required=False),
                "contact": serializers.IntegerField(required=False),
                "version": serializers.CharField(
                    required=False, help_text='"draft" (default) or "live"'
                ),
            },
        ),
    )
    @action(detail=True, methods=["post"])
    def simulate(self, request, pk=None):
        """The path a contact would take (its real history replayed, time compressed,
        nothing sent) and the messages it would get."""
        journey = self.get_object()
        contact = _contact(request)
        graph = journey.draft
        if request.data.get("version") == "live":
            if journey.live_version is None:
                raise serializers.ValidationError({"version": [_("The journey is not published.")]})
            graph = journey.live_version.graph
        result = simulate(journey, contact, graph)
        return Response(
            {
                "entered": result.entered,
                "path": result.path,
                "messages": result.messages,
                "state": result.state,
            }
        )


def _contact(request) -> Contact:
    data = request.data if isinstance(request.data, dict) else {}
    contacts = Contact.objects.for_workspace(request.workspace)
    for field in ("contact", "external_id", "email"):
        if data.get(field) not in (None, ""):
            lookup = {"pk": data[field]} if field == "contact" else {field: data[field]}
            try:
                contact = contacts.filter(**lookup).first()
            except (ValueError, TypeError):
                contact = None
            if contact is None:
                raise serializers.ValidationError({field: [_("No such contact.")]})
            return contact
    raise serializers.ValidationError(
        {"contact": [_("Name the contact: contact, external_id or email.")]}
    )


def journey_stats(journey: Journey) -> dict:
    """From the engine's counters only (never a count over enrollments or steps)."""
    starts = {v.pk: v.graph.get("start") for v in journey.versions.all()}
    nodes: dict[str, dict] = {}
    enrolled = 0
    for stats in NodeStats.objects.filter(journey=journey):
        node = nodes.setdefault(
            stats.node_id,
            {
                "entered": 0,
                "waiting": 0,
                "completed": 0,
                "exited": 0,
                "converted": 0,
                "branches": {},
            },
        )
        for name in ("entered", "waiting", "completed", "exited", "converted"):
            node[name] += getattr(stats, name)
        for branch, count in stats.branches.items():
            node["branches"][branch] = node["branches"].get(branch, 0) + count
        if starts.get(stats.version_id) == stats.node_id:
            enrolled += stats.entered
    waiting = sum(node["waiting"] for node in nodes.values())
    return {"nodes": nodes, "enrolled": enrolled, "waiting": waiting}
