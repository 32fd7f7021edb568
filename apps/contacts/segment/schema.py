"""The shapes of Segment messages and our answers, for the OpenAPI document only: the
messages themselves are read by apps.contacts.segment.ingest."""

from drf_spectacular.utils import OpenApiExample, OpenApiResponse
from rest_framework import serializers


class SegmentMessageSerializer(serializers.Serializer):
    userId = serializers.CharField(required=False, help_text="Our external_id.")
    anonymousId = serializers.CharField(required=False, help_text="A device or browser id.")
    messageId = serializers.CharField(
        required=False, help_text="Unique per message: a resent message is stored once."
    )
    timestamp = serializers.DateTimeField(required=False)
    originalTimestamp = serializers.DateTimeField(required=False)
    sentAt = serializers.DateTimeField(
        required=False, help_text="The sender's clock when sending; corrects its skew."
    )
    context = serializers.DictField(required=False)
    integrations = serializers.DictField(required=False)


class SegmentIdentifySerializer(SegmentMessageSerializer):
    traits = serializers.DictField(required=False)


class SegmentTrackSerializer(SegmentMessageSerializer):
    event = serializers.CharField(max_length=200)
    properties = serializers.DictField(required=False)


class SegmentPageSerializer(SegmentMessageSerializer):
    name = serializers.CharField(required=False)
    category = serializers.CharField(required=False)
    properties = serializers.DictField(required=False)


class SegmentScreenSerializer(SegmentPageSerializer):
    pass


class SegmentGroupSerializer(SegmentMessageSerializer):
    groupId = serializers.CharField()
    traits = serializers.DictField(required=False)


class SegmentAliasSerializer(serializers.Serializer):
    previousId = serializers.CharField(help_text="An anonymous id or an earlier userId.")
    userId = serializers.CharField()
    messageId = serializers.CharField(required=False)
    timestamp = serializers.DateTimeField(required=False)
    context = serializers.DictField(required=False)


class SegmentBatchSerializer(serializers.Serializer):
    batch = serializers.ListField(
        child=serializers.DictField(),
        max_length=10_000,
        help_text="Messages of any type, each with its `type`.",
    )
    sentAt = serializers.DateTimeField(required=False)
    context = serializers.DictField(required=False)


class SegmentSuccessSerializer(serializers.Serializer):
    success = serializers.BooleanField()


class SegmentFailureSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    detail = serializers.CharField()
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()), required=False
    )


class SegmentBatchResultSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    accepted = serializers.IntegerField()
    rejected = serializers.ListField(child=serializers.DictField())
    detail = serializers.CharField(required=False)


FAILURES = {
    401: OpenApiResponse(SegmentFailureSerializer, "No key, or an unknown or revoked one."),
    403: OpenApiResponse(SegmentFailureSerializer, "The key has neither `ingest` nor `write`."),
    413: OpenApiResponse(SegmentFailureSerializer, "The body, or the batch, is too large."),
}
SINGLE_RESPONSES = {
    200: SegmentSuccessSerializer,
    400: OpenApiResponse(SegmentFailureSerializer, "The message, named field by field."),
    **FAILURES,
}
BATCH_RESPONSES = {
    200: OpenApiResponse(SegmentBatchResultSerializer, "Some or all messages were accepted."),
    400: OpenApiResponse(
        SegmentBatchResultSerializer, "Every message was rejected, or the body is not a batch."
    ),
    **FAILURES,
}


def example(title: str, value: dict) -> list[OpenApiExample]:
    return [OpenApiExample(title, value=value, request_only=True)]


IDENTIFY_EXAMPLE = example(
    "A visitor signs up",
    {
        "type": "identify",
        "userId": "u-1001",
        "anonymousId": "7f3c9e2a-visitor",
        "traits": {"email": "ann@example.com", "name": "Ann Lee", "plan": "pro"},
        "context": {"timezone": "Europe/Copenhagen", "locale": "da-DK"},
        "messageId": "0b6c1c2e-identify",
        "timestamp": "2026-03-01T10:00:00.000Z",
    },
)
TRACK_EXAMPLE = example(
    "A purchase",
    {
        "type": "track",
        "userId": "u-1001",
        "event": "Order Completed",
        "properties": {"order_id": "o-77", "revenue": 120, "currency": "DKK"},
        "messageId": "0b6c1c2e-track",
        "timestamp": "2026-03-01T10:05:00.000Z",
    },
)
PAGE_EXAMPLE = example(
    "A page view",
    {
        "type": "page",
        "anonymousId": "7f3c9e2a-visitor",
        "name": "Pricing",
        "category": "Docs",
        "properties": {"plan_shown": "pro"},
        "context": {
            "page": {"url": "https://example.com/pricing", "path": "/pricing",
                     "title": "Pricing", "referrer": "https://www.google.com/"}
        },
    },
)  # fmt: skip
SCREEN_EXAMPLE = example(
    "A screen view in an app",
    {"type": "screen", "userId": "u-1001", "name": "Basket", "properties": {"items": 2}},
)
GROUP_EXAMPLE = example(
    "A user in a company account",
    {"type": "group", "userId": "u-1001", "groupId": "acme-inc",
     "traits": {"name": "Acme Inc", "employees": 120}},
)  # fmt: skip
ALIAS_EXAMPLE = example(
    "An anonymous visitor becomes a user",
    {"type": "alias", "previousId": "7f3c9e2a-visitor", "userId": "u-1001"},
)
BATCH_EXAMPLE = example(
    "Several messages",
    {
        "batch": [
            {"type": "identify", "userId": "u-1001", "traits": {"email": "ann@example.com"}},
            {"type": "track", "userId": "u-1001", "event": "Signed Up", "messageId": "m-1"},
            {"type": "page", "anonymousId": "7f3c9e2a-visitor", "name": "Home"},
        ],
        "sentAt": "2026-03-01T10:05:01.000Z",
    },
)
