from drf_spectacular.utils import extend_schema
from rest_framework import serializers, views
from rest_framework.response import Response

from apps.accounts.models import Membership, Workspace
from orchestra.api import WorkspaceReadOnlyViewSet


class WorkspaceSerializer(serializers.ModelSerializer):
    class Meta:
        model = Workspace
        fields = ["name", "slug", "timezone", "default_from_name", "default_from_email"]


class CurrentWorkspaceView(views.APIView):
    """The workspace the API key (or session) acts for: a quick way to check a key works."""

    @extend_schema(responses=WorkspaceSerializer)
    def get(self, request):
        return Response(WorkspaceSerializer(request.workspace).data)


class MembershipSerializer(serializers.ModelSerializer):
    email = serializers.EmailField(source="user.email", read_only=True)
    name = serializers.CharField(source="user.name", read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "email", "name", "role", "created_at"]


class MembershipViewSet(WorkspaceReadOnlyViewSet):
    """The people of the workspace and their roles."""

    queryset = Membership.objects.select_related("user")
    serializer_class = MembershipSerializer
    filterset_fields = ["role"]
