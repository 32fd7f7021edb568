"""The links inside messages: the open pixel, the click redirect and the unsubscribe page
(with RFC 8058 one-click unsubscribe). Recipients are not logged in; a signed token names
the message, so nobody can forge an open or unsubscribe someone else."""

import base64

from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from apps.channels.models import Message
from apps.channels.services import tracking
from apps.channels.services.rendering import read_tracking_token

PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


def _message(kind: str, token: str) -> tuple[Message, list]:
    value = read_tracking_token(kind, token)
    if not value:
        raise Http404
    message = (
        Message.objects.select_related("channel", "contact", "template_version__template")
        .filter(pk=value[0])
        .first()
    )
    if message is None:
        raise Http404
    return message, value


@never_cache
@require_GET
def open_pixel(request, token):
    try:
        message, _value = _message("open", token)
    except Http404:
        message = None  # a broken image would show in the mail; answer the pixel anyway
    if message is not None:
        tracking.mark_opened(message, detail=request.headers.get("User-Agent", "")[:300])
    return HttpResponse(PIXEL, content_type="image/gif")


@never_cache
@require_GET
def click(request, token):
    message, value = _message("click", token)
    if len(value) != 2 or not isinstance(value[1], int) or not 0 <= value[1] < len(message.links):
        raise Http404
    url = message.links[value[1]]  # only a link that was in the message: no open redirect
    tracking.mark_clicked(message, url)
    return HttpResponseRedirect(url)


@csrf_exempt  # mail clients post the one-click form without a session (RFC 8058)
@never_cache
@require_http_methods(["GET", "POST"])
def unsubscribe(request, token):
    message, _value = _message("unsubscribe", token)
    if request.method == "POST":
        one_click = request.POST.get("List-Unsubscribe") == "One-Click"
        tracking.unsubscribe(message, "one-click" if one_click else "unsubscribe page")
        if one_click:
            return HttpResponse(status=200)
        done = True
    else:
        # A GET only shows the page: link scanners fetch every link in a message.
        done = False
    return render(
        request,
        "channels/unsubscribe.html",
        {"message": message, "done": done, "sender": message.workspace},
    )
