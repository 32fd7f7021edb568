"""The Segment HTTP tracking API's endpoints, so existing analytics.js and
analytics-python code can send to Orchestra unchanged."""

from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.choices import Scope
from apps.accounts.permissions import WorkspaceAccess
from apps.contacts.normalize import InvalidValue
from apps.contacts.segment import schema
from apps.contacts.segment.auth import SegmentJSONParser, WriteKeyAuthentication
from apps.contacts.segment.ingest import MAX_BATCH_MESSAGES, ingest_messages, parse_sent_at
from orchestra.api import BodyLimitMixin, PayloadTooLarge

TAGS = ["Segment-compatible ingest"]
# Write keys live in web pages and travel in a header or the body, never in a cookie,
# so any site may call these endpoints (as Segment's own API allows).
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, Content-Encoding",
    "Access-Control-Max-Age": "86400",
}


def failure(detail: str, errors: dict, status: int = 400) -> Response:
    return Response({"success": False, "detail": detail, "errors": errors}, status=status)


class SegmentView(BodyLimitMixin, APIView):
    """One Segment call of `message_type`. Only our key authentication runs, so there
    is no session and no CSRF check."""

    authentication_classes = [WriteKeyAuthentication]
    permission_classes = [WorkspaceAccess]
    parser_classes = [SegmentJSONParser]
    required_scopes = {"POST": Scope.INGEST}
    http_method_names = ["post", "options"]
    message_type = ""

    def initial(self, request, *args, **kwargs):
        self.received_at = timezone.now()
        if request.method == "OPTIONS":
            return  # a browser's CORS preflight carries no key; it only asks what is allowed
        super().initial(request, *args, **kwargs)

    def options(self, request, *args, **kwargs):
        return Response(status=204)

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        if isinstance(response.data, dict):
            response.data = {"success": False, **response.data}
        return response

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        for name, value in CORS_HEADERS.items():
            response.headers[name] = value
        return response

    def post(self, request):
        message = request.data
        if not isinstance(message, dict):
            return failure(
                _("Send one message as a JSON object."),
                {"non_field_errors": [_("Send one message as a JSON object.")]},
            )
        result = ingest_messages(
            request.workspace, [{**message, "type": self.message_type}], self.received_at
        )
        if result.rejected:
            return failure(_("The message was not accepted."), result.rejected[0]["errors"])
        return Response({"success": True})


def single_message_view(message_type: str, *, summary, description, request, examples):
    """The endpoint for one Segment call of `message_type`, with its OpenAPI description."""
    view = type(f"{message_type.title()}View", (SegmentView,), {"message_type": message_type})
    return extend_schema_view(
        post=extend_schema(
            tags=TAGS,
            operation_id=f"segment_{message_type}",
            summary=summary,
            description=description,
            request={"application/json": request},
            responses=schema.SINGLE_RESPONSES,
            examples=examples,
        )
    )(view)


IdentifyView = single_message_view(
    "identify",
    summary="Identify a person",
    description="Who the user is and their traits. `userId` is the contact's external_id. "
    "email, phone, firstName/first_name, lastName/last_name (or name, split in two) and "
    "context.timezone / context.locale become profile fields; every other trait becomes an "
    "attribute. With an anonymousId, the anonymous profile (its events, lists and consent) "
    "is merged into the known contact.",
    request=schema.SegmentIdentifySerializer,
    examples=schema.IDENTIFY_EXAMPLE,
)


TrackView = single_message_view(
    "track",
    summary="Track an event",
    description="An event named `event` with its `properties`, for the contact named by "
    "userId (else anonymousId; unknown ones are created). `timestamp` is corrected for the "
    "sender's clock with `sentAt`. A resent `messageId` is accepted and stored once.",
    request=schema.SegmentTrackSerializer,
    examples=schema.TRACK_EXAMPLE,
)


PageView = single_message_view(
    "page",
    summary="Record a page view",
    description="An event named `page`: the properties plus `name`, `category`, and `url`, "
    "`path`, `title` and `referrer` from context.page.",
    request=schema.SegmentPageSerializer,
    examples=schema.PAGE_EXAMPLE,
)


ScreenView = single_message_view(
    "screen",
    summary="Record a screen view",
    description="An event named `screen` (a mobile app's page): the properties plus `name` "
    "and `category`.",
    request=schema.SegmentScreenSerializer,
    examples=schema.SCREEN_EXAMPLE,
)


GroupView = single_message_view(
    "group",
    summary="Put a person in a group",
    description="An event named `group` with properties `{group_id, ...traits}`, and the "
    "contact's `group_id` attribute set.",
    request=schema.SegmentGroupSerializer,
    examples=schema.GROUP_EXAMPLE,
)


AliasView = single_message_view(
    "alias",
    summary="Join two ids of one person",
    description="`previousId` (an anonymous id or an earlier userId) and `userId` are one "
    "person: the previous profile is merged into the user's, or renamed when the user is "
    "new.",
    request=schema.SegmentAliasSerializer,
    examples=schema.ALIAS_EXAMPLE,
)


@extend_schema_view(
    post=extend_schema(
        tags=TAGS,
        operation_id="segment_batch",
        summary="Send many messages",
        description="Up to 10,000 messages of any type (what analytics-python sends). Identify "
        "and alias messages are applied first, in order; then all events are stored together. "
        "Each rejected message is named by its index; the others are kept. A batch-level "
        "`sentAt` and `context` apply to messages without their own. Answers 400 only when "
        "every message was rejected.",
        request={"application/json": schema.SegmentBatchSerializer},
        responses=schema.BATCH_RESPONSES,
        examples=schema.BATCH_EXAMPLE,
    )
)
class BatchView(SegmentView):
    def post(self, request):
        data = request.data
        batch = data.get("batch") if isinstance(data, dict) else None
        if not isinstance(batch, list):
            return failure(
                _("Send the messages as a list under batch."),
                {"batch": [_("Send the messages as a list under batch.")]},
            )
        if len(batch) > MAX_BATCH_MESSAGES:
            raise PayloadTooLarge(
                _("%(count)d messages; at most %(limit)d per batch.")
                % {"count": len(batch), "limit": MAX_BATCH_MESSAGES}
            )
        try:
            sent_at = parse_sent_at(data.get("sentAt"))
        except InvalidValue as exc:
            return failure(_("The batch's sentAt is not a date and time."), {"sentAt": [str(exc)]})
        result = ingest_messages(
            request.workspace, batch, self.received_at, sent_at=sent_at, context=data.get("context")
        )
        every_one_rejected = bool(batch) and len(result.rejected) == len(batch)
        body = {"success": not every_one_rejected}
        if every_one_rejected:
            body["detail"] = _("Every message was rejected.")
        body |= {"accepted": result.accepted, "rejected": result.rejected}
        return Response(body, status=400 if every_one_rejected else 200)


def analytics_js_view(view: type[SegmentView]):
    """The same endpoint at the one-letter path analytics.js posts to (/v1/t, /v1/b),
    left out of the OpenAPI document, which describes it once at the long path."""
    short = type(f"{view.__name__}AnalyticsJs", (view,), {"__doc__": view.__doc__})
    return extend_schema_view(post=extend_schema(exclude=True))(short).as_view()
