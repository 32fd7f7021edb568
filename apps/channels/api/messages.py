"""Messages with their status and history, read-only (`read` scope). The same filters as
the messages log (apps.channels.filters.MessageFilterSet)."""

from django_filters.rest_framework import DjangoFilterBackend
from rest_framework import serializers

from apps.channels.filters import MessageFilterSet
from apps.channels.models import Message, MessageEvent
from orchestra.api import WorkspaceReadOnlyViewSet
from orchestra.pagination import CursorPagination

CONTENT = ("subject", "preheader", "html", "text", "body")  # the templates', not needed here


class MessageEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = MessageEvent
        fields = ["kind", "detail", "at"]


class MessageSerializer(serializers.ModelSerializer):
    contact = serializers.IntegerField(source="contact_id", read_only=True)
    channel = serializers.IntegerField(source="channel_id", read_only=True)
    channel_type = serializers.CharField(source="channel.type", read_only=True)
    template = serializers.SlugField(source="template_version.template.slug", read_only=True)
    template_version = serializers.IntegerField(source="template_version.number", read_only=True)

    class Meta:
        model = Message
        fields = ["id", "contact", "channel", "channel_type", "template", "template_version",
                  "recipient", "subject", "status", "reason", "journey_id", "node_id",
                  "provider_message_id", "attempts", "created_at", "sent_at", "delivered_at",
                  "opened_at", "clicked_at"]  # fmt: skip
        read_only_fields = fields


class MessageDetailSerializer(MessageSerializer):
    history = MessageEventSerializer(many=True, read_only=True)

    class Meta(MessageSerializer.Meta):
        fields = [*MessageSerializer.Meta.fields, "history"]
        read_only_fields = fields


class MessagePagination(CursorPagination):
    # Newest first along the (workspace, created_at) index, like the messages log.
    ordering = ("-created_at", "-id")


class MessageViewSet(WorkspaceReadOnlyViewSet):
    """Messages to contacts, newest first, with their status; one message adds its history
    (every status change and engagement, oldest first)."""

    queryset = Message.objects.select_related("channel", "template_version__template").defer(
        "context", "links", *(f"template_version__{name}" for name in CONTENT),
        *(f"template_version__template__{name}" for name in CONTENT),
    )  # fmt: skip
    serializer_class = MessageSerializer
    filterset_class = MessageFilterSet
    pagination_class = MessagePagination
    filter_backends = [DjangoFilterBackend]  # no ?ordering=: the cursor's order only

    def get_queryset(self):
        queryset = super().get_queryset()
        if self.action == "retrieve":
            queryset = queryset.prefetch_related("history")
        return queryset

    def get_serializer_class(self):
        return MessageDetailSerializer if self.action == "retrieve" else MessageSerializer
