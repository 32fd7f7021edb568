"""Access rules for the HTML views: signed in, a member of the current workspace, a fitting role."""

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import render

EDIT = "edit"
MANAGE = "manage"


def workspace_view(change: str | None = None):
    """Decorate a view that works inside the current workspace.

    Anyone in the workspace may read (GET). A request that changes something
    (any other method) needs `change`: EDIT for owners and marketers, MANAGE
    for owners only; without `change`, the view accepts no changes at all.
    """

    def decorator(view):
        @login_required
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            membership = request.membership
            if membership is None:
                return render(request, "accounts/no_workspace.html", status=403)
            if request.method not in ("GET", "HEAD"):
                allowed = {
                    EDIT: membership.can_edit,
                    MANAGE: membership.can_manage,
                    None: False,
                }[change]
                if not allowed:
                    raise PermissionDenied
            return view(request, *args, **kwargs)

        return wrapped

    return decorator
