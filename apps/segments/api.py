from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from apps.accounts.choices import Scope
from apps.contacts.api import ContactSerializer
from apps.contacts.models import Contact
from apps.segments import services
from apps.segments.models import Segment
from orchestra.api import WorkspaceViewSetMixin

RULE_EXAMPLE = {
    "all": [
        {"attr": "country", "op": "eq", "value": "DK"},
        {"event": "purchase", "count": {"gte": 2}, "within_days": 30,
         "where": [{"prop": "amount", "op": "gt", "value": 100}]},
        {"not": {"list": "newsletter-optout"}},
        {"consent": "email"},
    ]
}  # fmt: skip


class SegmentSerializer(serializers.ModelSerializer):
    rule = serializers.JSONField(help_text="A rule tree (all / any / not over conditions).")

    class Meta:
        model = Segment
        fields = ["id", "name", "slug", "description", "rule", "member_count", "refreshed_at",
                  "created_at", "updated_at"]  # fmt: skip
        read_only_fields = ["id", "slug", "member_count", "refreshed_at", "created_at",
                            "updated_at"]  # fmt: skip


def _invalid(exc: services.InvalidRule):
    return serializers.ValidationError({"rule": exc.problems})


class SegmentViewSet(WorkspaceViewSetMixin, viewsets.ModelViewSet):
    """Segments: a rule over contacts, membership kept current in real time."""

    queryset = Segment.objects.all()
    serializer_class = SegmentSerializer
    filterset_fields = ["slug"]
    ordering_fields = ["name", "created_at", "member_count"]
    # Previewing an unsaved rule only reads.
    action_scopes = {"preview": Scope.READ}

    @extend_schema(examples=[OpenApiExample("Loyal Danes", request_only=True, value={
        "name": "Loyal Danes", "rule": RULE_EXAMPLE})])  # fmt: skip
    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            segment = services.create_segment(
                request.workspace,
                serializer.validated_data["name"],
                serializer.validated_data["rule"],
                serializer.validated_data.get("description", ""),
                created_by=request.user if request.user.is_authenticated else None,
            )
        except services.InvalidRule as exc:
            raise _invalid(exc) from None
        return Response(SegmentSerializer(segment).data, status=status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        segment = self.get_object()
        serializer = self.get_serializer(segment, data=request.data, partial=kwargs.get("partial"))
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            services.update_segment(segment, name=data.get("name"), rule=data.get("rule"),
                                    description=data.get("description"))  # fmt: skip
        except services.InvalidRule as exc:
            raise _invalid(exc) from None
        return Response(SegmentSerializer(segment).data)

    def destroy(self, request, *args, **kwargs):
        try:
            services.delete_segment(self.get_object())
        except services.InvalidRule as exc:
            raise serializers.ValidationError({"detail": exc.problems}) from None
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        parameters=[OpenApiParameter("contact", int, description="Ask about one contact")],
        responses=ContactSerializer(many=True),
    )
    @action(detail=True, methods=["get"])
    def members(self, request, pk=None):
        """The segment's members, newest first (cursor-paginated)."""
        segment = self.get_object()
        contacts = Contact.objects.for_workspace(request.workspace).filter(
            segment_memberships__segment=segment
        )
        if "contact" in request.query_params:
            try:
                contacts = contacts.filter(pk=int(request.query_params["contact"]))
            except ValueError:
                raise serializers.ValidationError({"contact": [_("A contact id.")]}) from None
        page = self.paginate_queryset(contacts.order_by("-id"))
        return self.get_paginated_response(ContactSerializer(page, many=True).data)

    @extend_schema(
        request=inline_serializer("SegmentPreviewRequest", {"rule": serializers.JSONField()}),
        responses=inline_serializer(
            "SegmentPreview",
            {"count": serializers.IntegerField(), "sample": ContactSerializer(many=True)},
        ),
        examples=[OpenApiExample("Preview", request_only=True, value={"rule": RULE_EXAMPLE})],
    )
    @action(detail=False, methods=["post"])
    def preview(self, request):
        """The live count and a sample of matching contacts for an unsaved rule."""
        rule = request.data.get("rule") if isinstance(request.data, dict) else None
        if rule is None:
            raise serializers.ValidationError({"rule": [_("Send the rule to preview.")]})
        try:
            count, sample = services.preview(request.workspace, rule)
        except services.InvalidRule as exc:
            raise _invalid(exc) from None
        return Response({"count": count, "sample": ContactSerializer(sample, many=True).data})
