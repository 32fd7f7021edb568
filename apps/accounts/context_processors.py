from apps.accounts import services


def workspace(request) -> dict:
    """The current workspace and the others the user may switch to (for the navigation)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {
        "workspace": getattr(request, "workspace", None),
        "membership": getattr(request, "membership", None),
        "all_memberships": services.memberships_of(user),
    }
