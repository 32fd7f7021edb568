"""After a message is sent: the tracking links' edge cases and the tracking service's rules
(statuses move forward only, repeats record once, bounces and complaints suppress)."""

import datetime as dt
import threading

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from django.utils import timezone

from apps.channels.choices import MessageEventKind, MessageStatus, SuppressionReason
from apps.channels.models import Message, MessageEvent, Suppression
from apps.channels.services import tracking
from apps.channels.services.rendering import tracking_url
from apps.contacts.choices import ConsentStatus
from apps.contacts.models import Consent, Event
from apps.contacts.services.consent import set_consent
from tests.channels.factories import ChannelFactory, email_template
from tests.contacts.factories import ContactFactory

URL = "https://shop.example.com/new"


@pytest.fixture
def sent(workspace):
    """A message as the outbox leaves it after sending: status sent, links recorded."""
    contact = ContactFactory(workspace=workspace, email="ann@example.test")
    set_consent(contact, "email", ConsentStatus.SUBSCRIBED, "signup form")
    return Message.objects.create(
        workspace=workspace, contact=contact, channel=ChannelFactory(workspace=workspace),
        template_version=email_template(workspace).versions.get(), idempotency_key="welcome",
        status=MessageStatus.SENT, recipient="ann@example.test", subject="Hello Ann",
        links=[URL, "https://shop.example.com/sale"], sent_at=timezone.now(),
    )  # fmt: skip


def local(url: str) -> str:
    return url.removeprefix(settings.SITE_URL)


def history(message) -> list[str]:
    return list(message.history.order_by("at", "id").values_list("kind", flat=True))


def contact_events(message) -> list[str]:
    return list(
        Event.objects.filter(contact_id=message.contact_id)
        .order_by("id")
        .values_list("name", flat=True)
    )


# The links -------------------------------------------------------------------------------


def test_each_tracked_link_redirects_to_its_own_url_only(sent, client):
    first = client.get(local(tracking_url("click", sent.pk, 0)))
    second = client.get(local(tracking_url("click", sent.pk, 1)))
    assert (first.status_code, first["Location"]) == (302, URL)
    assert (second.status_code, second["Location"]) == (302, "https://shop.example.com/sale")
    assert client.get(local(tracking_url("click", sent.pk, 2))).status_code == 404
    assert client.get(local(tracking_url("click", sent.pk))).status_code == 404  # no index
    assert client.get("/t/c/not-a-token/").status_code == 404
    assert history(sent) == ["opened", "clicked", "clicked"]


def test_a_click_on_a_message_that_no_longer_exists_is_404(sent, client):
    url = local(tracking_url("click", sent.pk, 0))
    sent.delete()
    assert client.get(url).status_code == 404


def test_a_forged_open_pixel_answers_the_image_and_records_nothing(sent, client):
    response = client.get(local(tracking_url("open", sent.pk)).replace(".gif", "x.gif"))
    assert response.status_code == 200
    assert response["Content-Type"] == "image/gif"
    assert history(sent) == []
    assert contact_events(sent) == []


def test_an_unsubscribe_token_cannot_be_used_for_another_message(sent, workspace, client):
    click_token_url = local(tracking_url("click", sent.pk, 0))
    as_unsubscribe = click_token_url.replace("/t/c/", "/t/u/")
    assert client.post(as_unsubscribe).status_code == 404
    assert Consent.objects.get(contact=sent.contact).status == ConsentStatus.SUBSCRIBED


def test_the_unsubscribe_page_get_changes_nothing_and_names_the_sender(sent, client):
    response = client.get(local(tracking_url("unsubscribe", sent.pk)))
    assert response.status_code == 200
    content = response.content.decode()
    assert "Acme" in content and 'method="post"' in content
    assert Consent.objects.get(contact=sent.contact).status == ConsentStatus.SUBSCRIBED
    assert history(sent) == [] and contact_events(sent) == []


def test_tracking_links_refuse_other_methods(sent, client):
    assert client.post(local(tracking_url("click", sent.pk, 0))).status_code == 405
    assert client.delete(local(tracking_url("unsubscribe", sent.pk))).status_code == 405
    assert history(sent) == []


# The service -----------------------------------------------------------------------------


def test_opens_are_counted_each_time_and_recorded_on_the_contact_once(sent):
    assert tracking.mark_opened(sent, detail="Mail/1") is True
    assert tracking.mark_opened(sent, detail="Mail/1") is False
    sent.refresh_from_db()
    assert sent.status == MessageStatus.OPENED
    assert history(sent) == ["opened", "opened"]
    assert contact_events(sent) == ["message_opened"]


def test_a_click_without_an_open_records_the_open_too(sent):
    tracking.mark_clicked(sent, URL)
    sent.refresh_from_db()
    assert sent.status == MessageStatus.CLICKED
    assert sent.opened_at is not None and sent.opened_at <= sent.clicked_at
    assert history(sent) == ["opened", "clicked"]
    assert contact_events(sent) == ["message_opened", "message_clicked"]
    assert sent.history.get(kind="opened").detail == "Implied by a click"


def test_status_never_moves_back(sent):
    tracking.mark_clicked(sent, URL)
    tracking.mark_delivered(sent)  # a late delivery report
    tracking.mark_opened(sent)
    sent.refresh_from_db()
    assert sent.status == MessageStatus.CLICKED
    assert sent.delivered_at is not None


def test_a_repeated_delivery_report_records_once(sent):
    at = timezone.now() - dt.timedelta(minutes=5)
    assert tracking.mark_delivered(sent, at, "250 OK") is True
    assert tracking.mark_delivered(sent, at, "250 OK") is False
    sent.refresh_from_db()
    assert (sent.status, sent.delivered_at) == (MessageStatus.DELIVERED, at)
    assert history(sent) == ["delivered"]
    assert contact_events(sent) == ["message_delivered"]


def test_a_hard_bounce_suppresses_the_address_and_a_soft_one_does_not(sent, workspace):
    tracking.mark_bounced(sent, hard=False, detail="mailbox full")
    assert Suppression.objects.count() == 0
    tracking.mark_bounced(sent, hard=True, detail="no such user")
    suppression = Suppression.objects.get()
    assert (suppression.workspace_id, suppression.channel_type, suppression.address) == (
        workspace.pk, "email", "ann@example.test")  # fmt: skip
    assert (suppression.reason, suppression.message_id) == (SuppressionReason.HARD_BOUNCE, sent.pk)
    sent.refresh_from_db()
    assert sent.status == MessageStatus.BOUNCED
    assert contact_events(sent) == ["message_bounced"]


def test_a_complaint_suppresses_and_unsubscribes(sent):
    tracking.mark_complained(sent, detail="feedback loop")
    tracking.mark_complained(sent, detail="feedback loop")
    sent.refresh_from_db()
    assert sent.status == MessageStatus.COMPLAINED
    assert Suppression.objects.get().reason == SuppressionReason.COMPLAINT
    assert Consent.objects.get(contact=sent.contact).status == ConsentStatus.UNSUBSCRIBED
    assert contact_events(sent) == ["message_complained"]
    assert history(sent) == ["complained"]


def test_a_deferral_is_only_a_line_of_history(sent):
    tracking.note_deferred(sent, detail="Postmark: mailbox full")
    sent.refresh_from_db()
    assert sent.status == MessageStatus.SENT
    assert history(sent) == [MessageEventKind.DEFERRED]
    assert contact_events(sent) == []


def test_a_message_is_found_by_its_provider_id_with_or_without_brackets(sent):
    sent.provider_message_id = "<message-1@orchestra.test>"
    sent.save(update_fields=["provider_message_id"])
    assert tracking.message_for_provider_id("message-1@orchestra.test") == sent
    assert (
        tracking.message_for_provider_id("<message-1@orchestra.test>", "ANN@example.test") == sent
    )
    assert tracking.message_for_provider_id("<message-1@orchestra.test>", "bo@example.test") is None
    assert tracking.message_for_provider_id("") is None
    assert tracking.message_for_provider_id("message-2@orchestra.test") is None


@pytest.mark.django_db(transaction=True)
def test_two_unsubscribes_at_once_record_once(sent):
    """The one-click post and the person on the page, at the same moment."""
    url = local(tracking_url("unsubscribe", sent.pk))
    barrier = threading.Barrier(2)
    statuses = []

    def post():
        try:
            barrier.wait(5)
            statuses.append(Client().post(url, {"List-Unsubscribe": "One-Click"}).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=post) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert statuses == [200, 200]
    assert MessageEvent.objects.filter(message=sent, kind="unsubscribed").count() == 1
    assert contact_events(sent) == ["unsubscribed"]
