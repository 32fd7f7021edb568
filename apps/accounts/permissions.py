from rest_framework import permissions

from apps.accounts.choices import Scope
from apps.accounts.models import ApiKey


def required_scope(request, view) -> str:
    """The scope a request needs: the view may name one per action (`action_scopes`) or
    per method (`required_scopes`); otherwise reading needs read and changing needs write."""
    by_action = getattr(view, "action_scopes", {})
    if getattr(view, "action", None) in by_action:
        return by_action[view.action]
    declared = getattr(view, "required_scopes", {})
    if request.method in declared:
        return declared[request.method]
    return Scope.READ if request.method in permissions.SAFE_METHODS else Scope.WRITE


class WorkspaceAccess(permissions.BasePermission):
    """API keys need the scope; signed-in members need a role that may do it.

    Reading needs any membership; changing needs owner or marketer; views that
    set `owner_only = True` need an owner for changes.
    """

    def has_permission(self, request, view) -> bool:
        if getattr(request._request, "workspace", None) is None:
            return False
        scope = required_scope(request, view)
        if isinstance(request.auth, ApiKey):
            return request.auth.has_scope(scope) or (
                scope == Scope.INGEST and request.auth.has_scope(Scope.WRITE)
            )
        # A member counts only when the view's own authentication found them (a session,
        # which brings its CSRF check): never by the middleware's view of the cookie alone.
        if not (request.user and request.user.is_authenticated):
            return False
        membership = getattr(request._request, "membership", None)
        if membership is None:
            return False
        if scope == Scope.READ:
            return True
        if getattr(view, "owner_only", False):
            return membership.can_manage
        return membership.can_edit
