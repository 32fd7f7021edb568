"""/api/v1/webhooks/: outbound webhook subscriptions, their deliveries, secret rotation, a
test ping and replays. Reading needs the read scope, changing the write scope."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from apps.accounts.choices import Scope
from apps.webhooks.choices import ALL_EVENTS, DeliveryStatus, WebhookEventType
from apps.webhooks.models import WebhookDelivery, WebhookSubscription, validate_http_url
from apps.webhooks.services import subscriptions as services
from orchestra.api import WorkspaceViewSet

EVENT_TYPE_CHOICES = [ALL_EVENTS, *WebhookEventType.values]


class WebhookSubscriptionSerializer(serializers.ModelSerializer):
    url = serializers.URLField(
        max_length=2000,
        validators=[validate_http_url],
        help_text="Where the events are POSTed (http or https).",
    )
    event_types = serializers.ListField(
        child=serializers.ChoiceField(choices=EVENT_TYPE_CHOICES),
        allow_empty=False,
        help_text='Event types to receive; "*" for all, including types added later.',
    )

    class Meta:
        model = WebhookSubscription
        fields = [
            "id",
            "url",
            "description",
            "event_types",
            "is_active",
            "failing_since",
            "disabled_at",
            "disabled_reason",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [
            "id",
            "failing_since",
            "disabled_at",
            "disabled_reason",
            "created_at",
            "updated_at",
        ]


class WebhookSubscriptionCreatedSerializer(WebhookSubscriptionSerializer):
    secret = serializers.CharField(
        read_only=True,
        help_text="The signing secret. Shown only in this answer: store it now.",
    )

    class Meta(WebhookSubscriptionSerializer.Meta):
        fields = [*WebhookSubscriptionSerializer.Meta.fields, "secret"]


class WebhookDeliverySerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "event_id",
            "event_type",
            "payload",
            "status",
            "attempts",
            "next_attempt_at",
            "last_attempt_at",
            "request_headers",
            "request_body",
            "response_status",
            "response_body",
            "error",
            "duration_ms",
            "created_at",
            "delivered_at",
        ]
        read_only_fields = fields


SecretSerializer = inline_serializer(
    "WebhookSecret", {"secret": serializers.CharField(help_text="The new signing secret.")}
)

EXAMPLE = {
    "url": "https://crm.example.com/hooks/orchestra",
    "description": "CRM sync",
    "event_types": ["contact.created", "message.clicked", "conversion"],
}


class WebhookSubscriptionViewSet(WorkspaceViewSet):
    """Outbound webhooks: each subscription receives the chosen events as JSON POSTs signed
    with HMAC-SHA256 (see the API guide's "Webhooks" section), retried with backoff."""

    queryset = WebhookSubscription.objects.all()
    serializer_class = WebhookSubscriptionSerializer
    filterset_fields = ["is_active"]
    ordering_fields = ["created_at"]
    action_scopes = {"deliveries": Scope.READ}

    @extend_schema(
        responses={201: WebhookSubscriptionCreatedSerializer},
        examples=[OpenApiExample("CRM sync", request_only=True, value=EXAMPLE)],
    )
    def create(self, request, *args, **kwargs):
        """Subscribe a URL; the answer carries the signing secret, shown this once."""
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        subscription, secret = services.create_subscription(
            request.workspace,
            data["url"],
            data["event_types"],
            data.get("description", ""),
            created_by=request.user if request.user and request.user.is_authenticated else None,
        )
        answer = WebhookSubscriptionCreatedSerializer(subscription).data
        answer["secret"] = secret
        return Response(answer, status=status.HTTP_201_CREATED)

    def perform_update(self, serializer):
        services.update_subscription(serializer.instance, **serializer.validated_data)

    def perform_destroy(self, instance):
        services.delete_subscription(instance)

    @extend_schema(request=None, responses=SecretSerializer)
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request, pk=None):
        """A new signing secret, in force at once; shown only in this answer."""
        return Response({"secret": services.rotate_secret(self.get_object())})

    @extend_schema(request=None, responses=WebhookDeliverySerializer)
    @action(detail=True, methods=["post"])
    def test(self, request, pk=None):
        """Send a `ping` event now; answers the delivery with the receiver's response."""
        ping = services.send_ping(self.get_object())
        return Response(WebhookDeliverySerializer(ping).data)

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "status",
                str,
                enum=DeliveryStatus.values,
                description="Only deliveries in this status",
            )
        ],
        responses=WebhookDeliverySerializer(many=True),
    )
    @action(detail=True, methods=["get"])
    def deliveries(self, request, pk=None):
        """The subscription's deliveries, newest first (cursor-paginated)."""
        subscription = self.get_object()
        deliveries = WebhookDelivery.objects.for_workspace(request.workspace).filter(
            subscription=subscription
        )
        status_filter = request.query_params.get("status")
        if status_filter:
            deliveries = deliveries.filter(status=status_filter)
        page = self.paginate_queryset(deliveries.order_by("-id"))
        return self.get_paginated_response(WebhookDeliverySerializer(page, many=True).data)

    @extend_schema(
        request=None,
        responses=WebhookDeliverySerializer,
        parameters=[OpenApiParameter("delivery_id", int, OpenApiParameter.PATH)],
    )
    @action(
        detail=True,
        methods=["post"],
        url_path=r"deliveries/(?P<delivery_id>\d+)/replay",
        url_name="replay",
    )
    def replay(self, request, pk=None, delivery_id=None):
        """Send a delivery again now (same event id), with a fresh retry schedule."""
        subscription = self.get_object()
        delivery = get_object_or_404(
            WebhookDelivery.objects.for_workspace(request.workspace),
            subscription=subscription,
            pk=delivery_id,
        )
        delivery.subscription = subscription
        return Response(WebhookDeliverySerializer(services.replay(delivery)).data)
