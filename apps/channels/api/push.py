"""Browsers subscribing to web push, from the workspace's own web site: the page holds an
`ingest` API key (as it does for tracking), asks the visitor's permission, and posts the
browser's PushSubscription here."""

from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response

from apps.accounts.authentication import ApiKeyAuthentication
from apps.accounts.choices import Scope
from apps.accounts.models import ApiKey
from apps.accounts.permissions import WorkspaceAccess
from apps.channels.services import push as push_services
from orchestra.api import BodyLimitMixin

# The key lives in web pages and travels in a header, never a cookie, so any site may
# call these endpoints; the browser asks first (a preflight) because of that header.
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, POST, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type",
    "Access-Control-Max-Age": "86400",
}
TAGS = ["Web push"]

SUBSCRIPTION_EXAMPLE = OpenApiExample(
    "A browser's subscription",
    value={
        "external_id": "u1",
        "subscription": {
            "endpoint": "https://fcm.googleapis.com/fcm/send/dpH5…",
            "keys": {
                "p256dh": "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-"
                "Ts1XbjhazAkj7I99e8QcYP7DkM",
                "auth": "tBHItJI5svbpez7KI4CCXg",
            },
        },
    },
    request_only=True,
)


class ApiKeyOnly(WorkspaceAccess):
    """A key, never a session: these endpoints skip CSRF checks (any site may call them),
    so a signed-in person's cookie must not count."""

    def has_permission(self, request, view) -> bool:
        return isinstance(request.auth, ApiKey) and super().has_permission(request, view)


class PushSubscriptionViewSet(BodyLimitMixin, viewsets.GenericViewSet):
    """`POST` keeps a browser's subscription for a contact (created when unknown), `DELETE`
    forgets it, `GET vapid-key/` answers the key browsers subscribe with."""

    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [ApiKeyOnly]
    required_scopes = {"GET": Scope.INGEST, "POST": Scope.INGEST, "DELETE": Scope.INGEST}
    serializer_class = serializers.Serializer
    pagination_class = None

    @classmethod
    def as_view(cls, actions=None, **initkwargs):
        # The list route (POST) also takes DELETE: the browser names its subscription by
        # its endpoint, it never learns our id for it.
        if actions and actions.get("post") == "create":
            actions = {**actions, "delete": "remove"}
        return super().as_view(actions, **initkwargs)

    def initial(self, request, *args, **kwargs):
        if request.method == "OPTIONS":
            return  # a CORS preflight carries no key; it only asks what is allowed
        super().initial(request, *args, **kwargs)

    def options(self, request, *args, **kwargs):
        return Response(status=204)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        for name, value in CORS_HEADERS.items():
            response.headers[name] = value
        return response

    @extend_schema(
        tags=TAGS,
        summary="Subscribe a browser to web push",
        description="Names the contact by `external_id`, `email` or `anonymous_id` (created "
        "when unknown). A new subscription records the contact's push consent as subscribed "
        "(the browser's permission prompt was the opt-in). Answers 201 for a new "
        "subscription, 200 when the endpoint was known (its keys and contact are updated).",
        request=inline_serializer(
            "PushSubscriptionRequest",
            {
                "external_id": serializers.CharField(required=False),
                "email": serializers.EmailField(required=False),
                "anonymous_id": serializers.CharField(required=False),
                "subscription": serializers.DictField(),
            },
        ),
        responses={
            200: OpenApiResponse(description="Updated"),
            201: OpenApiResponse(description="Subscribed"),
        },
        examples=[SUBSCRIPTION_EXAMPLE],
    )
    def create(self, request):
        clean, errors = push_services.clean_subscription(request.data)
        if errors:
            raise ValidationError(errors)
        user_agent = request.headers.get("User-Agent", "")
        _subscription, created = push_services.subscribe(request.workspace, clean, user_agent)
        return Response(
            {"endpoint": clean.endpoint, "created": created}, status=201 if created else 200
        )

    @extend_schema(
        tags=TAGS,
        summary="Unsubscribe a browser",
        description='Body: `{"endpoint": "<the subscription\'s endpoint>"}`. The contact\'s '
        "consent is left as it is; with no subscription left, it gets no push.",
        request=inline_serializer("PushUnsubscribeRequest", {"endpoint": serializers.URLField()}),
        responses={204: None, 404: OpenApiResponse(description="No such subscription")},
    )
    def remove(self, request):
        endpoint = request.data.get("endpoint") if isinstance(request.data, dict) else None
        if not isinstance(endpoint, str) or not endpoint:
            raise ValidationError({"endpoint": [_("The subscription's endpoint.")]})
        if not push_services.unsubscribe(request.workspace, endpoint):
            raise NotFound(_("No such subscription."))
        return Response(status=204)

    @extend_schema(
        tags=TAGS,
        summary="The key browsers subscribe with",
        description="Pass it to pushManager.subscribe() as applicationServerKey.",
        responses=inline_serializer("VapidKey", {"public_key": serializers.CharField()}),
    )
    @action(detail=False, methods=["get"], url_path="vapid-key")
    def vapid_key(self, request):
        key = push_services.vapid_public_key(request.workspace)
        if not key:
            raise NotFound(_("The workspace has no web push channel."))
        return Response({"public_key": key})
