"""Providers calling back with delivery receipts. Nobody signs in here: a JSON gateway
proves itself with the per-channel token in its URL, Twilio with its request signature.
An unknown message answers 200 all the same, since gateways resend on errors."""

import json

from django.conf import settings
from django.http import HttpResponse, HttpResponseBadRequest, HttpResponseForbidden
from django.shortcuts import get_object_or_404
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from apps.channels.choices import ChannelType
from apps.channels.models import Channel
from apps.channels.providers import sms


def _channel(channel_id: int, provider: str) -> Channel:
    channels = Channel.objects.select_related("workspace")
    return get_object_or_404(channels, pk=channel_id, type=ChannelType.SMS, provider=provider)


@csrf_exempt  # the gateway has no session; the token in the URL is the credential
@never_cache
@require_POST
def sms_receipt(request, channel_id, token):
    """`{"id": provider's message id, "status": "delivered" | "failed" | "undelivered"}`."""
    channel = _channel(channel_id, sms.HttpJsonSms.key)
    if not sms.receipt_token_matches(channel, token):
        return HttpResponseForbidden()
    try:
        receipt = json.loads(request.body)
    except ValueError:
        return HttpResponseBadRequest()
    if not isinstance(receipt, dict):
        return HttpResponseBadRequest()
    detail = receipt.get("error") or receipt.get("detail") or ""
    sms.apply_receipt(
        channel,
        str(receipt.get("id") or ""),
        str(receipt.get("status") or ""),
        detail=str(detail)[:300],
    )
    return HttpResponse(status=200)


@csrf_exempt  # Twilio has no session; its X-Twilio-Signature is checked instead
@never_cache
@require_POST
def twilio_receipt(request, channel_id):
    """Twilio's status callback: MessageSid, MessageStatus (and ErrorCode when it failed)."""
    channel = _channel(channel_id, sms.TwilioSms.key)
    # Twilio signs the URL it was given: SITE_URL's, whatever proxies stand in between.
    url = settings.SITE_URL + request.get_full_path()
    params = {name: request.POST.getlist(name) for name in request.POST}
    signature = request.headers.get("X-Twilio-Signature", "")
    if not sms.twilio_signature_matches(channel, url, params, signature):
        return HttpResponseForbidden()
    error_code = request.POST.get("ErrorCode")
    sms.apply_receipt(
        channel,
        request.POST.get("MessageSid", ""),
        request.POST.get("MessageStatus", ""),
        detail=f"Twilio error {error_code}" if error_code else "",
    )
    return HttpResponse(status=200)
