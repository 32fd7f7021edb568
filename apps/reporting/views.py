from django.shortcuts import render

from apps.accounts.access import workspace_view
from apps.accounts.models import ApiKey, Membership


@workspace_view()
def dashboard(request):
    workspace = request.workspace
    return render(
        request,
        "reporting/dashboard.html",
        {
            "member_count": Membership.objects.for_workspace(workspace).count(),
            "has_api_key": ApiKey.objects.for_workspace(workspace)
            .filter(revoked_at__isnull=True)
            .exists(),
        },
    )
