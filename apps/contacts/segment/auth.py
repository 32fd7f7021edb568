"""How Segment clients authenticate and encode what they send."""

import base64
import binascii
import gzip
import io
import zlib

from django.conf import settings
from django.utils.translation import gettext as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, parsers

from apps.accounts.authentication import ApiKeyAuthentication
from orchestra import parsers as json_body
from orchestra.api import PayloadTooLarge


class WriteKeyAuthentication(ApiKeyAuthentication):
    """A workspace API key sent as Segment clients send their write key: the HTTP basic
    user with an empty password (analytics-python), `writeKey` in the JSON body
    (analytics.js), or `Authorization: Bearer` like the rest of the API."""

    def authenticate(self, request):
        scheme, _sep, credentials = authentication.get_authorization_header(request).partition(b" ")
        if scheme.lower() == b"basic":
            return self.authenticate_key(request, basic_auth_key(credentials))
        found = super().authenticate(request)
        if found is not None:
            return found
        # Read only when no header named a key: parsing costs more than a header lookup.
        data = request.data
        write_key = data.get("writeKey") if isinstance(data, dict) else None
        if isinstance(write_key, str) and write_key.strip():
            return self.authenticate_key(request, write_key.strip())
        return None


def basic_auth_key(credentials: bytes) -> str:
    """The key in `Basic base64(key:)`; a key given as the password is taken too."""
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise exceptions.AuthenticationFailed(
            _("The basic credentials are not valid base64.")
        ) from None
    user, _sep, password = decoded.partition(":")
    key = user.strip() or password.strip()
    if not key:
        raise exceptions.AuthenticationFailed(_("The basic credentials carry no write key."))
    return key


class WriteKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    """Describes the write key in the OpenAPI document."""

    target_class = WriteKeyAuthentication
    name = "SegmentWriteKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "basic",
            "description": "A workspace API key (scope `ingest` or `write`) as the basic user "
            "with an empty password, as Segment clients send their write key. "
            "`writeKey` in the JSON body and `Authorization: Bearer` work too.",
        }


class SegmentJSONParser(parsers.BaseParser):
    """JSON whatever the Content-Type says, gzip-compressed or not.

    analytics.js posts `text/plain` so that browsers skip the CORS preflight, and
    analytics-python compresses with `Content-Encoding: gzip` when asked to.
    """

    media_type = "*/*"

    def parse(self, stream, media_type=None, parser_context=None):
        meta = parser_context["request"].META
        limit = settings.MAX_REQUEST_BYTES
        body = stream.read(limit + 1)
        encoding = meta.get("HTTP_CONTENT_ENCODING", "").strip().lower()
        if encoding == "gzip":
            body = gunzip(body, limit)
        elif encoding not in ("", "identity"):
            raise exceptions.UnsupportedMediaType(
                encoding,
                _("Content-Encoding %(encoding)s is not supported; send gzip or plain JSON.")
                % {"encoding": encoding},
            )
        if len(body) > limit:
            raise PayloadTooLarge(
                _("The request body is over the limit of %(limit)s bytes.") % {"limit": limit}
            )
        try:
            return json_body.loads(body)
        except (ValueError, RecursionError) as exc:
            raise exceptions.ParseError(
                _("The body is not valid JSON: %(error)s") % {"error": exc}
            ) from None


def gunzip(body: bytes, limit: int) -> bytes:
    """The uncompressed body, read no further than the limit (a small gzip can expand
    to gigabytes)."""
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(body)) as compressed:
            data = compressed.read(limit + 1)
    except (OSError, EOFError, zlib.error):
        raise exceptions.ParseError(
            _("The body says Content-Encoding: gzip but is not valid gzip.")
        ) from None
    if len(data) > limit:
        raise PayloadTooLarge(
            _("Uncompressed, the request body is over the limit of %(limit)s bytes.")
            % {"limit": limit}
        )
    return data
