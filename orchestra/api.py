"""What every API endpoint shares: workspace scoping, pagination and JSON errors."""

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import Http404
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions, status, viewsets
from rest_framework.views import exception_handler as drf_exception_handler


class WorkspaceViewSetMixin:
    """Every queryset filtered by the request's workspace; new rows created in it.

    The workspace comes from the API key or, for a signed-in member, the
    current workspace (see CurrentWorkspaceMiddleware). A row of another
    workspace is never found, so it answers 404 exactly like a missing one.
    """

    def get_queryset(self):
        return super().get_queryset().for_workspace(self.request.workspace)

    def perform_create(self, serializer):
        serializer.save(workspace=self.request.workspace)


class WorkspaceViewSet(WorkspaceViewSetMixin, viewsets.ModelViewSet):
    pass


class WorkspaceReadOnlyViewSet(WorkspaceViewSetMixin, viewsets.ReadOnlyModelViewSet):
    pass


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = _("The request body is too large.")
    default_code = "payload_too_large"


class BodyLimitMixin:
    """Refuse bodies over MAX_REQUEST_BYTES with 413 before reading them."""

    def initial(self, request, *args, **kwargs):
        length = request.META.get("CONTENT_LENGTH") or 0
        try:
            too_big = int(length) > settings.MAX_REQUEST_BYTES
        except ValueError:
            too_big = False
        if too_big:
            raise PayloadTooLarge(
                _("The request body is %(size)s bytes; the limit is %(limit)s.")
                % {"size": length, "limit": settings.MAX_REQUEST_BYTES}
            )
        super().initial(request, *args, **kwargs)


def exception_handler(exc, context):
    """DRF's errors, always as JSON with a `detail` message; field errors keep their field names."""
    if isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(response.data, list):
        response.data = {"detail": response.data}
    elif isinstance(exc, exceptions.ValidationError) and "detail" not in response.data:
        response.data = {"detail": "Invalid input.", "errors": response.data}
    return response
