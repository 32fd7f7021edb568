"""The admin of every channels model: a searchable, filterable list and a change page that
load; a channel's secrets are never shown, only which are set."""

import pytest
from django.apps import apps
from django.contrib import admin
from django.urls import reverse

from apps.channels.choices import ChannelType
from apps.channels.models import (
    Channel,
    DeliveryPolicy,
    Message,
    MessageEvent,
    PushSubscription,
    Suppression,
)
from apps.channels.services import outbox
from tests.channels.factories import ChannelFactory, email_template
from tests.contacts.factories import ContactFactory

pytestmark = pytest.mark.django_db

SECRET = "admin-secret-Vb55Kp2"
MODELS = [model._meta.model_name for model in apps.get_app_config("channels").get_models()]


@pytest.fixture
def data(workspace):
    """One row of every channels model."""
    contact = ContactFactory(workspace=workspace, email="ann@acme.test")
    channel = ChannelFactory(
        workspace=workspace,
        name="Acme SMTP",
        provider="smtp",
        config={"host": "mail.acme.test", "port": 587},
        secrets={"password": SECRET},
    )
    template = email_template(workspace, "acme-welcome")
    message = outbox.queue_message(contact, template, "acme:1", channel=channel).message
    MessageEvent.objects.create(message=message, kind="queued", detail="acme")
    Suppression.objects.create(
        workspace=workspace,
        channel_type=ChannelType.EMAIL,
        address="gone@acme.test",
        reason="manual",
    )
    DeliveryPolicy.objects.create(workspace=workspace, max_per_day=3)
    PushSubscription.objects.create(
        workspace=workspace,
        contact=contact,
        endpoint="https://push.example.com/acme",
        p256dh="k",
        auth="a",
    )
    return {"channel": channel, "message": message}


def test_every_channels_model_is_registered():
    registered = {model._meta.model_name for model in admin.site._registry}
    assert set(MODELS) - registered == set()


@pytest.mark.parametrize("model", MODELS)
def test_every_model_has_a_searchable_filterable_admin_list_and_change_page(
    model, admin_client, data, django_assert_max_num_queries
):
    with django_assert_max_num_queries(20):
        response = admin_client.get(reverse(f"admin:channels_{model}_changelist"), {"q": "acme"})

    assert response.status_code == 200
    changelist = response.context["cl"]
    assert changelist.search_fields
    assert changelist.has_filters
    assert changelist.result_count >= 1
    assert SECRET not in response.content.decode()
    row = changelist.result_list[0]
    page = admin_client.get(reverse(f"admin:channels_{model}_change", args=[row.pk]))
    assert page.status_code == 200
    assert SECRET not in page.content.decode()


def test_a_channel_page_says_which_secrets_are_set(admin_client, data):
    channel = data["channel"]

    page = admin_client.get(reverse("admin:channels_channel_change", args=[channel.pk]))
    listing = admin_client.get(reverse("admin:channels_channel_changelist"))

    content = page.content.decode()
    assert SECRET not in content and SECRET not in listing.content.decode()
    assert 'name="secrets"' not in content
    assert "password" in content.split("Secrets set")[1][:300]


def test_saving_a_channel_in_the_admin_keeps_its_secrets(admin_client, data):
    channel = data["channel"]

    response = admin_client.post(
        reverse("admin:channels_channel_change", args=[channel.pk]),
        {
            "workspace": channel.workspace_id,
            "name": "Renamed",
            "type": "email",
            "provider": "smtp",
            "config": '{"host": "mail2.acme.test", "port": 25}',
            "is_active": "on",
        },
    )

    assert response.status_code == 302
    channel.refresh_from_db()
    assert (channel.name, channel.secrets) == ("Renamed", {"password": SECRET})


def test_messages_are_read_only_in_the_admin(admin_client, data):
    message = data["message"]
    response = admin_client.post(
        reverse("admin:channels_message_change", args=[message.pk]), {"status": "sent"}
    )
    assert response.status_code == 403
    message.refresh_from_db()
    assert message.status == "queued"
    assert Message.objects.count() == 1
    assert Channel.objects.filter(pk=data["channel"].pk).exists()


def test_a_template_changed_in_the_admin_gets_a_new_version(admin_client, workspace):
    template = email_template(workspace)
    url = reverse("admin:channels_template_change", args=[template.pk])
    data = {
        "workspace": workspace.pk,
        "name": "Welcome",
        "slug": "welcome",
        "channel": "email",
        "subject": "New subject",
        "html": template.html,
        "versions-TOTAL_FORMS": "1",
        "versions-INITIAL_FORMS": "1",
        "versions-0-id": template.versions.get().pk,
        "versions-0-template": template.pk,
    }

    bad = admin_client.post(url, {**data, "subject": "{{ contact.frist_name }}"})
    good = admin_client.post(url, data)

    assert bad.status_code == 200
    assert "Line 1: unknown variable contact.frist_name" in bad.content.decode()
    assert good.status_code == 302
    template.refresh_from_db()
    assert (template.version, template.subject) == (2, "New subject")
    assert list(template.versions.values_list("number", flat=True)) == [2, 1]
