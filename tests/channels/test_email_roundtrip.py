"""A real email, sent through the outbox to a real SMTP server, then followed through its own
links as its recipient would: the open pixel, a tracked link, the unsubscribe page and the
RFC 8058 one-click unsubscribe that mail clients post."""

import re

import pytest
from django.conf import settings
from django.test import Client

from apps.channels.choices import MessageEventKind, MessageStatus
from apps.channels.models import Message
from apps.channels.services import outbox
from apps.channels.services.rendering import tracking_url
from apps.contacts.choices import ConsentStatus
from apps.contacts.models import Consent, ConsentChange, Event
from apps.contacts.services.consent import set_consent
from tests.channels.factories import email_template
from tests.contacts.factories import ContactFactory

pytestmark = pytest.mark.django_db(transaction=True)

ORIGINAL_URL = "https://shop.example.com/new"


def local(url: str) -> str:
    """A tracked URL as the test client asks for it (the links carry SITE_URL)."""
    assert url.startswith(settings.SITE_URL + "/t/"), url
    return url[len(settings.SITE_URL) :]


def links_of(mail) -> dict[str, str]:
    html = mail.get_body(("html",)).get_content()
    return {
        "open": re.search(r'<img src="([^"]+/t/o/[^"]+)"', html).group(1),
        "click": re.search(r'href="([^"]+/t/c/[^"]+)"', html).group(1),
        "unsubscribe": mail["List-Unsubscribe"].strip().strip("<>"),
    }


@pytest.fixture
def subscribed(workspace):
    def make(**fields):
        contact = ContactFactory(workspace=workspace, **fields)
        set_consent(contact, "email", ConsentStatus.SUBSCRIBED, "signup form")
        return contact

    return make


def email_consent(contact) -> str:
    return Consent.objects.get(contact=contact, channel="email").status


def event_names(contact) -> list[str]:
    return list(Event.objects.filter(contact=contact).order_by("id").values_list("name", flat=True))


def test_recipient_opens_clicks_and_unsubscribes_through_the_links_of_a_real_email(
    workspace, smtp_server, subscribed
):
    ann = subscribed(first_name="Ann", email="ann@example.test")
    template = email_template(workspace)
    outbox.queue_message(ann, template, "welcome:ann")
    [mail] = smtp_server.to("ann@example.test")
    links = links_of(mail)
    message = Message.objects.get()
    assert message.status == MessageStatus.SENT
    browser = Client(enforce_csrf_checks=True)  # the recipient: no session, no CSRF token

    opened = browser.get(local(links["open"]), HTTP_USER_AGENT="Thunderbird/128")
    assert opened.status_code == 200
    assert opened["Content-Type"] == "image/gif"
    assert "no-cache" in opened["Cache-Control"]
    message.refresh_from_db()
    assert message.status == MessageStatus.OPENED and message.opened_at is not None

    clicked = browser.get(local(links["click"]))
    assert clicked.status_code == 302
    assert clicked["Location"] == ORIGINAL_URL
    message.refresh_from_db()
    assert message.status == MessageStatus.CLICKED and message.clicked_at is not None
    assert event_names(ann) == ["message_opened", "message_clicked"]
    click_event = Event.objects.get(contact=ann, name="message_clicked")
    assert click_event.properties == {"message_id": message.pk, "channel": "email",
                                      "template": "welcome", "url": ORIGINAL_URL}  # fmt: skip

    # An altered token, or a link that was not in the message, leads nowhere.
    token = links["click"].rstrip("/").rsplit("/", 1)[1]
    tampered = links["click"].replace(token, token[:-1] + ("A" if token[-1] != "A" else "B"))
    assert browser.get(local(tampered)).status_code == 404
    not_in_message = tracking_url("click", message.pk, 1)
    assert browser.get(local(not_in_message)).status_code == 404
    open_token_as_click = links["open"].replace("/t/o/", "/t/c/").removesuffix(".gif") + "/"
    assert browser.get(local(open_token_as_click)).status_code == 404
    assert message.history.filter(kind=MessageEventKind.CLICKED).count() == 1

    # The unsubscribe page: a GET (what link scanners do) only asks.
    page = browser.get(local(links["unsubscribe"]))
    assert page.status_code == 200
    assert '<form method="post">' in page.content.decode()
    assert email_consent(ann) == ConsentStatus.SUBSCRIBED
    assert ConsentChange.objects.filter(contact=ann).count() == 1  # the signup

    done = browser.post(local(links["unsubscribe"]))
    assert done.status_code == 200
    assert "You are unsubscribed" in done.content.decode()
    assert email_consent(ann) == ConsentStatus.UNSUBSCRIBED
    change = ConsentChange.objects.filter(contact=ann).first()  # newest first
    assert (change.channel, change.status, change.source) == (
        "email", ConsentStatus.UNSUBSCRIBED, "unsubscribe page")  # fmt: skip
    assert event_names(ann) == ["message_opened", "message_clicked", "unsubscribed"]
    assert message.history.filter(kind=MessageEventKind.UNSUBSCRIBED).count() == 1

    # The next message to Ann is not sent: consent is checked at send time.
    outbox.queue_message(ann, template, "welcome-again:ann")
    again = Message.objects.get(idempotency_key="welcome-again:ann")
    assert again.status == MessageStatus.DROPPED
    assert "unsubscribed" in again.reason
    assert len(smtp_server.to("ann@example.test")) == 1


@pytest.mark.parametrize("encoding", ["urlencoded", "multipart"])
def test_one_click_unsubscribe_from_the_mail_client_needs_no_session(
    encoding, workspace, smtp_server, subscribed
):
    bo = subscribed(email="bo@example.test")
    outbox.queue_message(bo, email_template(workspace), "welcome:bo")
    [mail] = smtp_server.to("bo@example.test")
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = local(links_of(mail)["unsubscribe"])
    mail_client = Client(enforce_csrf_checks=True)

    for _attempt in range(2):  # clients may post twice; it counts once
        if encoding == "urlencoded":
            form = "application/x-www-form-urlencoded"
            response = mail_client.post(url, "List-Unsubscribe=One-Click", content_type=form)
        else:
            response = mail_client.post(url, {"List-Unsubscribe": "One-Click"})
        assert response.status_code == 200

    assert email_consent(bo) == ConsentStatus.UNSUBSCRIBED
    changes = ConsentChange.objects.filter(contact=bo, status=ConsentStatus.UNSUBSCRIBED)
    assert list(changes.values_list("source", flat=True)) == ["one-click"]
    assert event_names(bo) == ["unsubscribed"]
    assert Event.objects.get(contact=bo).properties["source"] == "one-click"
