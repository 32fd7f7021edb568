"""Settings → Channels: owners add and change channels from the provider registry and set the
delivery policy; marketers and analysts look; secrets never come back into a page."""

import pytest
from django.urls import reverse
from django.utils.html import escape

from apps.channels.choices import ChannelType
from apps.channels.models import Channel, DeliveryPolicy, Message
from apps.channels.providers import PROVIDERS
from apps.channels.services import outbox
from tests.channels.factories import ChannelFactory, email_template
from tests.contacts.factories import ContactFactory

pytestmark = pytest.mark.django_db

SMTP_PASSWORD = "smtp-pass-Zq81xW"
SMTP_POST = {
    "provider": "smtp",
    "name": "Our mail server",
    "rate_per_second": "5",
    "is_active": "on",
    "settings-host": "mail.acme.test",
    "settings-port": "587",
    "settings-username": "acme",
    "settings-password": SMTP_PASSWORD,
    "settings-use_tls": "on",
    "settings-timeout": "20",
}


@pytest.fixture
def smtp_channel(workspace):
    return ChannelFactory(
        workspace=workspace,
        name="Our mail server",
        provider="smtp",
        config={
            "host": "mail.acme.test",
            "port": 587,
            "username": "acme",
            "use_tls": True,
            "use_ssl": False,
            "timeout": 20,
        },
        secrets={"password": SMTP_PASSWORD},
    )


# The list -------------------------------------------------------------------------------


def test_the_servers_email_channel_is_listed_by_default(workspace, owner, client_for):
    content = client_for(owner).get(reverse("channels:list")).content.decode()

    channel = Channel.objects.for_workspace(workspace).get()
    assert (channel.type, channel.provider, channel.is_default) == ("email", "server", True)
    assert f'id="channel-{channel.pk}"' in content
    assert "This server&#x27;s email settings" in content
    assert reverse("channels:create") in content
    assert 'href="/settings/channels/" aria-current="page">Channels<' in content


def test_list_shows_which_secrets_are_set_never_their_value(
    workspace, owner, smtp_channel, client_for
):
    content = client_for(owner).get(reverse("channels:list")).content.decode()

    assert "password set" in content
    assert SMTP_PASSWORD not in content
    assert "5/s" not in content  # no rate limit set on the fixture's channel


@pytest.mark.parametrize("person", ["marketer", "analyst"])
def test_marketers_and_analysts_see_channels_but_no_changes(
    person, workspace, smtp_channel, request, client_for
):
    content = client_for(request.getfixturevalue(person)).get(reverse("channels:list"))
    content = content.content.decode()

    assert "Our mail server" in content
    assert SMTP_PASSWORD not in content
    assert reverse("channels:create") not in content
    assert "<fieldset disabled>" in content
    assert "Only owners can change channels and the delivery policy." in content


# Adding ---------------------------------------------------------------------------------


def test_adding_offers_every_provider_in_the_registry_by_type(workspace, owner, client_for):
    content = client_for(owner).get(reverse("channels:create")).content.decode()

    for key, provider in PROVIDERS.items():
        assert f'?provider={key}">{escape(provider.label)}</a>' in content
    for label in ("Email", "SMS", "Web push", "Webhook"):
        assert f">{label}</h3>" in content


def test_owner_adds_an_smtp_channel_whose_password_is_kept_apart(workspace, owner, client_for):
    client = client_for(owner)

    form = client.get(reverse("channels:create"), {"provider": "smtp"})
    response = client.post(reverse("channels:create"), SMTP_POST)

    assert form.status_code == 200 and 'name="settings-host"' in form.content.decode()
    assert response.status_code == 302
    channel = Channel.objects.for_workspace(workspace).get(name="Our mail server")
    assert (channel.type, channel.provider, channel.rate_per_second) == ("email", "smtp", 5)
    assert channel.secrets == {"password": SMTP_PASSWORD}
    assert channel.config["host"] == "mail.acme.test" and "password" not in channel.config
    page = client.get(reverse("channels:edit", args=[channel.pk])).content.decode()
    assert SMTP_PASSWORD not in page
    assert "data-secret-state>set<" in page


def test_a_refused_form_never_shows_the_typed_secret_back(workspace, owner, client_for):
    data = {**SMTP_POST, "settings-host": "", "settings-use_ssl": "on"}

    response = client_for(owner).post(reverse("channels:create"), data)

    content = response.content.decode()
    assert response.status_code == 200
    assert "The channel was not saved" in content
    assert "This field is required." in content
    assert "Choose STARTTLS or TLS from the start, not both." in content
    assert SMTP_PASSWORD not in content
    assert not Channel.objects.for_workspace(workspace).filter(provider="smtp").exists()


def test_a_providers_own_checks_are_shown_on_its_fields(workspace, owner, client_for):
    data = {
        "provider": "webhook",
        "name": "CRM hook",
        "is_active": "on",
        "settings-url": "https://crm.example.com/hook",
        "settings-signing_secret": "short-secret-1",
    }

    content = client_for(owner).post(reverse("channels:create"), data).content.decode()

    assert "A signing secret of at least 16 characters." in content
    assert "short-secret-1" not in content
    assert not Channel.objects.filter(type=ChannelType.WEBHOOK).exists()


def test_two_channels_cannot_share_a_name(workspace, owner, smtp_channel, client_for):
    content = client_for(owner).post(reverse("channels:create"), SMTP_POST).content.decode()

    assert "Another channel is called Our mail server." in content
    assert Channel.objects.for_workspace(workspace).filter(provider="smtp").count() == 1


def test_a_push_channel_gets_the_workspaces_vapid_keys_and_keeps_them(workspace, owner, client_for):
    client = client_for(owner)
    data = {
        "provider": "webpush",
        "name": "Browser push",
        "is_active": "on",
        "settings-subject_email": "push@acme.test",
        "settings-ttl": "3600",
    }

    client.post(reverse("channels:create"), data)
    channel = Channel.objects.get(type=ChannelType.PUSH)
    keys = (channel.config["vapid_public_key"], channel.secrets["vapid_private_key"])
    client.post(reverse("channels:edit", args=[channel.pk]), {**data, "settings-ttl": "60"})

    channel.refresh_from_db()
    assert channel.config["ttl"] == 60
    assert (channel.config["vapid_public_key"], channel.secrets["vapid_private_key"]) == keys
    assert keys[1] not in client.get(reverse("channels:edit", args=[channel.pk])).content.decode()


def test_an_sms_gateway_shows_owners_its_receipt_url(workspace, owner, marketer, client_for):
    channel = ChannelFactory(
        workspace=workspace,
        type=ChannelType.SMS,
        provider="http_json",
        config={"url": "https://gw.example.com/send", "from_number": "Acme"},
    )
    url = reverse("channels:edit", args=[channel.pk])

    owner_page = client_for(owner).get(url).content.decode()
    marketer_page = client_for(marketer).get(url).content.decode()

    assert f"/hooks/sms/{channel.pk}/" in owner_page
    assert f"/hooks/sms/{channel.pk}/" not in marketer_page


# Changing -------------------------------------------------------------------------------


def test_an_empty_secret_keeps_the_one_held_and_a_typed_one_replaces_it(
    workspace, owner, smtp_channel, client_for
):
    client = client_for(owner)
    url = reverse("channels:edit", args=[smtp_channel.pk])
    keep = {**SMTP_POST, "settings-password": "", "settings-host": "smtp.acme.test"}

    client.post(url, keep)
    smtp_channel.refresh_from_db()
    kept = (smtp_channel.secrets, smtp_channel.config["host"])
    client.post(url, {**keep, "settings-password": "new-pass-91"})
    smtp_channel.refresh_from_db()

    assert kept == ({"password": SMTP_PASSWORD}, "smtp.acme.test")
    assert smtp_channel.secrets == {"password": "new-pass-91"}


def test_one_default_per_type_and_the_active_toggle(workspace, owner, smtp_channel, client_for):
    server = ChannelFactory(workspace=workspace, name="Email", is_default=True)
    data = {**SMTP_POST, "is_default": "on", "is_active": "on", "rate_per_second": ""}

    client_for(owner).post(reverse("channels:edit", args=[smtp_channel.pk]), data)

    server.refresh_from_db()
    smtp_channel.refresh_from_db()
    assert (smtp_channel.is_default, server.is_default) == (True, False)
    assert smtp_channel.rate_per_second is None
    assert outbox.default_channel(workspace, ChannelType.EMAIL) == smtp_channel
    client_for(owner).post(
        reverse("channels:edit", args=[smtp_channel.pk]), {**data, "is_active": ""}
    )
    smtp_channel.refresh_from_db()
    assert smtp_channel.is_active is False
    assert outbox.default_channel(workspace, ChannelType.EMAIL) == server


@pytest.mark.parametrize("person", ["marketer", "analyst"])
def test_only_owners_add_change_or_delete_channels(
    person, workspace, smtp_channel, request, client_for
):
    client = client_for(request.getfixturevalue(person))
    edit = reverse("channels:edit", args=[smtp_channel.pk])

    page = client.get(edit)
    assert page.status_code == 200 and "<fieldset disabled>" in page.content.decode()
    assert SMTP_PASSWORD not in page.content.decode()
    assert client.get(reverse("channels:create"), {"provider": "smtp"}).status_code == 403
    assert client.post(reverse("channels:create"), {**SMTP_POST, "name": "X"}).status_code == 403
    assert client.post(edit, {**SMTP_POST, "name": "Hacked"}).status_code == 403
    assert client.post(reverse("channels:delete", args=[smtp_channel.pk])).status_code == 403

    smtp_channel.refresh_from_db()
    assert smtp_channel.name == "Our mail server"
    assert list(Channel.objects.for_workspace(workspace).values_list("name", flat=True)) == [
        "Our mail server"
    ]


def test_outsider_gets_404_for_another_workspaces_channel(
    workspace, outsider, smtp_channel, client_for
):
    client = client_for(outsider)
    edit = reverse("channels:edit", args=[smtp_channel.pk])

    assert client.get(edit).status_code == 404
    assert client.post(edit, {**SMTP_POST, "name": "Hacked"}).status_code == 404
    assert client.post(reverse("channels:delete", args=[smtp_channel.pk])).status_code == 404
    smtp_channel.refresh_from_db()
    assert smtp_channel.name == "Our mail server"
    listing = client.get(reverse("channels:list")).content.decode()
    assert "Our mail server" not in listing


# Deleting -------------------------------------------------------------------------------


def test_owner_deletes_a_channel_no_message_went_through(
    workspace, owner, smtp_channel, client_for
):
    response = client_for(owner).post(reverse("channels:delete", args=[smtp_channel.pk]))

    assert response.status_code == 302
    assert not Channel.objects.filter(pk=smtp_channel.pk).exists()


def test_a_channel_messages_went_through_is_not_deleted(workspace, owner, smtp_channel, client_for):
    contact = ContactFactory(workspace=workspace)
    outbox.queue_message(contact, email_template(workspace), "one", channel=smtp_channel)

    response = client_for(owner).post(
        reverse("channels:delete", args=[smtp_channel.pk]), follow=True
    )

    assert (
        "Our mail server cannot be deleted: 1 message went through it. Deactivate it instead."
        in response.content.decode()
    )
    assert Channel.objects.filter(pk=smtp_channel.pk).exists()
    assert Message.objects.count() == 1


# The delivery policy --------------------------------------------------------------------


def test_owner_sets_the_delivery_policy(workspace, owner, client_for):
    data = {
        "max_per_day": "2",
        "max_per_week": "5",
        "over_limit": "drop",
        "quiet_hours_start": "21:00",
        "quiet_hours_end": "08:00",
    }

    response = client_for(owner).post(reverse("channels:list"), data)

    assert response.status_code == 302
    policy = DeliveryPolicy.objects.get(workspace=workspace)
    assert (policy.max_per_day, policy.max_per_week, policy.over_limit) == (2, 5, "drop")
    assert policy.quiet_hours_start.hour == 21 and policy.quiet_hours_end.hour == 8
    assert policy.require_opt_in is False  # unticked
    page = client_for(owner).get(reverse("channels:list")).content.decode()
    assert 'value="21:00"' in page


def test_a_policy_with_problems_is_not_saved(workspace, owner, client_for):
    data = {
        "max_per_day": "5",
        "max_per_week": "2",
        "over_limit": "defer",
        "quiet_hours_start": "21:00",
    }

    content = client_for(owner).post(reverse("channels:list"), data).content.decode()

    assert "Give quiet hours both a start and an end, or neither." in content
    assert "A week allows at least as many as a day." in content
    assert not DeliveryPolicy.objects.exists()


@pytest.mark.parametrize("person", ["marketer", "analyst", "outsider"])
def test_only_the_workspaces_owners_set_its_policy(person, workspace, request, client_for):
    client = client_for(request.getfixturevalue(person))

    response = client.post(reverse("channels:list"), {"max_per_day": "1", "over_limit": "drop"})

    assert not DeliveryPolicy.objects.filter(workspace=workspace).exists()
    if person == "outsider":  # an owner of their own workspace: only that one changes
        assert response.status_code == 302
        assert DeliveryPolicy.objects.get().workspace.name == "Other Brand"
    else:
        assert response.status_code == 403
