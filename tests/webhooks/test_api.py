"""/api/v1/webhooks/: subscriptions, their deliveries, rotation, ping and replay; scopes,
roles and workspaces respected."""

import pytest
from django.urls import reverse

from apps.webhooks.models import WebhookDelivery, WebhookSubscription
from apps.webhooks.services import subscriptions
from tests.channels.http_peer import Reply

LIST = reverse("api:webhook-list")


def detail(subscription, name="api:webhook-detail"):
    return reverse(name, args=[subscription.pk])


@pytest.fixture
def writer(workspace, api_key_for):
    return api_key_for(workspace, scopes=["read", "write"])


def test_create_answers_the_secret_once(writer, workspace, receiver):
    response = writer.post(
        LIST,
        {"url": receiver.url + "/in", "description": "CRM", "event_types": ["conversion"]},
        format="json",
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    subscription = WebhookSubscription.objects.get(pk=body["id"])
    assert body["secret"] == subscription.secret and body["secret"].startswith("whsec_")
    assert subscription.workspace == workspace
    assert (subscription.event_types, subscription.description) == (["conversion"], "CRM")
    assert "secret" not in writer.get(detail(subscription)).json()
    assert all("secret" not in row for row in writer.get(LIST).json()["results"])


@pytest.mark.parametrize(
    "data, field",
    [
        ({"url": "ftp://example.com/x", "event_types": ["*"]}, "url"),
        ({"url": "https://example.com/x", "event_types": ["contact.deleted"]}, "event_types"),
        ({"url": "https://example.com/x", "event_types": []}, "event_types"),
    ],
)
def test_create_names_the_offending_field(data, field, writer):
    response = writer.post(LIST, data, format="json")

    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert WebhookSubscription.objects.count() == 0


def test_update_and_delete(writer, subscribe):
    subscription = subscribe(["conversion"])

    response = writer.patch(
        detail(subscription), {"event_types": ["*"], "is_active": False}, format="json"
    )

    assert response.status_code == 200
    subscription.refresh_from_db()
    assert (subscription.event_types, subscription.is_active) == (["*"], False)
    assert writer.delete(detail(subscription)).status_code == 204
    assert not WebhookSubscription.objects.exists()


def test_rotate_secret(writer, subscribe):
    subscription = subscribe()
    old = subscription.secret

    response = writer.post(detail(subscription, "api:webhook-rotate-secret"))

    assert response.status_code == 200
    subscription.refresh_from_db()
    assert response.json() == {"secret": subscription.secret}
    assert subscription.secret != old


def test_test_sends_a_ping_and_answers_the_response(writer, subscribe, receiver):
    subscription = subscribe()
    receiver.reply(202, {"ok": True})

    response = writer.post(detail(subscription, "api:webhook-test"))

    assert response.status_code == 200
    body = response.json()
    assert (body["event_type"], body["status"], body["response_status"]) == (
        "ping",
        "succeeded",
        202,
    )
    assert receiver.signature_ok(receiver.requests[0])


def test_deliveries_and_replay(writer, subscribe, receiver):
    subscription = subscribe()
    receiver.reply(500, {})
    failed = subscriptions.send_ping(subscription)
    receiver.default = Reply(200, {})

    page = writer.get(detail(subscription, "api:webhook-deliveries")).json()
    assert [row["id"] for row in page["results"]] == [failed.pk]
    assert page["results"][0]["status"] == "given_up"
    assert page["results"][0]["response_status"] == 500

    url = reverse("api:webhook-replay", args=[subscription.pk, failed.pk])
    response = writer.post(url)

    assert response.status_code == 200
    assert (response.json()["status"], response.json()["attempts"]) == ("succeeded", 1)
    assert len(receiver.requests) == 2


def test_read_scope_lists_but_cannot_change(workspace, api_key_for, subscribe):
    subscription = subscribe()
    reader = api_key_for(workspace, scopes=["read"])

    assert reader.get(LIST).status_code == 200
    assert reader.get(detail(subscription, "api:webhook-deliveries")).status_code == 200
    for url in (
        detail(subscription, "api:webhook-rotate-secret"),
        detail(subscription, "api:webhook-test"),
        LIST,
    ):
        assert reader.post(url, {}, format="json").status_code == 403
    assert reader.delete(detail(subscription)).status_code == 403
    subscription_after = WebhookSubscription.objects.get()
    assert subscription_after.secret == subscription.secret
    assert not WebhookDelivery.objects.exists()


def test_analyst_reads_but_cannot_change(analyst, client_for, subscribe):
    subscription = subscribe()
    client = client_for(analyst)

    assert client.get(LIST).json()["results"][0]["id"] == subscription.pk
    response = client.post(
        LIST, {"url": "https://evil.test/", "event_types": ["*"]}, content_type="application/json"
    )
    assert response.status_code == 403
    assert client.post(detail(subscription, "api:webhook-test")).status_code == 403
    assert WebhookSubscription.objects.count() == 1
    assert not WebhookDelivery.objects.exists()


def test_marketer_session_creates(marketer, client_for, receiver):
    response = client_for(marketer).post(
        LIST, {"url": receiver.url, "event_types": ["*"]}, content_type="application/json"
    )

    assert response.status_code == 201
    assert WebhookSubscription.objects.get().created_by == marketer


def test_outsider_sees_and_changes_nothing(other_workspace, api_key_for, subscribe, receiver):
    subscription = subscribe()
    delivery = subscriptions.send_ping(subscription)
    outsider = api_key_for(other_workspace)

    assert outsider.get(LIST).json()["results"] == []
    for name in ("api:webhook-detail", "api:webhook-deliveries"):
        assert outsider.get(detail(subscription, name)).status_code == 404
    for name in ("api:webhook-rotate-secret", "api:webhook-test"):
        assert outsider.post(detail(subscription, name)).status_code == 404
    replay = reverse("api:webhook-replay", args=[subscription.pk, delivery.pk])
    assert outsider.post(replay).status_code == 404
    assert (
        outsider.patch(detail(subscription), {"is_active": False}, format="json").status_code == 404
    )
    assert outsider.delete(detail(subscription)).status_code == 404

    subscription_after = WebhookSubscription.objects.get()
    assert (subscription_after.secret, subscription_after.is_active) == (subscription.secret, True)
    assert WebhookDelivery.objects.count() == 1
    assert len(receiver.requests) == 1


def test_outsider_cannot_replay_another_workspaces_delivery_through_its_own(
    other_workspace, outsider, api_key_for, subscribe
):
    acme_delivery = subscriptions.send_ping(subscribe())
    own, _secret = subscriptions.create_subscription(
        other_workspace, "https://other.test/hooks", ["*"], created_by=outsider
    )

    url = reverse("api:webhook-replay", args=[own.pk, acme_delivery.pk])
    response = api_key_for(other_workspace).post(url)

    assert response.status_code == 404
    acme_delivery.refresh_from_db()
    assert acme_delivery.attempts == 1
