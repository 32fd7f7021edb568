"""/api/v1/messages/: messages with their status, read-only, with the messages log's filters,
cursor pages and each message's history; scoped to the key's workspace."""

import datetime as dt
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.channels.choices import ChannelType, MessageStatus
from apps.channels.models import Message, MessageEvent
from apps.channels.services.templates import create_template
from tests.channels.factories import ChannelFactory, email_template
from tests.contacts.factories import ContactFactory

LIST_URL = reverse("api:message-list")
NOW = timezone.now()


def make_message(contact, template, channel, key, **fields) -> Message:
    fields.setdefault("recipient", contact.email or "")
    return Message.objects.create(
        workspace=contact.workspace, contact=contact, channel=channel,
        template_version=template.versions.order_by("-number").first(), idempotency_key=key,
        **fields,
    )  # fmt: skip


@pytest.fixture
def sent(workspace, other_workspace):
    ann = ContactFactory(workspace=workspace, email="ann@acme.test")
    email = ChannelFactory(workspace=workspace, name="Newsletter")
    texts = ChannelFactory(workspace=workspace, name="Texts", type=ChannelType.SMS,
                           provider="twilio")  # fmt: skip
    nudge, _problems = create_template(workspace, {"name": "Nudge", "slug": "nudge",
                                                   "channel": "sms", "body": "Hi"})  # fmt: skip
    welcome = make_message(ann, email_template(workspace), email, "welcome:ann",
                           status=MessageStatus.CLICKED, subject="Hello Ann", journey_id=7,
                           node_id="hello", provider_message_id="pm-1",
                           created_at=NOW - dt.timedelta(days=2), sent_at=NOW)  # fmt: skip
    for kind, detail in (("sent", ""), ("opened", "Mail/1"), ("clicked", "https://x.test/")):
        MessageEvent.objects.create(message=welcome, kind=kind, detail=detail)
    text = make_message(ann, nudge, texts, "nudge:ann", status=MessageStatus.DROPPED,
                        reason="The contact has not opted in to sms.",
                        recipient="+4512345678")  # fmt: skip
    zed = ContactFactory(workspace=other_workspace, email="zed@other.test")
    elsewhere = make_message(zed, email_template(other_workspace, "promo"),
                             ChannelFactory(workspace=other_workspace), "promo:zed")  # fmt: skip
    return {"ann": ann, "welcome": welcome, "text": text, "elsewhere": elsewhere,
            "texts": texts}  # fmt: skip


def ids(response) -> list[int]:
    return [item["id"] for item in response.json()["results"]]


def test_read_key_lists_messages_newest_first_with_status(
    sent, workspace, api_key_for, django_assert_max_num_queries
):
    api = api_key_for(workspace, ["read"])
    with django_assert_max_num_queries(4):
        response = api.get(LIST_URL)
    assert response.status_code == 200
    assert ids(response) == [sent["text"].pk, sent["welcome"].pk]
    first, second = response.json()["results"]
    assert first["status"] == "dropped"
    assert first["reason"] == "The contact has not opted in to sms."
    assert second == {
        "id": sent["welcome"].pk,
        "contact": sent["ann"].pk,
        "channel": sent["welcome"].channel_id,
        "channel_type": "email",
        "template": "welcome",
        "template_version": 1,
        "recipient": "ann@acme.test",
        "subject": "Hello Ann",
        "status": "clicked",
        "reason": "",
        "journey_id": 7,
        "node_id": "hello",
        "provider_message_id": "pm-1",
        "attempts": 0,
        "created_at": second["created_at"],
        "sent_at": second["sent_at"],
        "delivered_at": None,
        "opened_at": None,
        "clicked_at": None,
    }
    assert "history" not in second


def test_one_message_carries_its_history(sent, workspace, api_key_for):
    api = api_key_for(workspace, ["read"])
    response = api.get(reverse("api:message-detail", args=[sent["welcome"].pk]))
    assert response.status_code == 200
    history = response.json()["history"]
    assert [(line["kind"], line["detail"]) for line in history] == [
        ("sent", ""), ("opened", "Mail/1"), ("clicked", "https://x.test/")]  # fmt: skip


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"status": "dropped"}, ["text"]),
        ({"channel_type": "sms"}, ["text"]),
        ({"channel": "texts"}, ["text"]),
        ({"template": "welcome"}, ["welcome"]),
        ({"journey": 7}, ["welcome"]),
        ({"contact": "ann"}, ["text", "welcome"]),
        ({"created_before": (NOW - dt.timedelta(days=1)).date().isoformat()}, ["welcome"]),
        ({"created_after": (NOW + dt.timedelta(days=1)).date().isoformat()}, []),
    ],
)
def test_the_logs_filters_work_the_same(params, expected, sent, workspace, api_key_for):
    refs = {"texts": sent["texts"].pk, "ann": sent["ann"].pk}
    query = {name: refs.get(value, value) for name, value in params.items()}
    response = api_key_for(workspace, ["read"]).get(LIST_URL, query)
    assert response.status_code == 200
    assert ids(response) == [sent[name].pk for name in expected]


def test_bad_filters_are_refused_with_the_field_named(sent, workspace, api_key_for):
    api = api_key_for(workspace, ["read"])
    response = api.get(LIST_URL, {"status": "lost", "template": "promo",
                                  "channel": sent["elsewhere"].channel_id})  # fmt: skip
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"status", "template", "channel"}


def test_cursor_pages_walk_every_message_once(workspace, api_key_for):
    contact = ContactFactory(workspace=workspace)
    channel = ChannelFactory(workspace=workspace)
    version = email_template(workspace).versions.get()
    Message.objects.bulk_create(
        Message(workspace=workspace, contact=contact, channel=channel, template_version=version,
                idempotency_key=f"k{n}", created_at=NOW - dt.timedelta(seconds=n // 2))
        for n in range(7)
    )  # fmt: skip
    api = api_key_for(workspace, ["read"])
    seen, url = [], f"{LIST_URL}?page_size=3"
    while url:
        body = api.get(url).json()
        seen.extend(item["id"] for item in body["results"])
        url = body["next"]
        assert url is None or re.search(r"cursor=", url)
    expected = Message.objects.order_by("-created_at", "-id").values_list("pk", flat=True)
    assert seen == list(expected)


def test_outsider_key_sees_none_of_another_workspaces_messages(sent, other_workspace, api_key_for):
    api = api_key_for(other_workspace, ["read"])
    assert ids(api.get(LIST_URL)) == [sent["elsewhere"].pk]
    response = api.get(reverse("api:message-detail", args=[sent["welcome"].pk]))
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}
    assert ids(api.get(LIST_URL, {"contact": sent["ann"].pk})) == []


def test_outsider_session_gets_404_for_another_workspaces_message(sent, outsider, client_for):
    response = client_for(outsider).get(reverse("api:message-detail", args=[sent["welcome"].pk]))
    assert response.status_code == 404


def test_member_session_reads_messages(sent, analyst, client_for):
    response = client_for(analyst).get(LIST_URL)
    assert response.status_code == 200
    assert len(response.json()["results"]) == 2


def test_ingest_key_cannot_read_messages(sent, workspace, api_key_for):
    response = api_key_for(workspace, ["ingest"]).get(LIST_URL)
    assert response.status_code == 403


def test_messages_cannot_be_written_through_the_api(sent, workspace, api_key_for):
    api = api_key_for(workspace, ["read", "write"])
    detail = reverse("api:message-detail", args=[sent["welcome"].pk])
    assert api.post(LIST_URL, {"status": "sent"}, format="json").status_code == 405
    assert api.patch(detail, {"status": "delivered"}, format="json").status_code == 405
    assert api.delete(detail).status_code == 405
    assert Message.objects.get(pk=sent["welcome"].pk).status == MessageStatus.CLICKED
    assert Message.objects.count() == 3


def test_no_credentials_get_401_or_403(client, db):
    response = client.get(LIST_URL)
    assert response.status_code in (401, 403)
