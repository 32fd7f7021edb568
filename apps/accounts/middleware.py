from apps.accounts import services

SESSION_KEY = "workspace_id"


class CurrentWorkspaceMiddleware:
    """Sets request.workspace and request.membership for a signed-in user.

    The workspace is the one chosen in the switcher (kept in the session), else
    the user's first. API requests with a key get theirs from the key instead.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.workspace = None
        request.membership = None
        if request.user.is_authenticated:
            membership = services.membership_for(request.user, request.session.get(SESSION_KEY))
            if membership is not None:
                request.membership = membership
                request.workspace = membership.workspace
        return self.get_response(request)
