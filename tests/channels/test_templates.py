"""What the editor and the API build on: drafts rendered without the compile cache, previews
that report problems instead of failing, test sends through the real SMTP server and a real
SMS gateway, the variables panel, and deleting a template."""

import pytest

from apps.channels.choices import ChannelType
from apps.channels.models import Message, Template
from apps.channels.services import editor, outbox, rendering
from apps.channels.services.templates import current_version
from apps.contacts.models import Contact
from tests.channels.factories import ChannelFactory, email_template
from tests.channels.http_peer import HttpPeer
from tests.contacts.factories import ContactFactory

pytestmark = pytest.mark.django_db


def draft(workspace, channel=ChannelType.EMAIL, **content):
    return editor.draft_version(workspace, channel, content)


def test_a_draft_renders_for_a_contact_without_filling_the_compile_cache(workspace):
    contact = ContactFactory(workspace=workspace, first_name="Ann", attributes={"plan": "pro"})
    rendering._compiled.cache_clear()
    rendering._email_layout.cache_clear()
    version = draft(
        workspace,
        subject="Hi {{ contact.first_name }}",
        html="<p>Your plan: {{ contact.attributes.plan }}</p>",
    )

    result = editor.preview(version, ChannelType.EMAIL, editor.preview_scope(workspace, contact))

    assert version.pk is None
    assert result.problems == []
    assert result.rendered.subject == "Hi Ann"
    assert "Your plan: pro" in result.rendered.html
    assert "Your plan: pro" in result.rendered.text  # the text part is made from the HTML
    assert rendering._compiled.cache_info().currsize == 0
    assert rendering._email_layout.cache_info().currsize == 0


def test_two_drafts_never_share_a_compiled_field(workspace):
    scope = editor.sample_scope(workspace)
    first = editor.preview(draft(workspace, ChannelType.SMS, body="one"), ChannelType.SMS, scope)
    second = editor.preview(draft(workspace, ChannelType.SMS, body="two"), ChannelType.SMS, scope)

    assert (first.rendered.body, second.rendered.body) == ("one", "two")


def test_a_saved_version_is_still_compiled_once(workspace):
    template = email_template(workspace)
    rendering._compiled.cache_clear()
    rendering._email_layout.cache_clear()
    scope = editor.sample_scope(workspace)

    for _ in range(3):
        editor.preview(current_version(template), ChannelType.EMAIL, scope)

    info = rendering._compiled.cache_info()
    assert (info.currsize, info.misses) == (1, 1)  # the subject, parsed once
    layouts = rendering._email_layout.cache_info()
    assert (layouts.currsize, layouts.misses) == (1, 1)  # the HTML: CSS inlined, text, once


def test_preview_lists_unknown_variables_with_field_and_line(workspace):
    version = draft(workspace, subject="Hello", html="<p>\n\n{{ contact.frist_name }}</p>")

    result = editor.preview(version, ChannelType.EMAIL, editor.sample_scope(workspace))

    assert result.rendered is not None
    assert result.problems == [
        "HTML: Line 3: unknown variable contact.frist_name (contact has attributes, created_at, "
        "email, external_id, first_name, id, last_name, locale, name, phone, segments, "
        "timezone)"
    ]


def test_preview_reports_a_render_error_instead_of_raising(workspace):
    version = draft(workspace, ChannelType.SMS, body="Hi\n{{ contact.first_name | shout }}")

    result = editor.preview(version, ChannelType.SMS, editor.sample_scope(workspace))

    assert result.rendered is None
    assert result.problems == ["Body: Line 2: unknown filter 'shout'"]


def test_preview_reports_a_syntax_error_with_its_line(workspace):
    version = draft(workspace, ChannelType.SMS, body="Hi\n{% if %}yes{% endif %}")

    result = editor.preview(version, ChannelType.SMS, editor.sample_scope(workspace))

    assert result.rendered is None
    assert result.problems[0].startswith("Body: Line 2: ")


def test_sample_data_stands_in_when_the_workspace_has_no_contacts(workspace):
    assert editor.pick_contact(workspace, None) is None
    version = draft(workspace, ChannelType.SMS, body="Hi {{ contact.first_name }}")

    result = editor.preview(version, ChannelType.SMS, editor.preview_scope(workspace, None))

    assert result.rendered.body == "Hi Ada"


def test_pick_contact_defaults_to_the_newest_and_never_crosses_workspaces(
    workspace, other_workspace
):
    older = ContactFactory(workspace=workspace)
    newest = ContactFactory(workspace=workspace)
    foreign = ContactFactory(workspace=other_workspace)

    assert editor.pick_contact(workspace, None) == newest
    assert editor.pick_contact(workspace, str(older.pk)) == older
    assert editor.pick_contact(workspace, foreign.pk) == newest
    assert editor.pick_contact(workspace, "not a number") == newest


def test_segment_conditions_render_per_contact(workspace):
    from apps.segments.models import Segment, SegmentMembership

    vip = Segment.objects.create(workspace=workspace, name="VIP", slug="vip", rule={"all": []})
    member, other = ContactFactory(workspace=workspace), ContactFactory(workspace=workspace)
    SegmentMembership.objects.create(workspace=workspace, segment=vip, contact=member)
    version = draft(
        workspace,
        ChannelType.SMS,
        body='{% if contact.segments contains "vip" %}VIP{% else %}regular{% endif %}',
    )

    bodies = [
        editor.preview(version, ChannelType.SMS, editor.preview_scope(workspace, c)).rendered.body
        for c in (member, other)
    ]

    assert bodies == ["VIP", "regular"]


# Test sends -----------------------------------------------------------------------------


def test_a_test_email_reaches_the_smtp_server_rendered_for_the_contact(workspace, smtp_server):
    contact = ContactFactory(workspace=workspace, first_name="Ann")
    version = draft(
        workspace,
        subject="Hello {{ contact.first_name }}",
        html='<p>Hi {{ contact.first_name }}, <a href="https://shop.example.com/">shop</a></p>',
    )

    sent_to = editor.send_test(workspace, version, ChannelType.EMAIL, " Me@Acme.test ", contact)

    assert sent_to == "me@acme.test"
    assert len(smtp_server.messages) == 1
    mail = smtp_server.messages[0]
    assert mail["To"] == "me@acme.test"
    assert mail["Subject"] == "[Test] Hello Ann"
    html = mail.get_body(("html",)).get_content()
    assert "Hi Ann" in html
    assert 'href="https://shop.example.com/"' in html  # not tracked: no message to track
    assert "Hi Ann" in mail.get_body(("plain",)).get_content()
    assert Message.objects.count() == 0


def test_a_test_sms_reaches_the_gateway(workspace):
    contact = ContactFactory(workspace=workspace, first_name="Ann")
    version = draft(workspace, ChannelType.SMS, body="Hi {{ contact.first_name }}!")
    with HttpPeer() as gateway:
        gateway.reply(200, {"id": "gw-1"})
        ChannelFactory(
            workspace=workspace,
            type=ChannelType.SMS,
            provider="http_json",
            is_default=True,
            config={"url": gateway.url + "/send", "from_number": "Acme"},
            secrets={"token": "gateway-token"},
        )

        sent_to = editor.send_test(workspace, version, ChannelType.SMS, "+45 20 12 34 56", contact)

    assert sent_to == "+4520123456"
    assert len(gateway.requests) == 1
    payload = gateway.requests[0].json()
    assert (payload["to"], payload["body"]) == ("+4520123456", "Hi Ann!")
    assert gateway.requests[0].headers["authorization"] == "Bearer gateway-token"
    assert Message.objects.count() == 0


@pytest.mark.parametrize(
    ("channel", "recipient", "message"),
    [
        (ChannelType.EMAIL, "not an address", "not an address is not a valid email address."),
        (ChannelType.EMAIL, "", "Type the email address to send the test to."),
        (ChannelType.SMS, "12", "12 is not a valid phone number"),
        (ChannelType.WEBHOOK, "https://example.com", "Test sends are for email and SMS"),
    ],
)
def test_a_test_send_to_a_bad_address_sends_nothing(
    workspace, smtp_server, channel, recipient, message
):
    version = draft(workspace, channel, subject="Hi", html="<p>Hi</p>", body="Hi")

    with pytest.raises(editor.TestSendFailed) as failure:
        editor.send_test(workspace, version, channel, recipient, None)

    assert failure.value.message.startswith(message)
    assert smtp_server.messages == []


def test_a_template_with_problems_is_not_test_sent(workspace, smtp_server):
    version = draft(workspace, subject="", html="{{ nope }}")

    with pytest.raises(editor.TestSendFailed) as failure:
        editor.send_test(workspace, version, ChannelType.EMAIL, "me@acme.test", None)

    assert failure.value.message == "Fix the template's problems first."
    assert failure.value.problems == [
        "Subject: An email needs a subject.",
        "HTML: Line 1: unknown variable nope",
    ]
    assert smtp_server.messages == []


def test_a_test_sms_without_an_sms_channel_says_so(workspace):
    version = draft(workspace, ChannelType.SMS, body="Hi")

    with pytest.raises(editor.TestSendFailed) as failure:
        editor.send_test(workspace, version, ChannelType.SMS, "+4520123456", None)

    assert failure.value.message == (
        "There is no active SMS channel. An owner can add one under Settings."
    )


def test_a_refusing_smtp_server_is_reported(workspace, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 2
    version = draft(workspace, subject="Hi", html="<p>Hi</p>")

    with pytest.raises(editor.TestSendFailed) as failure:
        editor.send_test(workspace, version, ChannelType.EMAIL, "me@acme.test", None)

    assert failure.value.message.startswith("Email did not send it: Could not connect")


# The variables panel and deleting ----------------------------------------------------------


def test_variables_name_the_workspaces_attributes(workspace):
    ContactFactory(workspace=workspace, attributes={"plan": "pro", "score": 3})

    names = [name for name, _description in editor.template_variables(workspace)]

    assert "contact.first_name" in names
    assert "contact.attributes.plan" in names
    assert "contact.attributes.score" in names
    assert "event.properties.…" in names
    assert "unsubscribe_url" in names


def test_a_template_no_message_was_sent_from_is_deleted_with_its_versions(workspace):
    template = email_template(workspace)

    editor.delete_template(template)

    assert not Template.objects.exists()


def test_a_template_messages_were_sent_from_is_kept(workspace):
    template = email_template(workspace)
    contact = Contact.objects.create(workspace=workspace, email="ann@example.test")
    outbox.queue_message(contact, template, "welcome:ann")

    with pytest.raises(editor.TemplateInUse) as refusal:
        editor.delete_template(template)

    assert str(refusal.value) == (
        "Welcome cannot be deleted: 1 message was sent from it and keeps the version it was "
        "rendered from."
    )
    assert Template.objects.get().versions.count() == 1


def test_an_unknown_filter_is_refused_on_save_with_its_line(workspace):
    from apps.channels.services.templates import create_template

    template, problems = create_template(
        workspace,
        {
            "name": "Loud",
            "slug": "loud",
            "channel": ChannelType.SMS,
            "body": "Hi\n{{ contact.first_name | shout }}",
        },
    )

    assert template is None
    assert problems == {"body": ["Line 2: unknown filter 'shout'"]}
    assert Template.objects.count() == 0
