"""The templates pages: the list, the editor (problems per field with their line), the live
preview in a sandboxed iframe, the contact picker, test sends, versions and deleting, for
each role and for an outsider."""

import html
import re

import pytest
from django.urls import reverse

from apps.channels.models import Message, Template
from apps.channels.services import outbox
from apps.channels.services.templates import create_template, save_template
from tests.channels.factories import email_template
from tests.contacts.factories import ContactFactory

pytestmark = pytest.mark.django_db

EMAIL_POST = {
    "name": "Spring sale",
    "slug": "",
    "channel": "email",
    "subject": "Spring for {{ contact.first_name }}",
    "preheader": "Three days only",
    "html": "<p>Hi {{ contact.first_name }}</p>",
    "text": "",
    "body": "",
}


def iframe_srcdoc(content: str) -> str:
    """The preview iframe's document, as the browser reads the attribute."""
    match = re.search(r'<iframe class="preview-html" sandbox srcdoc="([^"]*)"', content)
    assert match, "no sandboxed iframe in the preview"
    return html.unescape(match.group(1))


# The list -------------------------------------------------------------------------------


def test_list_shows_templates_with_channel_slug_version_and_new_button(
    workspace, marketer, client_for, django_assert_max_num_queries
):
    email_template(workspace, "welcome")
    template = email_template(workspace, "winback")
    save_template(template, {"subject": "Come back, {{ contact.first_name }}"})
    client = client_for(marketer)

    with django_assert_max_num_queries(8):
        response = client.get(reverse("templates:list"))

    content = response.content.decode()
    assert response.status_code == 200
    assert content.count('<tr id="template-') == 2
    assert "<code>winback</code>" in content
    assert re.search(
        rf'id="template-{template.pk}">.*?Email.*?<td class="numeric">2</td>', content, re.S
    )
    assert reverse("templates:create") in content


def test_analyst_reads_the_list_without_a_new_button(workspace, analyst, client_for):
    email_template(workspace)
    content = client_for(analyst).get(reverse("templates:list")).content.decode()
    assert "Welcome" in content
    assert reverse("templates:create") not in content


def test_list_filters_by_channel_on_the_page_and_as_a_partial(workspace, owner, client_for):
    email_template(workspace, "welcome")
    create_template(workspace, {"name": "Nudge", "channel": "sms", "body": "Hi"})
    client = client_for(owner)

    page = client.get(reverse("templates:list"), {"channel": "sms"}).content.decode()
    partial = client.get(reverse("templates:list"), {"channel": "sms"}, HTTP_HX_REQUEST="true")

    assert "Nudge" in page and "Welcome" not in page
    assert client.get(reverse("templates:list"), {"channel": "fax"}).status_code == 200
    assert "<html" not in partial.content.decode()
    assert "Nudge" in partial.content.decode() and "Welcome" not in partial.content.decode()


def test_outsider_lists_only_their_own_templates(workspace, outsider, client_for):
    email_template(workspace, "acme-secret-plan")
    content = client_for(outsider).get(reverse("templates:list")).content.decode()
    assert "acme-secret-plan" not in content
    assert "No templates yet" in content


# The editor -----------------------------------------------------------------------------


def test_marketer_creates_an_email_template_as_version_one(workspace, marketer, client_for):
    response = client_for(marketer).post(reverse("templates:create"), EMAIL_POST)

    template = Template.objects.get()
    assert response.status_code == 302
    assert response.url == reverse("templates:edit", args=[template.pk])
    assert (template.slug, template.version, template.workspace) == ("spring-sale", 1, workspace)
    version = template.versions.get()
    assert (version.number, version.created_by) == (1, marketer)
    assert version.subject == "Spring for {{ contact.first_name }}"


def test_problems_are_shown_per_field_with_their_line(workspace, marketer, client_for):
    data = {**EMAIL_POST, "subject": "", "html": "<p>\n\n{{ contact.frist_name }}</p>"}

    response = client_for(marketer).post(reverse("templates:create"), data)

    content = response.content.decode()
    assert response.status_code == 200
    assert Template.objects.count() == 0
    subject_problems = re.search(r'id="subject-problems".*?</ul>', content, re.S).group(0)
    html_problems = re.search(r'id="html-problems".*?</ul>', content, re.S).group(0)
    assert "An email needs a subject." in subject_problems
    assert "Line 3: unknown variable contact.frist_name" in html_problems
    assert "The template was not saved" in content
    # What was typed is kept.
    assert "{{ contact.frist_name }}" in html.unescape(content)


def test_a_second_template_with_the_same_slug_is_refused(workspace, marketer, client_for):
    email_template(workspace, "spring-sale")

    response = client_for(marketer).post(reverse("templates:create"), EMAIL_POST)

    assert "Another template has the slug spring-sale." in response.content.decode()
    assert Template.objects.count() == 1


def test_saving_changed_content_makes_a_new_version_and_lists_history(
    workspace, marketer, client_for
):
    template = email_template(workspace)
    client = client_for(marketer)
    data = {
        "name": "Welcome",
        "slug": "welcome",
        "channel": "email",
        "subject": "New subject",
        "html": "<p>New</p>",
    }

    response = client.post(reverse("templates:edit", args=[template.pk]), data, follow=True)
    again = client.post(reverse("templates:edit", args=[template.pk]), data, follow=True)

    template.refresh_from_db()
    assert template.version == 2
    assert list(template.versions.values_list("number", flat=True)) == [2, 1]
    assert "saved as version 2" in response.content.decode()
    assert "Nothing changed in the content; Welcome stays at version 2." in again.content.decode()
    history = re.search(r'id="versions-heading".*?</table>', again.content.decode(), re.S)
    assert reverse("templates:version", args=[template.pk, 1]) in history.group(0)
    assert reverse("templates:version", args=[template.pk, 2]) in history.group(0)


def test_editor_shows_only_the_channels_fields_and_the_help_panel(workspace, owner, client_for):
    template = email_template(workspace)
    ContactFactory(workspace=workspace, attributes={"loyalty_tier": "gold"})

    content = client_for(owner).get(reverse("templates:edit", args=[template.pk])).content.decode()

    assert 'data-channels="email push"' in content  # the subject
    assert 'data-channels="sms push webhook"' in content  # the body
    assert "contact.attributes.loyalty_tier" in content
    assert '{% if contact.segments contains "vip" %}' in content
    assert '{{ contact.first_name | default: "there" }}' in content
    assert "unsubscribe_url" in content


def test_analyst_reads_the_editor_but_cannot_save(workspace, analyst, client_for):
    template = email_template(workspace)
    client = client_for(analyst)

    page = client.get(reverse("templates:edit", args=[template.pk])).content.decode()
    response = client.post(
        reverse("templates:edit", args=[template.pk]), {**EMAIL_POST, "name": "Hacked"}
    )

    assert "<fieldset disabled>" in page
    assert f'hx-get="{reverse("templates:preview")}?template={template.pk}"' in page
    assert reverse("templates:send_test") not in page
    assert response.status_code == 403
    template.refresh_from_db()
    assert (template.name, template.version) == ("Welcome", 1)


def test_analyst_cannot_open_a_new_template(workspace, analyst, client_for):
    client = client_for(analyst)
    assert client.get(reverse("templates:create")).status_code == 403
    assert client.post(reverse("templates:create"), EMAIL_POST).status_code == 403
    assert Template.objects.count() == 0


def test_outsider_cannot_open_or_save_another_workspaces_template(workspace, outsider, client_for):
    template = email_template(workspace)
    client = client_for(outsider)

    assert client.get(reverse("templates:edit", args=[template.pk])).status_code == 404
    response = client.post(reverse("templates:edit", args=[template.pk]), EMAIL_POST)

    assert response.status_code == 404
    template.refresh_from_db()
    assert (template.name, template.version) == ("Welcome", 1)


# The live preview -----------------------------------------------------------------------


def test_preview_renders_the_draft_for_the_chosen_contact_in_a_sandboxed_iframe(
    workspace, marketer, client_for
):
    ann = ContactFactory(workspace=workspace, first_name="Ann")
    ContactFactory(workspace=workspace, first_name="Newest")

    response = client_for(marketer).post(
        reverse("templates:preview"), {**EMAIL_POST, "contact": ann.pk}
    )

    content = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in content  # a partial
    assert '<iframe class="preview-html" sandbox srcdoc="' in content
    assert "allow-scripts" not in content and "allow-same-origin" not in content
    document = iframe_srcdoc(content)
    assert "Hi Ann" in document
    assert "Three days only" in document  # the preheader
    assert 'class="preview-subject">Spring for Ann<' in content
    assert re.search(r'<pre class="preview-text">Hi Ann\s', content)  # the text part beside


def test_preview_defaults_to_the_newest_contact_then_to_sample_data(
    workspace, marketer, client_for
):
    client = client_for(marketer)
    sample = client.post(reverse("templates:preview"), EMAIL_POST).content.decode()
    ContactFactory(workspace=workspace, first_name="Bea")
    newest = client.post(reverse("templates:preview"), EMAIL_POST).content.decode()

    assert "Hi Ada" in iframe_srcdoc(sample)
    assert "With sample data" in sample
    assert "Hi Bea" in iframe_srcdoc(newest)


def test_contact_data_cannot_inject_markup_into_the_page(workspace, marketer, client_for):
    ContactFactory(workspace=workspace, first_name='<script>alert("x")</script>')

    content = client_for(marketer).post(reverse("templates:preview"), EMAIL_POST).content
    content = content.decode()

    assert "<script>" not in content
    assert "<script>" not in iframe_srcdoc(content)  # escaped by Liquid inside the email too


def test_preview_shows_liquid_problems_instead_of_failing(workspace, marketer, client_for):
    data = {**EMAIL_POST, "html": "<p>\n{{ contact.first_name | shout }}</p>"}

    response = client_for(marketer).post(reverse("templates:preview"), data)

    assert response.status_code == 200
    assert "HTML: Line 2: unknown filter &#x27;shout&#x27;" in response.content.decode()
    assert "<iframe" not in response.content.decode()


def test_preview_of_an_sms_shows_the_body_and_its_length(workspace, marketer, client_for):
    ContactFactory(workspace=workspace, first_name="Ann")
    data = {"channel": "sms", "body": "Hi {{ contact.first_name }}"}

    content = client_for(marketer).post(reverse("templates:preview"), data).content.decode()

    assert '<pre class="preview-body">Hi Ann</pre>' in content
    assert "6 characters" in content
    assert "<iframe" not in content


def test_analyst_previews_the_saved_version_but_cannot_post_drafts(workspace, analyst, client_for):
    template = email_template(workspace)
    ContactFactory(workspace=workspace, first_name="Cy")
    client = client_for(analyst)

    saved = client.get(reverse("templates:preview"), {"template": template.pk})
    draft = client.post(reverse("templates:preview"), EMAIL_POST)

    assert saved.status_code == 200
    assert "Hi Cy" in iframe_srcdoc(saved.content.decode())
    assert draft.status_code == 403


def test_outsider_previews_see_nothing_of_another_workspace(workspace, outsider, client_for):
    template = email_template(workspace)
    ann = ContactFactory(workspace=workspace, first_name="Annsecret", email="ann@acme.test")
    client = client_for(outsider)

    saved = client.get(reverse("templates:preview"), {"template": template.pk})
    draft = client.post(reverse("templates:preview"), {**EMAIL_POST, "contact": ann.pk})

    assert saved.status_code == 404
    assert draft.status_code == 200
    content = draft.content.decode()
    assert "Annsecret" not in content and "ann@acme.test" not in content
    assert "Hi Ada" in iframe_srcdoc(content)  # their own (empty) workspace: sample data


# The contact picker ---------------------------------------------------------------------


def test_contact_picker_finds_contacts_by_email_or_name(workspace, marketer, client_for):
    ann = ContactFactory(workspace=workspace, first_name="Ann", email="ann@shop.test")
    bo = ContactFactory(workspace=workspace, first_name="Bo", email="bo@shop.test")
    client = client_for(marketer)

    by_email = client.get(reverse("templates:contact_search"), {"q": "ann@"})
    by_name = client.get(reverse("templates:contact_search"), {"q": "bo"})

    assert by_email["HX-Trigger-After-Settle"] == "preview-contact-changed"
    assert f'<option value="{ann.pk}"' in by_email.content.decode()
    assert f'<option value="{bo.pk}"' not in by_email.content.decode()
    assert f'<option value="{bo.pk}"' in by_name.content.decode()


def test_contact_picker_of_an_outsider_lists_none_of_acmes_contacts(
    workspace, outsider, client_for
):
    ContactFactory(workspace=workspace, email="ann@acme.test")

    response = client_for(outsider).get(reverse("templates:contact_search"), {"q": "ann"})

    assert response.status_code == 200
    assert "ann@acme.test" not in response.content.decode()
    assert '<option value="">' in response.content.decode()


def test_editor_picker_starts_on_the_newest_contact(workspace, marketer, client_for):
    ContactFactory(workspace=workspace, email="old@shop.test")
    newest = ContactFactory(workspace=workspace, email="new@shop.test")

    content = client_for(marketer).get(reverse("templates:create")).content.decode()

    assert f'<option value="{newest.pk}" selected>' in content


# Test sends -----------------------------------------------------------------------------


def test_send_a_test_reaches_the_smtp_server(workspace, marketer, client_for, smtp_server):
    ContactFactory(workspace=workspace, first_name="Ann")

    response = client_for(marketer).post(
        reverse("templates:send_test"), {**EMAIL_POST, "recipient": "marketer@acme.test"}
    )

    assert response.status_code == 200
    assert "The test was sent to marketer@acme.test." in response.content.decode()
    assert [m["Subject"] for m in smtp_server.to("marketer@acme.test")] == ["[Test] Spring for Ann"]
    assert Message.objects.count() == 0


def test_send_a_test_to_a_bad_address_says_why_and_sends_nothing(
    workspace, marketer, client_for, smtp_server
):
    response = client_for(marketer).post(
        reverse("templates:send_test"), {**EMAIL_POST, "recipient": "nobody"}
    )

    assert response.status_code == 200
    assert 'role="alert"' in response.content.decode()
    assert "nobody is not a valid email address." in response.content.decode()
    assert smtp_server.messages == []


def test_send_a_test_of_a_broken_template_lists_its_problems(
    workspace, marketer, client_for, smtp_server
):
    data = {**EMAIL_POST, "html": "{{ contact.frist_name }}", "recipient": "me@acme.test"}

    content = client_for(marketer).post(reverse("templates:send_test"), data).content.decode()

    assert "Fix the template&#x27;s problems first." in content
    assert "HTML: Line 1: unknown variable contact.frist_name" in content
    assert smtp_server.messages == []


def test_analyst_cannot_send_a_test(workspace, analyst, client_for, smtp_server):
    response = client_for(analyst).post(
        reverse("templates:send_test"), {**EMAIL_POST, "recipient": "analyst@acme.test"}
    )
    assert response.status_code == 403
    assert smtp_server.messages == []


def test_outsider_test_send_renders_no_acme_contact(workspace, outsider, client_for, smtp_server):
    ann = ContactFactory(workspace=workspace, first_name="Annsecret")

    client_for(outsider).post(
        reverse("templates:send_test"),
        {**EMAIL_POST, "contact": ann.pk, "recipient": "outsider@other.test"},
    )

    [mail] = smtp_server.messages
    assert mail["Subject"] == "[Test] Spring for Ada"


# Versions and deleting ------------------------------------------------------------------


def test_any_version_is_shown_read_only_with_its_preview(workspace, analyst, client_for):
    template = email_template(workspace, subject="First subject")
    save_template(template, {"subject": "Second subject"})

    response = client_for(analyst).get(reverse("templates:version", args=[template.pk, 1]))

    content = response.content.decode()
    assert response.status_code == 200
    assert "<pre>First subject</pre>" in content
    assert "Second subject" not in content
    assert "<textarea" not in content and "<form" not in content.split("<main")[1]
    assert "First subject" in content.split('id="template-preview"')[1]


def test_a_missing_version_is_404(workspace, owner, client_for):
    template = email_template(workspace)
    response = client_for(owner).get(reverse("templates:version", args=[template.pk, 7]))
    assert response.status_code == 404


def test_marketer_deletes_a_template_after_confirming(workspace, marketer, client_for):
    template = email_template(workspace)
    client = client_for(marketer)

    confirm = client.get(reverse("templates:delete", args=[template.pk]))
    response = client.post(reverse("templates:delete", args=[template.pk]))

    assert confirm.status_code == 200 and "Delete Welcome?" in confirm.content.decode()
    assert response.status_code == 302
    assert Template.objects.count() == 0


def test_a_template_messages_were_sent_from_is_not_deleted(workspace, owner, client_for):
    template = email_template(workspace)
    contact = ContactFactory(workspace=workspace)
    outbox.queue_message(contact, template, "welcome:1")

    response = client_for(owner).post(reverse("templates:delete", args=[template.pk]), follow=True)

    assert "Welcome cannot be deleted: 1 message was sent from it" in response.content.decode()
    assert Template.objects.count() == 1


def test_analyst_cannot_delete(workspace, analyst, client_for):
    template = email_template(workspace)
    client = client_for(analyst)
    assert client.get(reverse("templates:delete", args=[template.pk])).status_code == 403
    assert client.post(reverse("templates:delete", args=[template.pk])).status_code == 403
    assert Template.objects.count() == 1
