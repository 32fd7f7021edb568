"""The marketer's view of messages: the log with its filters and keyset pages, one message's
page (content re-rendered in a sandboxed frame, every line of history), and messages on the
contact's timeline."""

import datetime as dt
import html
import re
import zoneinfo

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.channels.choices import ChannelType, MessageStatus
from apps.channels.models import Message, MessageEvent, TemplateVersion
from apps.channels.services.templates import create_template
from tests.channels.factories import ChannelFactory, email_template
from tests.contacts.factories import ContactFactory

HTMX = {"HTTP_HX_REQUEST": "true"}
NOW = timezone.now()


def shown_ids(response) -> list[int]:
    """The messages in the log, in the order shown."""
    return [int(pk) for pk in re.findall(r'<tr id="message-(\d+)"', response.content.decode())]


def make_message(contact, template, channel, key, **fields) -> Message:
    fields.setdefault("recipient", contact.email or "")
    return Message.objects.create(
        workspace=contact.workspace, contact=contact, channel=channel,
        template_version=template.versions.order_by("-number").first(), idempotency_key=key,
        **fields,
    )  # fmt: skip


@pytest.fixture
def log(workspace, other_workspace):
    """Acme's messages: Ann's welcome email (clicked, in a journey), Bo's (not sent: he
    unsubscribed) and Ann's text message; and one message of another workspace."""
    ann = ContactFactory(workspace=workspace, first_name="Ann", last_name="Berg",
                         email="ann@acme.test", phone="+4512345678")  # fmt: skip
    bo = ContactFactory(workspace=workspace, first_name="Bo", last_name="Lund",
                        email="bo@acme.test")  # fmt: skip
    newsletter = ChannelFactory(workspace=workspace, name="Newsletter", provider="server")
    texts = ChannelFactory(workspace=workspace, name="Texts", type=ChannelType.SMS,
                           provider="twilio")  # fmt: skip
    welcome = email_template(workspace)
    nudge, problems = create_template(workspace, {
        "name": "Nudge", "slug": "nudge", "channel": ChannelType.SMS,
        "body": "Hi {{ contact.first_name }}, your basket misses you.",
    })  # fmt: skip
    assert not problems
    clicked = make_message(ann, welcome, newsletter, "welcome:ann", status=MessageStatus.CLICKED,
                           subject="Hello Ann", journey_id=7, node_id="hello",
                           links=["https://shop.example.com/new"],
                           provider_message_id="<message-1@orchestra.example>",
                           created_at=NOW - dt.timedelta(days=3), sent_at=NOW)  # fmt: skip
    for kind, detail in (("sent", ""), ("opened", "Thunderbird/128"),
                         ("clicked", "https://shop.example.com/new")):  # fmt: skip
        MessageEvent.objects.create(message=clicked, kind=kind, detail=detail)
    dropped = make_message(bo, welcome, newsletter, "welcome:bo", status=MessageStatus.DROPPED,
                           reason="The contact unsubscribed from email.",
                           created_at=NOW - dt.timedelta(days=2))  # fmt: skip
    text = make_message(ann, nudge, texts, "nudge:ann", status=MessageStatus.SENT,
                        created_at=NOW, recipient="+4512345678")  # fmt: skip
    zed = ContactFactory(workspace=other_workspace, first_name="Zed", email="zed@other.test")
    elsewhere = make_message(zed, email_template(other_workspace, "promo"),
                             ChannelFactory(workspace=other_workspace), "promo:zed",
                             subject="Other brand promo")  # fmt: skip
    return {"ann": ann, "bo": bo, "newsletter": newsletter, "texts": texts,
            "welcome": welcome, "clicked": clicked, "dropped": dropped, "text": text,
            "elsewhere": elsewhere}  # fmt: skip


# The log ---------------------------------------------------------------------------------


def test_log_lists_the_workspaces_messages_newest_first_with_status_and_reason(
    log, analyst, client_for, django_assert_max_num_queries
):
    client = client_for(analyst)
    client.get(reverse("messages:list"))  # session and workspace caches warm
    with django_assert_max_num_queries(8) as captured:
        response = client.get(reverse("messages:list"))
    assert not any("COUNT(" in q["sql"].upper() for q in captured.captured_queries)
    assert response.status_code == 200
    assert shown_ids(response) == [log["text"].pk, log["dropped"].pk, log["clicked"].pk]
    content = response.content.decode()
    assert "The contact unsubscribed from email." in content
    assert "Hello Ann" in content and "Newsletter" in content and "Texts" in content
    assert "Other brand promo" not in content and "zed@other.test" not in content
    assert reverse("messages:detail", args=[log["clicked"].pk]) in content
    assert f'href="{reverse("messages:list")}" aria-current="page"' in content  # the nav


def local_day(days_ago: int) -> str:
    """A day as the Acme workspace (Copenhagen) sees it."""
    when = (NOW - dt.timedelta(days=days_ago)).astimezone(zoneinfo.ZoneInfo("Europe/Copenhagen"))
    return when.date().isoformat()


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"status": "dropped"}, ["dropped"]),
        ({"channel": "texts"}, ["text"]),
        ({"channel_type": "sms"}, ["text"]),
        ({"template": "welcome"}, ["dropped", "clicked"]),
        ({"journey": "7"}, ["clicked"]),
        ({"contact": "ann"}, ["text", "clicked"]),
        ({"created_after": local_day(0)}, ["text"]),
        ({"created_before": local_day(1)}, ["dropped", "clicked"]),
        ({"created_after": local_day(2), "created_before": local_day(2)}, ["dropped"]),
        ({"template": "welcome", "status": "clicked", "contact": "ann"}, ["clicked"]),
        ({"status": "bounced"}, []),
    ],
)
def test_log_filters(params, expected, log, marketer, client_for):
    refs = {"texts": log["texts"].pk, "ann": log["ann"].pk}
    query = {name: refs.get(value, value) for name, value in params.items()}
    response = client_for(marketer).get(reverse("messages:list"), query)
    assert response.status_code == 200
    assert shown_ids(response) == [log[name].pk for name in expected]
    if not expected:
        assert "No messages match these filters." in response.content.decode()


def test_log_filters_cannot_name_another_workspaces_channel_or_template(log, marketer, client_for):
    other_channel = log["elsewhere"].channel_id
    response = client_for(marketer).get(
        reverse("messages:list"), {"channel": other_channel, "template": "promo"}
    )
    assert response.status_code == 200
    content = response.content.decode()
    assert content.count("Select a valid choice") == 2
    assert log["elsewhere"].pk not in shown_ids(response)
    assert "Other brand promo" not in content


def test_log_filter_update_from_htmx_answers_only_the_table(log, marketer, client_for):
    response = client_for(marketer).get(reverse("messages:list"), {"status": "sent"}, **HTMX)
    content = response.content.decode()
    assert content.lstrip().startswith('<section id="message-table"')
    assert "<html" not in content
    assert shown_ids(response) == [log["text"].pk]
    assert response["Vary"] and "HX-Request" in response["Vary"]


def test_keyset_pages_walk_through_120_messages_without_overlap_or_gap(
    workspace, marketer, client_for, django_assert_max_num_queries
):
    contact = ContactFactory(workspace=workspace)
    channel = ChannelFactory(workspace=workspace)
    version = email_template(workspace).versions.get()
    # Three messages share each moment, so the pages must break ties by id.
    Message.objects.bulk_create(
        Message(workspace=workspace, contact=contact, channel=channel, template_version=version,
                idempotency_key=f"k{n}", created_at=NOW - dt.timedelta(seconds=n // 3))
        for n in range(120)
    )  # fmt: skip
    expected = list(
        Message.objects.for_workspace(workspace)
        .order_by("-created_at", "-id")
        .values_list("pk", flat=True)
    )
    client = client_for(marketer)
    seen, params, pages = [], {}, 0
    while True:
        with django_assert_max_num_queries(8) as captured:
            response = client.get(reverse("messages:list"), params)
        assert not any("COUNT(" in q["sql"].upper() for q in captured.captured_queries)
        ids = shown_ids(response)
        seen.extend(ids)
        pages += 1
        match = re.search(r'after=([\d-]+)" rel="next"', response.content.decode())
        if not match:
            break
        params = {"after": match.group(1)}
        assert "First page" in client.get(reverse("messages:list"), params).content.decode()
    assert pages == 3
    assert seen == expected


def test_a_broken_page_key_shows_the_first_page(log, marketer, client_for):
    for after in ("x", "12-", "99999999999999999999999-1", "-5"):
        response = client_for(marketer).get(reverse("messages:list"), {"after": after})
        assert response.status_code == 200
        assert len(shown_ids(response)) == 3


# One message -----------------------------------------------------------------------------


def test_message_page_shows_everything_about_it(log, analyst, client_for):
    message = log["clicked"]
    response = client_for(analyst).get(reverse("messages:detail", args=[message.pk]))
    assert response.status_code == 200
    content = response.content.decode()
    assert reverse("contacts:detail", args=[log["ann"].pk]) in content
    assert "Ann Berg" in content and "ann@acme.test" in content
    assert "Newsletter" in content
    assert "<code>welcome</code>" in content and "version 1" in content
    assert "Hello Ann" in content and "Clicked" in content
    assert "#7" in content and "<code>hello</code>" in content
    assert "&lt;message-1@orchestra.example&gt;" in content
    history = re.findall(r'class="timeline-entry message-event-(\w+)"', content)
    assert history == ["sent", "opened", "clicked"]
    assert "Thunderbird/128" in content
    # The email, re-rendered for Ann, inside a frame that runs nothing.
    frame = re.search(r"<iframe[^>]*>", content, re.S).group(0)
    assert " sandbox\n" in frame or " sandbox " in frame
    assert "allow-" not in frame
    srcdoc = html.unescape(re.search(r'srcdoc="([^"]*)"', frame).group(1))
    assert "Hi Ann, see" in srcdoc
    assert 'href="https://shop.example.com/new"' in srcdoc  # untracked: nothing re-signed
    assert "/t/c/" not in srcdoc and "/t/o/" not in srcdoc and "/t/u/" not in srcdoc
    assert "messages" not in response.context or not isinstance(
        response.context["messages"], list
    )  # Django's messages framework keeps its name


def test_message_page_of_a_dropped_message_shows_why(log, marketer, client_for):
    response = client_for(marketer).get(reverse("messages:detail", args=[log["dropped"].pk]))
    content = response.content.decode()
    assert "Not sent" in content
    assert "The contact unsubscribed from email." in content
    assert "Nothing has happened to this message yet." in content


def test_message_page_of_a_text_message_shows_its_body(log, marketer, client_for):
    response = client_for(marketer).get(reverse("messages:detail", args=[log["text"].pk]))
    content = response.content.decode()
    assert "<iframe" not in content
    assert "Hi Ann, your basket misses you." in content
    assert "+4512345678" in content


def test_message_page_survives_a_template_that_no_longer_renders(log, marketer, client_for):
    message = log["dropped"]
    broken = TemplateVersion.objects.create(
        template=message.template_version.template, number=9, subject="Hi",
        html="<mjml><mj-body><mj-section></mjml>",
    )  # fmt: skip
    Message.objects.filter(pk=message.pk).update(template_version=broken)
    response = client_for(marketer).get(reverse("messages:detail", args=[message.pk]))
    assert response.status_code == 200
    assert "The template did not render" in response.content.decode()


def test_outsider_gets_404_for_another_workspaces_message(log, outsider, client_for):
    client = client_for(outsider)
    response = client.get(reverse("messages:detail", args=[log["clicked"].pk]))
    assert response.status_code == 404
    assert "ann@acme.test" not in response.content.decode()
    own = client.get(reverse("messages:detail", args=[log["elsewhere"].pk]))
    assert own.status_code == 200
    assert shown_ids(client.get(reverse("messages:list"))) == [log["elsewhere"].pk]


def test_message_pages_only_read(log, owner, client_for):
    client = client_for(owner)
    assert client.post(reverse("messages:list")).status_code == 405
    assert client.post(reverse("messages:detail", args=[log["clicked"].pk])).status_code == 405


def test_anonymous_visitor_is_sent_to_sign_in_from_a_message(log, client):
    response = client.get(reverse("messages:detail", args=[log["clicked"].pk]))
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


# The contact's timeline ------------------------------------------------------------------


def test_contact_timeline_shows_messages_with_a_link_to_each(log, analyst, client_for):
    response = client_for(analyst).get(reverse("contacts:detail", args=[log["ann"].pk]))
    content = response.content.decode()
    for message in (log["clicked"], log["text"]):
        assert f'href="{reverse("messages:detail", args=[message.pk])}"' in content
    assert "Message: Welcome" in content and "Message: Nudge" in content
    assert "Hello Ann" in content  # the subject
    assert "Clicked" in content and "Texts" in content
    assert reverse("messages:detail", args=[log["dropped"].pk]) not in content  # Bo's
