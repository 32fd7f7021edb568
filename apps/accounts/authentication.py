from django.contrib.auth.models import AnonymousUser
from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from apps.accounts import services


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <key>`: the request acts for the key's workspace, in its scopes."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode(errors="replace")
        scheme, _sep, raw_key = header.partition(" ")
        if scheme != self.keyword:
            return None
        raw_key = raw_key.strip()
        if not raw_key:
            raise exceptions.AuthenticationFailed(_("The Bearer header carries no API key."))
        return self.authenticate_key(request, raw_key)

    def authenticate_key(self, request, raw_key: str):
        api_key = services.authenticate_api_key(raw_key)
        if api_key is None:
            raise exceptions.AuthenticationFailed(_("The API key is unknown or revoked."))
        # The key decides the workspace, whatever a session cookie may say.
        request._request.workspace = api_key.workspace
        request._request.membership = None
        return AnonymousUser(), api_key

    def authenticate_header(self, request):
        return self.keyword


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    """Describes API key authentication in the OpenAPI document."""

    target_class = ApiKeyAuthentication
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A workspace API key: `Authorization: Bearer orc_…`.",
        }
