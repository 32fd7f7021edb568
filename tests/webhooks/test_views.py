"""Settings → Webhooks: the list with health, adding (the secret shown once), editing, the
deliveries log with replay; owners and marketers change, analysts look, outsiders get 404."""

import pytest
from django.urls import reverse

from apps.webhooks.models import WebhookDelivery, WebhookSubscription
from apps.webhooks.services import delivery as sending
from apps.webhooks.services import subscriptions
from tests.channels.http_peer import Reply
from tests.webhooks.test_delivery import queue


def test_owner_adds_a_webhook_and_sees_the_secret_once(workspace, owner, client_for, receiver):
    client = client_for(owner)

    response = client.post(
        reverse("webhooks:create"),
        {
            "url": receiver.url + "/in",
            "description": "CRM",
            "event_types": ["contact.created", "conversion"],
        },
    )

    assert response.status_code == 200
    subscription = WebhookSubscription.objects.get()
    assert subscription.event_types == ["contact.created", "conversion"]
    assert subscription.created_by == owner
    assert subscription.secret in response.content.decode()
    page = client.get(reverse("webhooks:detail", args=[subscription.pk])).content.decode()
    assert subscription.secret not in page
    assert subscription.secret_hint in page


def test_the_form_names_what_is_wrong(workspace, owner, client_for):
    response = client_for(owner).post(
        reverse("webhooks:create"), {"url": "ftp://example.com/", "event_types": []}
    )

    assert response.status_code == 200
    assert response.context["form"].errors.keys() == {"url", "event_types"}
    assert not WebhookSubscription.objects.exists()


def test_list_shows_each_subscriptions_health(
    owner, client_for, subscribe, receiver, django_assert_max_num_queries
):
    failing = subscribe(["*"])
    subscriptions.send_ping(failing)  # a test, not counted
    receiver.default = Reply(500, {})
    queue(failing, event_id="evt_1")
    queue(failing, event_id="evt_2")
    sending.send_due_deliveries()
    subscribe(["conversion"], path="/off", is_active=False)
    client = client_for(owner)

    with django_assert_max_num_queries(10):
        response = client.get(reverse("webhooks:list"))

    content = response.content.decode()
    assert response.status_code == 200
    assert "inactive" in content
    listed = {s.pk: s for s in response.context["subscriptions"]}
    assert (listed[failing.pk].succeeded_24h, listed[failing.pk].failed_24h) == (0, 2)
    assert "failing for" in content
    assert receiver.url in content


def test_marketer_edits_and_enables_again(marketer, client_for, subscribe):
    subscription = subscribe(["conversion"], is_active=False, disabled_reason="Failing")

    response = client_for(marketer).post(
        reverse("webhooks:detail", args=[subscription.pk]),
        {
            "url": subscription.url,
            "description": "Warehouse",
            "event_types": ["*"],
            "is_active": "on",
        },
    )

    assert response.status_code == 302
    subscription.refresh_from_db()
    assert (subscription.event_types, subscription.description) == (["*"], "Warehouse")
    assert subscription.is_active and subscription.disabled_reason == ""


def test_deliveries_log_shows_request_and_response_and_replays(
    owner, client_for, subscribe, receiver
):
    subscription = subscribe()
    receiver.reply(500, {"error": "down"})
    delivery = subscriptions.send_ping(subscription)
    client = client_for(owner)

    log = client.get(reverse("webhooks:detail", args=[subscription.pk])).content.decode()
    assert f'id="delivery-{delivery.pk}"' in log and "Given up" in log
    page = client.get(reverse("webhooks:delivery", args=[subscription.pk, delivery.pk]))
    content = page.content.decode()
    assert "X-Orchestra-Signature" in content and "HTTP 500" in content
    assert "down" in content and delivery.event_id in content

    receiver.default = Reply(200, {})
    url = reverse("webhooks:replay", args=[subscription.pk, delivery.pk])
    row = client.post(url, HTTP_HX_REQUEST="true")
    assert row.status_code == 200
    assert 'data-status="succeeded"' in row.content.decode()
    assert client.post(url).status_code == 302
    assert len(receiver.requests) == 3


def test_test_ping_rotate_and_delete(owner, client_for, subscribe, receiver):
    subscription = subscribe()
    client = client_for(owner)

    assert client.post(reverse("webhooks:test", args=[subscription.pk])).status_code == 302
    assert receiver.requests[0].json()["type"] == "ping"
    old = subscription.secret
    response = client.post(reverse("webhooks:rotate_secret", args=[subscription.pk]))
    subscription.refresh_from_db()
    assert subscription.secret != old and subscription.secret in response.content.decode()
    assert client.post(reverse("webhooks:delete", args=[subscription.pk])).status_code == 302
    assert not WebhookSubscription.objects.exists()


CHANGES = ["webhooks:detail", "webhooks:test", "webhooks:rotate_secret", "webhooks:delete"]


@pytest.fixture
def acme_hook(subscribe, receiver):
    subscription = subscribe(["conversion"])
    delivery = subscriptions.send_ping(subscription)
    receiver.requests.clear()
    return subscription, delivery


def state():
    return (
        list(WebhookSubscription.objects.values_list("url", "event_types", "secret", "is_active")),
        list(WebhookDelivery.objects.values_list("status", "attempts")),
    )


def test_analyst_reads_but_changes_nothing(analyst, client_for, acme_hook, receiver):
    subscription, delivery = acme_hook
    client = client_for(analyst)
    page = client.get(reverse("webhooks:list")).content.decode()
    assert subscription.url in page and reverse("webhooks:create") not in page
    assert client.get(reverse("webhooks:detail", args=[subscription.pk])).status_code == 200
    before = state()

    posts = [reverse(name, args=[subscription.pk]) for name in CHANGES]
    posts += [
        reverse("webhooks:create"),
        reverse("webhooks:replay", args=[subscription.pk, delivery.pk]),
    ]
    for url in posts:
        assert (
            client.post(url, {"url": "https://evil.test/", "event_types": ["*"]}).status_code == 403
        )

    assert state() == before
    assert receiver.requests == []


def test_outsider_gets_404_and_changes_nothing(outsider, client_for, acme_hook, receiver):
    subscription, delivery = acme_hook
    client = client_for(outsider)
    before = state()

    assert client.get(reverse("webhooks:detail", args=[subscription.pk])).status_code == 404
    delivery_url = reverse("webhooks:delivery", args=[subscription.pk, delivery.pk])
    assert client.get(delivery_url).status_code == 404
    for name in CHANGES:
        url = reverse(name, args=[subscription.pk])
        assert (
            client.post(url, {"url": "https://evil.test/", "event_types": ["*"]}).status_code == 404
        )
    replay = reverse("webhooks:replay", args=[subscription.pk, delivery.pk])
    assert client.post(replay).status_code == 404
    page = client.get(reverse("webhooks:list")).content.decode()
    assert subscription.url not in page

    assert state() == before
    assert receiver.requests == []


def test_the_deliveries_log_reads_a_page_in_few_queries(
    owner, client_for, subscribe, receiver, django_assert_max_num_queries
):
    subscription = subscribe()
    for n in range(30):
        queue(subscription, event_id=f"evt_{n}")
    sending.send_due_deliveries(limit=30)
    client = client_for(owner)

    with django_assert_max_num_queries(10):
        response = client.get(reverse("webhooks:detail", args=[subscription.pk]))

    assert response.status_code == 200
    assert response.content.decode().count('data-status="succeeded"') == 30
