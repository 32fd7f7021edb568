"""The marketer's view of messages: the log of everything sent (or not), and one message
with its content and every line of its history."""

import datetime as dt
import logging

from django.shortcuts import get_object_or_404, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers

from apps.accounts.access import workspace_view
from apps.channels.choices import ChannelType
from apps.channels.filters import MessageFilterSet
from apps.channels.models import Message
from apps.channels.services.rendering import render_message
from apps.channels.services.scope import scope_for

log = logging.getLogger(__name__)

MESSAGES_PER_PAGE = 50
# What a row of the log shows (not the templates' HTML, nor the message's context).
LOG_FIELDS = (
    "id", "workspace_id", "contact_id", "channel_id", "template_version_id", "status", "reason",
    "subject", "journey_id", "node_id", "created_at",
    "contact__first_name", "contact__last_name", "contact__email", "contact__external_id",
    "channel__name", "channel__type",
    "template_version__number", "template_version__template_id",
    "template_version__template__name", "template_version__template__slug",
)  # fmt: skip
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def wants_partial(request) -> bool:
    """An htmx request for a piece of the page (not a boosted link, not a history restore)."""
    htmx = request.htmx
    return bool(htmx) and not htmx.boosted and not htmx.history_restore_request


# Keyset pagination over (created_at, id), newest first: "after" names the last message of
# the previous page, so a page costs the same at any depth and nothing counts the table.


def page_key(message: Message) -> str:
    micros = (message.created_at - EPOCH) // dt.timedelta(microseconds=1)
    return f"{micros}-{message.pk}"


def parse_page_key(text: str) -> tuple[dt.datetime, int] | None:
    micros, _sep, pk = text.partition("-")
    if not (micros.isdigit() and pk.isdigit()):
        return None
    try:
        return EPOCH + dt.timedelta(microseconds=int(micros)), int(pk)
    except OverflowError:
        return None


@require_GET
@workspace_view()
@vary_on_headers("HX-Request")
def message_list(request):
    filterset = MessageFilterSet(
        request.GET or None,
        queryset=Message.objects.for_workspace(request.workspace),
        request=request,
    )
    found = (
        filterset.qs.select_related("contact", "channel", "template_version__template")
        .only(*LOG_FIELDS)
        .order_by("-created_at", "-id")
    )
    after = parse_page_key(request.GET.get("after", ""))
    if after is not None:
        created_at, pk = after
        found = found.filter(created_at__lte=created_at).exclude(created_at=created_at, id__gte=pk)
    page = list(found[: MESSAGES_PER_PAGE + 1])
    has_next = len(page) > MESSAGES_PER_PAGE
    page = page[:MESSAGES_PER_PAGE]
    params = request.GET.copy()
    params.pop("after", None)
    context = {
        "filter_form": filterset.form,
        "message_page": page,
        "query": params.urlencode(),
        "is_first_page": after is None,
        "next_after": page_key(page[-1]) if has_next else None,
    }
    if wants_partial(request):
        return render(request, "channels/partials/message_table.html", context)
    return render(request, "channels/messages/message_list.html", context)


@require_GET
@workspace_view()
def message_detail(request, pk: int):
    message = get_object_or_404(
        Message.objects.for_workspace(request.workspace).select_related(
            "contact", "channel", "template_version__template", "workspace"
        ),
        pk=pk,
    )
    context = {
        "message": message,
        "template": message.template_version.template,
        "history": list(message.history.all()),
        "is_email": message.channel.type == ChannelType.EMAIL,
        **content_context(message),
    }
    return render(request, "channels/messages/message_detail.html", context)


def content_context(message: Message) -> dict:
    """The message's content as its template version renders for the contact now: links
    are not tracked again (no message id), so the preview signs nothing."""
    scope = scope_for(message.contact, message.workspace, (message.context or {}).get("event"))
    try:
        rendered = render_message(message.template_version, scope, None, message.channel.type)
    except Exception as error:  # a template that does not render (say, its MJML broke)
        log.info("Message %s did not render for its page: %s", message.pk, error)
        return {"render_error": _("The template did not render: %(e)s") % {"e": error}}
    return {"rendered": rendered, "render_error": ""}
