"""/api/v1/templates/: templates in the shape of DESIGN.md, their versions and a preview."""

from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiExample, extend_schema, inline_serializer
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException
from rest_framework.response import Response

from apps.accounts.choices import Scope
from apps.channels.forms import TemplateFilterSet
from apps.channels.models import Template, TemplateVersion
from apps.channels.services import editor
from apps.channels.services.templates import create_template, current_version, save_template
from orchestra.api import WorkspaceViewSetMixin

WELCOME_EXAMPLE = {
    "slug": "welcome-1",
    "name": "Welcome",
    "channel": "email",
    "subject": "Welcome, {{ contact.first_name | default: 'friend' }}",
    "preheader": "Three things to try first",
    "html": "<p>Hi {{ contact.first_name | default: 'there' }}!</p>",
    "text": "",
}


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


def _text(**kwargs) -> serializers.CharField:
    # Checked by save_template (with the rest), so every problem comes back at once.
    return serializers.CharField(required=False, allow_blank=True, trim_whitespace=False, **kwargs)


class TemplateSerializer(serializers.ModelSerializer):
    slug = _text(help_text="Journeys refer to the template by it; made from the name if empty.")
    name = _text()
    channel = _text(help_text="email, sms, push or webhook.")
    subject = _text(help_text="Email subject; a web push notification's title.")
    preheader = _text()
    html = _text(help_text="Email HTML (or MJML), with Liquid.")
    text = _text(help_text="Email text part; made from the HTML when empty.")
    body = _text(help_text="SMS, push and webhook content.")

    class Meta:
        model = Template
        fields = [
            "id",
            "slug",
            "name",
            "channel",
            "subject",
            "preheader",
            "html",
            "text",
            "body",
            "version",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "version", "created_at", "updated_at"]


class TemplateVersionSerializer(serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(slug_field="email", read_only=True)

    class Meta:
        model = TemplateVersion
        fields = [
            "number",
            "subject",
            "preheader",
            "html",
            "text",
            "body",
            "created_at",
            "created_by",
        ]


class RenderedSerializer(serializers.Serializer):
    contact = serializers.IntegerField(allow_null=True)
    subject = serializers.CharField()
    html = serializers.CharField()
    text = serializers.CharField()
    body = serializers.CharField()
    problems = serializers.ListField(child=serializers.CharField())


def _user(request):
    return request.user if request.user and request.user.is_authenticated else None


class TemplateViewSet(WorkspaceViewSetMixin, viewsets.ModelViewSet):
    """Message templates in Liquid. Changed content is saved as a new version; messages keep
    the version they were rendered from."""

    queryset = Template.objects.all()
    serializer_class = TemplateSerializer
    filterset_class = TemplateFilterSet
    ordering_fields = ["name", "slug", "updated_at", "created_at"]
    # Rendering a saved template for a contact only reads.
    action_scopes = {"preview": Scope.READ}

    @extend_schema(
        examples=[OpenApiExample("Welcome email", value=WELCOME_EXAMPLE, request_only=True)]
    )
    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        template, problems = create_template(
            request.workspace, serializer.validated_data, _user(request)
        )
        if problems:
            raise serializers.ValidationError(problems)
        return Response(TemplateSerializer(template).data, status=status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        template = self.get_object()
        partial = kwargs.get("partial", False)
        serializer = self.get_serializer(template, data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        if not partial:
            # A PUT is the whole template: content left out is empty.
            for name in Template.CONTENT_FIELDS:
                data.setdefault(name, "")
        problems = save_template(template, data, _user(request))
        if problems:
            raise serializers.ValidationError(problems)
        return Response(TemplateSerializer(template).data)

    def destroy(self, request, *args, **kwargs):
        try:
            editor.delete_template(self.get_object())
        except editor.TemplateInUse as refusal:
            raise Conflict(str(refusal)) from None
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses=TemplateVersionSerializer(many=True))
    @action(detail=True, methods=["get"])
    def versions(self, request, pk=None):
        """Every version of the template, newest first (cursor-paginated)."""
        template = self.get_object()
        versions = template.versions.select_related("created_by")
        page = self.paginate_queryset(versions.order_by("-id"))
        return self.get_paginated_response(TemplateVersionSerializer(page, many=True).data)

    @extend_schema(
        request=inline_serializer(
            "TemplatePreviewRequest", {"contact": serializers.IntegerField(required=False)}
        ),
        responses=RenderedSerializer,
        examples=[OpenApiExample("For one contact", value={"contact": 42}, request_only=True)],
    )
    @action(detail=True, methods=["post"])
    def preview(self, request, pk=None):
        """The current version rendered for a contact (the newest one when none is named;
        sample data when the workspace has no contacts). Links are not tracked."""
        template = self.get_object()
        contact_id = request.data.get("contact") if isinstance(request.data, dict) else None
        contact = None
        if contact_id is not None:
            if isinstance(contact_id, bool) or not str(contact_id).isdigit():
                raise serializers.ValidationError({"contact": [_("A contact id.")]})
            contact = editor.pick_contact(request.workspace, contact_id)
            if contact is None or contact.pk != int(contact_id):
                raise serializers.ValidationError(
                    {"contact": [_("No contact %(id)s in this workspace.") % {"id": contact_id}]}
                )
        else:
            contact = editor.pick_contact(request.workspace, None)
        scope = editor.preview_scope(request.workspace, contact)
        result = editor.preview(current_version(template), template.channel, scope)
        rendered = result.rendered
        return Response(
            {
                "contact": contact.pk if contact is not None else None,
                "subject": rendered.subject if rendered else "",
                "html": rendered.html if rendered else "",
                "text": rendered.text if rendered else "",
                "body": rendered.body if rendered else "",
                "problems": result.problems,
            }
        )
