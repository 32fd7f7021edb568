"""The decision endpoint a website calls (from the browser, with a public ingest key)."""

from django.utils.translation import gettext as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.choices import Scope
from apps.accounts.permissions import WorkspaceAccess
from apps.contacts.segment.auth import SegmentJSONParser, WriteKeyAuthentication
from apps.personalization import services
from apps.personalization.choices import CONTEXT_KEYS
from orchestra.api import BodyLimitMixin

TAGS = ["Personalization"]
# The key is a public ingest key living in web pages, never a cookie: any site may call.
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type",
    "Access-Control-Max-Age": "86400",
}


class SlotKeyAuthentication(WriteKeyAuthentication):
    """The ingest key as `Authorization: Bearer`, HTTP basic user, `writeKey` in the body,
    or `?writeKey=` (a browser's GET has no body)."""

    def authenticate(self, request):
        found = super().authenticate(request)
        if found is not None:
            return found
        write_key = request.query_params.get("writeKey", "").strip()
        if write_key:
            return self.authenticate_key(request, write_key)
        return None


class SlotKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    """Describes the slot endpoints' key in the OpenAPI document."""

    target_class = SlotKeyAuthentication
    name = "SlotWriteKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "query",
            "name": "writeKey",
            "description": "A workspace API key with scope `ingest` (public: it lives in web "
            "pages). Also accepted as `Authorization: Bearer`, the HTTP basic user, or "
            "`writeKey` in a JSON body.",
        }


DecisionSerializer = inline_serializer(
    "SlotDecision",
    {
        "slot": serializers.CharField(),
        "variant": serializers.CharField(help_text="The variant's name, or `default`."),
        "content": serializers.JSONField(help_text='{"html", "title", "image", "url"}'),
        "impression_id": serializers.CharField(
            allow_null=True, help_text="Name it in a click; null when the contact is unknown."
        ),
    },
)


class SlotView(BodyLimitMixin, APIView):
    authentication_classes = [SlotKeyAuthentication]
    permission_classes = [WorkspaceAccess]
    parser_classes = [SegmentJSONParser]
    required_scopes = {"GET": Scope.INGEST, "POST": Scope.INGEST}

    def initial(self, request, *args, **kwargs):
        if request.method == "OPTIONS":
            return  # a CORS preflight carries no key
        super().initial(request, *args, **kwargs)

    def options(self, request, *args, **kwargs):
        return Response(status=204)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        for name, value in CORS_HEADERS.items():
            response.headers[name] = value
        return response


def slot_not_found(slot: str) -> Response:
    return Response(
        {"detail": _("There is no active content slot %(slot)s.") % {"slot": repr(slot)},
         "errors": {"slot": [_("Unknown or inactive slot.")]}},
        status=404,
    )  # fmt: skip


class PersonalizeView(SlotView):
    http_method_names = ["get", "options"]

    @extend_schema(
        tags=TAGS,
        summary="The content of a slot for a contact now",
        description="The highest-priority active variant whose context globs and rule match "
        "the contact now, else the slot's default; records a `slot_impression` event. An "
        "unknown or missing contact gets the default and nothing is recorded.",
        parameters=[
            OpenApiParameter("contact", str, description="The contact's external id."),
            OpenApiParameter("anonymous_id", str, description="Or an anonymous id."),
            OpenApiParameter("writeKey", str, description="An ingest key (or use a header)."),
            *(OpenApiParameter(key, str, description="Page context.") for key in CONTEXT_KEYS),
        ],
        responses={200: DecisionSerializer},
    )
    def get(self, request, slot: str):
        params = request.query_params
        try:
            decision = services.decide(
                request.workspace,
                slot,
                external_id=params.get("contact") or None,
                anonymous_id=params.get("anonymous_id") or None,
                context=services.clean_context(params),
            )
        except services.SlotNotFound:
            return slot_not_found(slot)
        return Response(decision.as_json())


class SlotClickView(SlotView):
    http_method_names = ["post", "options"]

    @extend_schema(
        tags=TAGS,
        summary="Record a click on a slot's content",
        description="Records a `slot_clicked` event for the impression's contact and variant "
        '(`{"impression_id": "…"}`), or for a contact and variant named directly '
        '(`{"contact": "…" | "anonymous_id": "…", "variant": "…"}`).',
        request=inline_serializer(
            "SlotClick",
            {
                "impression_id": serializers.CharField(required=False),
                "contact": serializers.CharField(required=False),
                "anonymous_id": serializers.CharField(required=False),
                "variant": serializers.CharField(required=False),
            },
        ),
        responses={
            202: inline_serializer("SlotClickRecorded", {"recorded": serializers.BooleanField()})
        },
    )
    def post(self, request, slot: str):
        data = request.data if isinstance(request.data, dict) else {}
        try:
            if data.get("impression_id"):
                click = services.click_from_impression(
                    request.workspace, slot, str(data["impression_id"])
                )
            elif data.get("variant") and (data.get("contact") or data.get("anonymous_id")):
                click = services.click_for_contact(
                    request.workspace, slot, str(data["variant"]),
                    external_id=data.get("contact"), anonymous_id=data.get("anonymous_id"),
                )  # fmt: skip
                if click is None:
                    return Response(
                        {"detail": _("No contact has that id."),
                         "errors": {"contact": [_("Unknown contact.")]}},
                        status=404,
                    )  # fmt: skip
            else:
                return Response(
                    {"detail": _("Send an impression_id, or a contact and a variant."),
                     "errors": {"impression_id": [_("This field is required.")]}},
                    status=400,
                )  # fmt: skip
        except services.SlotNotFound:
            return slot_not_found(slot)
        except services.UnknownVariant:
            return Response(
                {"detail": _("The slot has no active variant of that name."),
                 "errors": {"variant": [_("Unknown variant.")]}},
                status=400,
            )  # fmt: skip
        except services.InvalidImpression:
            return Response(
                {"detail": _("The impression id is not one this slot gave out."),
                 "errors": {"impression_id": [_("Unknown impression.")]}},
                status=400,
            )  # fmt: skip
        services.record_click(request.workspace, click)
        return Response({"recorded": True}, status=202)
