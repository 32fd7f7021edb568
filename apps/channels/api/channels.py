"""/api/v1/channels/: the workspace's channels, read only. Secrets are never part of the
answer; `secrets_set` names the ones a channel holds."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.channels.models import Channel
from apps.channels.services import channel_settings
from orchestra.api import WorkspaceReadOnlyViewSet


class ChannelSerializer(serializers.ModelSerializer):
    secrets_set = serializers.SerializerMethodField(
        help_text="Names of the secret settings the channel holds (their values are never shown)."
    )

    class Meta:
        model = Channel
        fields = [
            "id",
            "name",
            "type",
            "provider",
            "config",
            "secrets_set",
            "rate_per_second",
            "is_default",
            "is_active",
            "created_at",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_secrets_set(self, channel: Channel) -> list[str]:
        return channel_settings.secrets_set(channel)


class ChannelViewSet(WorkspaceReadOnlyViewSet):
    """The ways out of the workspace (email, SMS, web push, webhook) and their providers. A
    workspace without an email channel lists the one that sends with the server's settings."""

    queryset = Channel.objects.all()
    serializer_class = ChannelSerializer
    filterset_fields = ["type", "is_active", "is_default"]

    def list(self, request, *args, **kwargs):
        channel_settings.workspace_channels(request.workspace)
        return super().list(request, *args, **kwargs)
