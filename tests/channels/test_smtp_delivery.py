"""Email over SMTP as the outbox sends it: the MIME message written by the provider (headers
encoded and folded, both parts in quoted-printable) as mail readers parse it, SMTP
refusals per message on one session, PIPELINING where the server offers it, and a session
the server closes."""

import datetime as dt
import email
import email.policy
import re

import pytest
from django.conf import settings
from django.utils import timezone

from apps.channels.choices import MessageEventKind, MessageStatus
from apps.channels.models import Message
from apps.channels.services import outbox
from apps.channels.services.outbox import MessageRequest
from apps.contacts.choices import ConsentStatus
from apps.contacts.services.consent import set_consent
from tests.channels.factories import email_template
from tests.channels.smtp_peer import SmtpPeer
from tests.contacts.factories import ContactFactory

pytestmark = pytest.mark.django_db(transaction=True)

LONG_SUBJECT = (
    "Årets største udsalg for {{ contact.first_name }}: spar op til 70 % på alt i butikken"
)


@pytest.fixture
def subscribed(workspace):
    def make(**fields):
        contact = ContactFactory(workspace=workspace, **fields)
        set_consent(contact, "email", ConsentStatus.SUBSCRIBED, "test")
        return contact

    return make


@pytest.fixture
def peer(settings):
    """peer(**options): an SmtpPeer that the server's email settings point at."""
    peers = []

    def start(**options):
        smtp = SmtpPeer(**options).__enter__()
        peers.append(smtp)
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", smtp.port
        settings.EMAIL_USE_TLS = False
        return smtp

    yield start
    for smtp in peers:
        smtp.__exit__()


def parsed(raw: bytes):
    return email.message_from_bytes(raw, policy=email.policy.default)


def test_an_email_reads_the_same_in_a_mail_reader_as_it_was_rendered(workspace, subscribed, peer):
    workspace.default_from_name = "Blåbær & Co."
    workspace.default_from_email = "news@blabaer.example"
    workspace.default_reply_to = "help@blabaer.example"
    workspace.save()
    smtp = peer()
    ann = subscribed(first_name="Åse", email="ase@example.test")
    template = email_template(workspace, subject=LONG_SUBJECT, preheader="Kun i dag")

    queued = outbox.queue_message(ann, template, "sale:ase")

    [raw] = smtp.messages
    assert smtp.envelopes == [("news@blabaer.example", ["ase@example.test"])]
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert b"\n" not in head.replace(b"\r\n", b"")  # every line ends CRLF
    lines = head.split(b"\r\n")
    assert all(len(line) <= 998 for line in lines) and head.isascii()
    subject = lines.index(next(line for line in lines if line.startswith(b"Subject: ")))
    assert lines[subject + 1].startswith(b" ")  # folded: no line of it over 78 characters
    assert all(len(line) <= 78 for line in lines[subject : subject + 2])
    mail = parsed(raw)
    assert mail.defects == [] and all(part.defects == [] for part in mail.walk())
    message = Message.objects.get(pk=queued.message.pk)
    assert message.status == MessageStatus.SENT
    assert (
        mail["Subject"]
        == message.subject
        == ("Årets største udsalg for Åse: spar op til 70 % på alt i butikken")
    )
    assert mail["From"].addresses[0].display_name == "Blåbær & Co."
    assert mail["From"].addresses[0].addr_spec == "news@blabaer.example"
    assert mail["Reply-To"] == "help@blabaer.example"
    assert mail["To"] == "ase@example.test"
    assert mail["Message-ID"] == f"<message-{message.pk}@{settings.MESSAGE_ID_DOMAIN}>"
    assert message.provider_message_id == mail["Message-ID"]
    sent_at = mail["Date"].datetime.replace(tzinfo=dt.UTC)  # "-0000": UTC, said plainly
    assert abs((sent_at - timezone.now()).total_seconds()) < 60
    assert (
        mail["List-Unsubscribe"]
        == f"<{settings.SITE_URL}"
        + re.search(r"/t/u/[^>]+", mail["List-Unsubscribe"]).group(0)
        + ">"
    )
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert mail.get_content_type() == "multipart/alternative"
    text, html = mail.get_body(("plain",)), mail.get_body(("html",))
    for part in (text, html):
        assert part["Content-Transfer-Encoding"] == "quoted-printable"
        assert part.get_content_charset() == "utf-8"
    assert "Hi Åse, see what is new (" in text.get_content()
    assert '<div style="display:none;max-height:0;overflow:hidden;opacity:0">Kun i dag</div>' in (
        html.get_content()
    )
    assert "/t/c/" in html.get_content() and "/t/o/" in html.get_content()


def test_a_refused_recipient_fails_and_the_rest_of_the_batch_goes_out_on_the_same_session(
    workspace, subscribed, peer
):
    smtp = peer()
    smtp.refuse["gone@example.test"] = "550 5.1.1 No such user"
    smtp.refuse["full@example.test"] = "452 4.2.2 Mailbox full"
    addresses = ("ann@example.test", "gone@example.test", "full@example.test", "bo@example.test")
    contacts = [subscribed(email=address) for address in addresses]
    template = email_template(workspace)

    outbox.queue_messages(
        workspace, [MessageRequest(c, template, f"hello:{c.email}") for c in contacts]
    )

    by_address = {m.contact.email: m for m in Message.objects.select_related("contact")}
    assert by_address["ann@example.test"].status == MessageStatus.SENT
    assert by_address["bo@example.test"].status == MessageStatus.SENT
    gone, full = by_address["gone@example.test"], by_address["full@example.test"]
    assert (gone.status, gone.reason) == (MessageStatus.FAILED, "550 5.1.1 No such user")
    assert (full.status, full.reason) == (MessageStatus.QUEUED, "452 4.2.2 Mailbox full")
    assert full.history.get().kind == MessageEventKind.RETRY
    delivered = [rcpts for _sender, rcpts in smtp.envelopes]
    assert delivered == [["ann@example.test"], ["bo@example.test"]]
    assert smtp.sessions == 1


def test_with_pipelining_mail_rcpt_and_data_travel_in_one_write(workspace, subscribed, peer):
    smtp = peer(pipelining=True)
    contacts = [subscribed(email=f"p{n}@example.test") for n in range(3)]
    template = email_template(workspace)

    outbox.queue_messages(workspace, [MessageRequest(c, template, f"p:{c.pk}") for c in contacts])

    assert sorted(rcpts[0] for _s, rcpts in smtp.envelopes) == sorted(c.email for c in contacts)
    together = [read for read in smtp.reads if read.startswith(b"MAIL FROM:")]
    assert len(together) == 3
    for read in together:
        assert re.fullmatch(rb"MAIL FROM:<[^>]+> SIZE=\d+\r\nRCPT TO:<[^>]+>\r\nDATA\r\n", read)
    assert set(Message.objects.values_list("status", flat=True)) == {MessageStatus.SENT}


def test_without_pipelining_each_command_waits_for_its_answer(workspace, subscribed, peer):
    smtp = peer(pipelining=False)
    ann = subscribed(email="ann@example.test")

    outbox.queue_message(ann, email_template(workspace), "hello:ann")

    assert len(smtp.messages) == 1
    commands = [read[:4].upper() for read in smtp.reads]
    commands = [c for c in commands if c in (b"MAIL", b"RCPT", b"DATA")]
    assert commands == [b"MAIL", b"RCPT", b"DATA"]


def test_a_session_the_server_closes_is_opened_again_for_the_next_message(
    workspace, subscribed, peer
):
    smtp = peer(close_after=1)
    contacts = [subscribed(email=f"s{n}@example.test") for n in range(3)]
    template = email_template(workspace)

    outbox.queue_messages(workspace, [MessageRequest(c, template, f"s:{c.pk}") for c in contacts])

    statuses = list(Message.objects.order_by("pk").values_list("status", "reason"))
    assert statuses[0] == (MessageStatus.SENT, "")
    assert statuses[1][0] == MessageStatus.QUEUED and statuses[1][1].startswith("421")
    assert statuses[2] == (MessageStatus.SENT, "")
    assert [rcpts for _s, rcpts in smtp.envelopes] == [["s0@example.test"], ["s2@example.test"]]
    assert smtp.sessions == 2
