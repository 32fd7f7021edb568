"""Settings → Webhooks: the subscriptions with their health, the form to add or edit one,
its deliveries (request, response, duration) with replay. Owners and marketers change
them; analysts look."""

import json

from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from apps.accounts.access import EDIT, workspace_view
from apps.webhooks.choices import DeliveryStatus
from apps.webhooks.forms import DeliveryFilterForm, WebhookSubscriptionForm
from apps.webhooks.models import WebhookDelivery, WebhookSubscription
from apps.webhooks.services import subscriptions as services

DELIVERIES_PER_PAGE = 50


def subscription_for(request, pk: int) -> WebhookSubscription:
    subscriptions = WebhookSubscription.objects.for_workspace(request.workspace)
    return get_object_or_404(subscriptions.select_related("workspace"), pk=pk)


def delivery_for(request, pk: int, delivery_pk: int) -> WebhookDelivery:
    subscription = subscription_for(request, pk)
    delivery = get_object_or_404(
        WebhookDelivery.objects.for_workspace(request.workspace),
        subscription=subscription,
        pk=delivery_pk,
    )
    delivery.subscription = subscription
    return delivery


@workspace_view(change=EDIT)
def subscription_list(request):
    context = {
        "subscriptions": services.subscriptions_with_health(request.workspace),
        "can_edit": request.membership.can_edit,
    }
    return render(request, "webhooks/subscription_list.html", context)


@workspace_view(change=EDIT)
def subscription_create(request):
    form = WebhookSubscriptionForm(request.POST or None, creating=True)
    if request.method == "POST" and form.is_valid():
        subscription, secret = services.create_subscription(
            request.workspace,
            form.cleaned_data["url"],
            form.cleaned_data["event_types"],
            form.cleaned_data["description"],
            created_by=request.user,
        )
        messages.success(request, _("The webhook was added."))
        return detail_page(request, subscription, new_secret=secret)
    return render(request, "webhooks/subscription_form.html", {"form": form})


@workspace_view(change=EDIT)
def subscription_detail(request, pk: int):
    subscription = subscription_for(request, pk)
    form = None
    if request.method == "POST":
        form = WebhookSubscriptionForm(request.POST, instance=subscription)
        if form.is_valid():
            values = {name: form.cleaned_data[name] for name in form.fields}
            # The form changed the instance already; the service decides what that means.
            subscription.refresh_from_db()
            services.update_subscription(subscription, **values)
            messages.success(request, _("Saved."))
            return redirect("webhooks:detail", pk=subscription.pk)
        subscription.refresh_from_db()  # the page's heading shows what is saved
    return detail_page(request, subscription, form=form)


def detail_page(request, subscription, form=None, new_secret: str = ""):
    filters = DeliveryFilterForm(request.GET or None)
    deliveries = WebhookDelivery.objects.for_workspace(request.workspace).filter(
        subscription=subscription
    )
    if filters.is_valid() and filters.cleaned_data["status"]:
        deliveries = deliveries.filter(status=filters.cleaned_data["status"])
    page = Paginator(deliveries.order_by("-id"), DELIVERIES_PER_PAGE).get_page(
        request.GET.get("page")
    )
    context = {
        "subscription": subscription,
        "form": form or WebhookSubscriptionForm(instance=subscription),
        "filters": filters,
        "page": page,
        "new_secret": new_secret,
        "can_edit": request.membership.can_edit,
        "statuses": DeliveryStatus,
    }
    return render(request, "webhooks/subscription_detail.html", context)


@require_POST
@workspace_view(change=EDIT)
def subscription_rotate_secret(request, pk: int):
    subscription = subscription_for(request, pk)
    secret = services.rotate_secret(subscription)
    messages.success(request, _("A new signing secret is in force; the old one no longer is."))
    return detail_page(request, subscription, new_secret=secret)


@require_POST
@workspace_view(change=EDIT)
def subscription_test(request, pk: int):
    subscription = subscription_for(request, pk)
    ping = services.send_ping(subscription)
    if ping.status == DeliveryStatus.SUCCEEDED:
        messages.success(
            request,
            _("The ping was delivered (HTTP %(status)s in %(ms)s ms).")
            % {"status": ping.response_status, "ms": ping.duration_ms},
        )
    else:
        messages.error(request, _("The ping failed: %(error)s") % {"error": ping.error})
    return redirect("webhooks:detail", pk=subscription.pk)


@require_POST
@workspace_view(change=EDIT)
def subscription_delete(request, pk: int):
    subscription = subscription_for(request, pk)
    services.delete_subscription(subscription)
    messages.success(request, _("The webhook to %(url)s was deleted.") % {"url": subscription.url})
    return redirect("webhooks:list")


@workspace_view()
def delivery_detail(request, pk: int, delivery_pk: int):
    delivery = delivery_for(request, pk, delivery_pk)
    context = {
        "delivery": delivery,
        "subscription": delivery.subscription,
        "request_body": readable_json(delivery.request_body),
        "response_body": readable_json(delivery.response_body),
        "payload": json.dumps(delivery.payload, indent=2, ensure_ascii=False),
        "can_edit": request.membership.can_edit,
    }
    return render(request, "webhooks/delivery_detail.html", context)


def readable_json(text: str) -> str:
    """A JSON body indented for reading; anything else (or a cut excerpt) as it is."""
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text


@require_POST
@workspace_view(change=EDIT)
def delivery_replay(request, pk: int, delivery_pk: int):
    delivery = services.replay(delivery_for(request, pk, delivery_pk))
    if request.htmx:
        context = {"delivery": delivery, "subscription": delivery.subscription, "can_edit": True}
        return render(request, "webhooks/partials/delivery_row.html", context)
    if delivery.status == DeliveryStatus.SUCCEEDED:
        messages.success(request, _("Replayed: delivered."))
    else:
        messages.error(request, _("Replayed: %(error)s") % {"error": delivery.error})
    return redirect("webhooks:delivery", pk=pk, delivery_pk=delivery.pk)
