"""/api/v1/templates/ (the DESIGN.md shape, versions, preview, 409 on a template in use) and
/api/v1/channels/ (read only, secrets never in an answer), with keys of each scope, members
of each role, and an outsider."""

import pytest
from django.urls import reverse

from apps.channels.choices import ChannelType
from apps.channels.models import Template
from apps.channels.services import outbox
from tests.channels.factories import ChannelFactory, email_template
from tests.contacts.factories import ContactFactory

pytestmark = pytest.mark.django_db

LIST = reverse("api:template-list")
SECRET = "api-secret-Hq71Lz0pW"


def detail(template) -> str:
    return reverse("api:template-detail", args=[template.pk])


WELCOME = {
    "slug": "welcome-1",
    "name": "Welcome",
    "channel": "email",
    "subject": "Welcome, {{ contact.first_name | default: 'friend' }}",
    "preheader": "Three things to try",
    "html": "<p>Hi {{ contact.first_name }}</p>",
    "text": "",
    "body": "",
}


@pytest.fixture
def api(workspace, api_key_for):
    return api_key_for(workspace, scopes=["read", "write"])


# Creating and reading -------------------------------------------------------------------


def test_create_answers_the_template_in_the_design_shape(workspace, api):
    response = api.post(LIST, WELCOME, format="json")

    assert response.status_code == 201
    body = response.json()
    template = Template.objects.get()
    assert body == {
        "id": template.pk,
        **WELCOME,
        "version": 1,
        "created_at": body["created_at"],
        "updated_at": body["updated_at"],
    }
    assert template.workspace == workspace
    assert template.versions.get().created_by is None  # an API key is no person


def test_bad_input_lists_every_problem_by_field(workspace, api):
    email_template(workspace, "taken")
    data = {
        "slug": "taken",
        "name": " ",
        "channel": "email",
        "subject": "",
        "html": "<p>\n{{ contact.frist_name }}</p>",
    }

    response = api.post(LIST, data, format="json")

    assert response.status_code == 400
    assert response.json() == {
        "detail": "Invalid input.",
        "errors": {
            "name": ["Give the template a name."],
            "slug": ["Another template has the slug taken."],
            "subject": ["An email needs a subject."],
            "html": [
                "Line 2: unknown variable contact.frist_name (contact has attributes, "
                "created_at, email, external_id, first_name, id, last_name, locale, name, "
                "phone, segments, timezone)"
            ],
        },
    }
    assert Template.objects.count() == 1


def test_an_unknown_channel_and_missing_body_are_both_reported(api):
    response = api.post(LIST, {"name": "Ping", "channel": "fax"}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == {"channel": ["One of email, sms, push, webhook."]}
    response = api.post(LIST, {"name": "Ping", "channel": "sms"}, format="json")
    assert response.json()["errors"] == {"body": ["Write the message."]}
    assert Template.objects.count() == 0


def test_wrong_types_are_refused_with_their_field(api):
    response = api.post(LIST, {"name": ["a"], "channel": "sms", "body": "x"}, format="json")
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["name"]
    response = api.post(LIST, ["not", "an", "object"], format="json")
    assert response.status_code == 400
    assert Template.objects.count() == 0


def test_list_filters_by_slug_and_channel(workspace, api):
    email_template(workspace, "welcome")
    api.post(LIST, {"name": "Nudge", "channel": "sms", "body": "Hi"}, format="json")

    by_slug = api.get(LIST, {"slug": "welcome"}).json()["results"]
    by_channel = api.get(LIST, {"channel": "sms"}).json()["results"]
    bad = api.get(LIST, {"channel": "fax"})

    assert [t["slug"] for t in by_slug] == ["welcome"]
    assert [t["slug"] for t in by_channel] == ["nudge"]
    assert bad.status_code == 400


# Changing -------------------------------------------------------------------------------


def test_patch_with_new_content_makes_version_two(workspace, api):
    template = email_template(workspace)

    response = api.patch(detail(template), {"subject": "New subject"}, format="json")

    assert response.status_code == 200
    assert (response.json()["subject"], response.json()["version"]) == ("New subject", 2)
    assert response.json()["html"] == template.html  # untouched
    versions = api.get(reverse("api:template-versions", args=[template.pk])).json()["results"]
    assert [(v["number"], v["subject"]) for v in versions] == [
        (2, "New subject"),
        (1, "Hello {{ contact.first_name | default: 'there' }}"),
    ]


def test_put_replaces_the_whole_template(workspace, api):
    template = email_template(workspace)
    data = {"name": "Welcome", "channel": "email", "subject": "Only text", "text": "Hello"}

    response = api.put(detail(template), data, format="json")

    assert response.status_code == 200
    assert (response.json()["html"], response.json()["text"]) == ("", "Hello")


def test_a_change_with_problems_saves_nothing(workspace, api):
    template = email_template(workspace)

    response = api.patch(detail(template), {"subject": "{% if %}"}, format="json")

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["subject"]
    template.refresh_from_db()
    assert (template.version, template.versions.count()) == (1, 1)


def test_a_template_used_by_messages_cannot_be_deleted(workspace, api):
    template = email_template(workspace)
    outbox.queue_message(ContactFactory(workspace=workspace), template, "one")

    response = api.delete(detail(template))

    assert response.status_code == 409
    assert response.json() == {
        "detail": "Welcome cannot be deleted: 1 message was sent from it and keeps the version "
        "it was rendered from."
    }
    assert Template.objects.count() == 1


def test_an_unused_template_is_deleted(workspace, api):
    template = email_template(workspace)
    assert api.delete(detail(template)).status_code == 204
    assert Template.objects.count() == 0


# Preview --------------------------------------------------------------------------------


def test_preview_renders_the_current_version_for_a_contact(workspace, api):
    template = email_template(workspace)
    ann = ContactFactory(workspace=workspace, first_name="Ann")
    ContactFactory(workspace=workspace, first_name="Newest")
    url = reverse("api:template-preview", args=[template.pk])

    for_ann = api.post(url, {"contact": ann.pk}, format="json").json()
    default = api.post(url, {}, format="json").json()

    assert for_ann["contact"] == ann.pk
    assert for_ann["subject"] == "Hello Ann"
    assert "Hi Ann" in for_ann["html"] and "Hi Ann" in for_ann["text"]
    assert "https://shop.example.com/new" in for_ann["html"]  # previews are not tracked
    assert (for_ann["body"], for_ann["problems"]) == ("", [])
    assert default["subject"] == "Hello Newest"


def test_preview_with_sample_data_when_there_are_no_contacts(workspace, api):
    template = email_template(workspace)
    response = api.post(reverse("api:template-preview", args=[template.pk]), {}, format="json")
    assert (response.json()["contact"], response.json()["subject"]) == (None, "Hello Ada")


@pytest.mark.parametrize("contact", ["abc", True, 999999])
def test_preview_for_a_bad_or_unknown_contact_is_400(workspace, api, contact):
    template = email_template(workspace)
    url = reverse("api:template-preview", args=[template.pk])
    response = api.post(url, {"contact": contact}, format="json")
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["contact"]


def test_a_read_key_previews_but_cannot_write(workspace, api_key_for):
    template = email_template(workspace)
    reader = api_key_for(workspace, scopes=["read"])

    preview = reader.post(reverse("api:template-preview", args=[template.pk]), {}, format="json")
    created = reader.post(LIST, WELCOME, format="json")
    changed = reader.patch(detail(template), {"name": "Hacked"}, format="json")
    deleted = reader.delete(detail(template))

    assert preview.status_code == 200
    assert (created.status_code, changed.status_code, deleted.status_code) == (403, 403, 403)
    template.refresh_from_db()
    assert (Template.objects.count(), template.name) == (1, "Welcome")


def test_an_ingest_key_cannot_read_templates(workspace, api_key_for):
    email_template(workspace)
    assert api_key_for(workspace, scopes=["ingest"]).get(LIST).status_code == 403


def test_an_analyst_reads_and_previews_but_cannot_change(workspace, analyst, client_for):
    template = email_template(workspace)
    client = client_for(analyst)

    listed = client.get(LIST)
    preview = client.post(
        reverse("api:template-preview", args=[template.pk]), {}, content_type="application/json"
    )
    changed = client.patch(detail(template), {"name": "Hacked"}, content_type="application/json")

    assert (listed.status_code, preview.status_code, changed.status_code) == (200, 200, 403)
    template.refresh_from_db()
    assert template.name == "Welcome"


def test_a_marketer_creates_through_the_session(workspace, marketer, client_for):
    response = client_for(marketer).post(LIST, WELCOME, content_type="application/json")
    assert response.status_code == 201
    assert Template.objects.get().versions.get().created_by == marketer


def test_outsider_key_sees_nothing_of_another_workspaces_templates(
    workspace, other_workspace, api_key_for
):
    template = email_template(workspace)
    outsider = api_key_for(other_workspace)

    assert outsider.get(LIST).json()["results"] == []
    assert outsider.get(detail(template)).status_code == 404
    assert outsider.get(reverse("api:template-versions", args=[template.pk])).status_code == 404
    preview = outsider.post(reverse("api:template-preview", args=[template.pk]), {}, format="json")
    assert preview.status_code == 404
    assert outsider.patch(detail(template), {"name": "Hacked"}, format="json").status_code == 404
    assert outsider.delete(detail(template)).status_code == 404
    template.refresh_from_db()
    assert template.name == "Welcome"
    # The same slug is free in the outsider's own workspace.
    assert outsider.post(LIST, {**WELCOME, "slug": "welcome"}, format="json").status_code == 201


def test_outsider_preview_cannot_render_another_workspaces_contact(
    workspace, other_workspace, api_key_for
):
    ann = ContactFactory(workspace=workspace, first_name="Ann")
    outsider = api_key_for(other_workspace)
    own = outsider.post(LIST, WELCOME, format="json").json()

    response = outsider.post(
        reverse("api:template-preview", args=[own["id"]]), {"contact": ann.pk}, format="json"
    )

    assert response.status_code == 400
    assert "Ann" not in response.content.decode()


# Channels -------------------------------------------------------------------------------


def test_channels_list_names_set_secrets_never_their_values(workspace, api_key_for):
    ChannelFactory(
        workspace=workspace,
        name="Gateway",
        type=ChannelType.SMS,
        provider="http_json",
        config={"url": "https://gw.example.com/send", "from_number": "Acme"},
        secrets={"token": SECRET},
        rate_per_second=10,
        is_default=True,
    )
    reader = api_key_for(workspace, scopes=["read"])

    response = reader.get(reverse("api:channel-list"))

    assert response.status_code == 200
    assert SECRET not in response.content.decode()
    channels = {c["name"]: c for c in response.json()["results"]}
    assert set(channels) == {"Email", "Gateway"}  # the server's email channel by default
    gateway = channels["Gateway"]
    assert gateway["secrets_set"] == ["token"]
    assert gateway["config"] == {"url": "https://gw.example.com/send", "from_number": "Acme"}
    assert (gateway["type"], gateway["provider"], gateway["rate_per_second"]) == (
        "sms",
        "http_json",
        10,
    )
    assert channels["Email"]["secrets_set"] == []
    one = reader.get(reverse("api:channel-detail", args=[gateway["id"]]))
    assert SECRET not in one.content.decode() and one.json()["secrets_set"] == ["token"]


def test_channels_are_read_only(workspace, api):
    channel = ChannelFactory(workspace=workspace, name="Mail")
    url = reverse("api:channel-detail", args=[channel.pk])
    assert api.post(reverse("api:channel-list"), {"name": "x"}, format="json").status_code == 405
    assert api.patch(url, {"name": "Hacked"}, format="json").status_code == 405
    assert api.delete(url).status_code == 405
    channel.refresh_from_db()
    assert channel.name == "Mail"


def test_outsider_key_sees_none_of_another_workspaces_channels(
    workspace, other_workspace, api_key_for
):
    channel = ChannelFactory(workspace=workspace, name="Acme gateway", secrets={"x": SECRET})
    outsider = api_key_for(other_workspace)

    listed = outsider.get(reverse("api:channel-list"))

    assert [c["name"] for c in listed.json()["results"]] == ["Email"]
    assert "Acme gateway" not in listed.content.decode()
    assert outsider.get(reverse("api:channel-detail", args=[channel.pk])).status_code == 404
