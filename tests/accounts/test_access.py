"""Every view and endpoint: an outsider sees nothing of another workspace, and an
analyst (or a marketer, where owners only may act) changes nothing."""

import json

import pytest
from anymail import urls as anymail_urls
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from apps.accounts import services
from apps.accounts.choices import Role
from apps.accounts.models import ApiKey, Membership, Workspace
from apps.channels.models import Channel, DeliveryPolicy, Message, Template
from apps.contacts.models import (
    ConsentChange,
    Contact,
    ContactImport,
    ContactList,
    ListMembership,
)
from apps.journeys.models import Journey
from apps.journeys.services import journeys
from apps.segments.models import Segment
from apps.webhooks.models import WebhookDelivery, WebhookSubscription
from tests.channels.factories import ChannelFactory, email_template
from tests.personalization.factories import ContentSlotFactory, VariantFactory

# Pages that work inside the current workspace: reachable by any member, and for an
# outsider they show the outsider's own workspace, never Acme's.
WORKSPACE_PAGES = [
    "dashboard",
    "contacts:list",
    "contacts:lists",
    "contacts:import_list",
    "contacts:import_start",
    "segments:list",
    "segments:create",
    # content slots; role tests: tests/personalization/test_views.py
    "personalization:list",
    "personalization:create",
    "personalization:demo",
    "journeys:list",
    "journeys:new",
    "templates:list",
    "templates:create",
    "channels:list",
    "channels:create",
    "reporting:index",
    "accounts:workspace_settings",
    "accounts:member_list",
    "accounts:api_key_list",
    # outbound webhooks; role tests: tests/webhooks/test_views.py
    "webhooks:list",
    "webhooks:create",
    "messages:list",
    "reporting:journeys",
    "reporting:attribution",
    "reporting:insight",
]
# Views addressing one row of a workspace by its id or slug, and what they change.
OBJECT_VIEWS = [
    "accounts:member_role",
    "accounts:member_remove",
    "accounts:api_key_revoke",
    "accounts:switch_workspace",
    # the contact list's bulk action addresses a list by the id it posts
    "contacts:bulk_add_to_list",
    "contacts:detail",
    "contacts:edit",
    "contacts:consent",
    "contacts:list_membership",
    "contacts:timeline",
    "contacts:export_json",
    "contacts:erase",
    # CSV import; role tests: tests/contacts/test_import.py
    "contacts:import_detail",
    "contacts:import_mapping",
    "contacts:import_progress",
    "contacts:import_errors",
    "segments:detail",
    "segments:edit",
    "segments:size_csv",
    "segments:refresh",
    "segments:delete",
    # content slots; analyst tests: tests/personalization/test_views.py
    "personalization:detail",
    "personalization:edit",
    "personalization:delete",
    "personalization:preview",
    "personalization:variant_create",
    "personalization:variant_edit",
    "personalization:variant_delete",
    # more outsider tests: tests/channels/test_template_views.py, test_channel_settings.py
    "templates:edit",
    "templates:version",
    "templates:delete",
    "channels:edit",
    "channels:delete",
    # more outsider tests: tests/channels/test_messages_views.py
    "messages:detail",
    # outbound webhooks; more outsider and analyst tests: tests/webhooks/test_views.py
    "webhooks:detail",
    "webhooks:rotate_secret",
    "webhooks:test",
    "webhooks:delete",
    "webhooks:delivery",
    "webhooks:replay",
    # the journey builder; more outsider and analyst tests: tests/journeys/test_builder_views.py
    "journeys:builder",
    "journeys:node_form",
    "journeys:settings_form",
    "journeys:test",
    "journeys:forecast",
    "journeys:versions",
    "journeys:version",
    "journeys:restore",
    "journeys:steps",
]
# Of OBJECT_VIEWS, those that only read: an outsider asks for them with GET.
OBJECT_READS = {"contacts:detail", "contacts:timeline", "contacts:export_json"}
OBJECT_READS |= {"contacts:import_detail", "contacts:import_progress", "contacts:import_errors"}
OBJECT_READS |= {"segments:detail", "segments:size_csv"}
OBJECT_READS |= {"personalization:detail", "personalization:preview"}
OBJECT_READS |= {"messages:detail"}
OBJECT_READS |= {"webhooks:detail", "webhooks:delivery"}
OBJECT_READS |= {"templates:version"}
OBJECT_READS |= {"journeys:builder", "journeys:versions", "journeys:version", "journeys:test"}
# Downloads of the current workspace's data (not pages, so not WORKSPACE_PAGES);
# outsider, analyst and anonymous tests: tests/contacts/test_export.py
WORKSPACE_DOWNLOADS = ["contacts:export"]
# outsider tests: tests/reporting/test_dashboard.py
WORKSPACE_DOWNLOADS += ["reporting:export", "reporting:attribution_export"]
# A journey's report and its CSVs; outsider tests: tests/reporting/test_journey_report.py
REPORT_VIEWS = ["reporting:journey", "reporting:journey_export"]
# Customer insight: its CSVs, an RFM cell's customers (a cell or group of the current
# workspace's grid, named in the path), the refresh status it polls, "Recompute now" and
# "Save as segment"; outsider and analyst tests: tests/reporting/test_insight_views.py
REPORT_VIEWS += ["reporting:insight_export", "reporting:insight_rfm_customers"]
REPORT_VIEWS += ["reporting:insight_status", "reporting:insight_recompute"]
REPORT_VIEWS += ["reporting:insight_save_segment"]
# Posts that only answer about the current workspace (no row addressed, nothing changed);
# analysts are refused them with CHANGE_POSTS, the outsider test is below.
WORKSPACE_POSTS = ["segments:preview"]
# outsider tests for these: tests/channels/test_template_views.py
WORKSPACE_POSTS += ["templates:preview", "templates:send_test"]
# The editor's contact picker (a GET answering options of the current workspace's
# contacts); outsider test: tests/channels/test_template_views.py
WORKSPACE_PARTIALS = ["templates:contact_search"]
API_ENDPOINTS = [
    "api:workspace",
    "api:membership-list",
    "api:membership-detail",
    # outsider tests for these: tests/contacts/test_api_access.py
    "api:contact-list",
    "api:contact-detail",
    "api:contact-bulk",
    "api:contact-export",
    "api:contact-set-consent",
    "api:event-list",
    "api:contactlist-list",
    "api:contactlist-detail",
    "api:contactlist-members",
    # outsider tests for these: tests/segments/test_api.py
    "api:segment-list",
    "api:segment-detail",
    "api:segment-members",
    "api:segment-preview",
    # ingest keys only (no sessions); outsider tests: tests/personalization/test_api.py
    "api:personalize",
    "api:personalize-click",
    # outsider tests for these: tests/journeys/test_api.py
    "api:journey-list",
    "api:journey-detail",
    "api:journey-publish",
    "api:journey-pause",
    "api:journey-resume",
    "api:journey-archive",
    "api:journey-enroll",
    "api:journey-stats",
    "api:journey-versions",
    "api:journey-restore",
    "api:journey-simulate",
    # ingest keys only (no sessions); outsider tests: tests/channels/test_push.py
    "api:pushsubscription-list",
    "api:pushsubscription-vapid-key",
    # outsider tests for these: tests/channels/test_templates_api.py
    "api:template-list",
    "api:template-detail",
    "api:template-versions",
    "api:template-preview",
    "api:channel-list",
    "api:channel-detail",
    # outsider tests for these: tests/channels/test_messages_api.py
    "api:message-list",
    "api:message-detail",
    # outsider tests: tests/reporting/test_dashboard.py, test_attribution.py, test_journey_report.py
    "api:report-overview",
    "api:report-attribution",
    "api:report-journey",
    # outsider, scope and role tests for these: tests/webhooks/test_api.py
    "api:webhook-list",
    "api:webhook-detail",
    "api:webhook-deliveries",
    "api:webhook-rotate-secret",
    "api:webhook-test",
    "api:webhook-replay",
    # outsider tests: tests/reporting/test_insight_views.py
    "api:report-insight",
]
# Segment-compatible ingest; outsider and scope tests: tests/contacts/test_segment_ingest.py
SEGMENT_ENDPOINTS = [
    "segment-identify",
    "segment-track",
    "segment-page",
    "segment-screen",
    "segment-group",
    "segment-alias",
    "segment-batch",
]
# The same views at the one-letter paths analytics.js posts to (/v1/t, /v1/b, ...).
SEGMENT_ENDPOINTS += [f"{name}-analytics-js" for name in SEGMENT_ENDPOINTS]
# Open to anyone by design: health checks, sign-in and password reset, the API
# description, and the admin (which has its own staff login, tested in test_admin).
PUBLIC = {
    "healthz",
    "readyz",
    "login",
    "logout",
    "password_reset",
    "password_reset_done",
    "password_reset_confirm",
    "password_reset_complete",
    "schema",
    "api-docs",
    "api-redoc",
}
# Reached by a message's recipients, who are not signed in: a signed token names the
# message, and a forged or altered token finds nothing (tests/channels/test_tracking.py).
SIGNED_LINKS = {"tracking:open", "tracking:click", "tracking:unsubscribe"}
# Email services' webhooks (django-anymail): HTTP basic auth with ANYMAIL_WEBHOOK_SECRET or
# the ESP's signature; unauthenticated reports change nothing (tests/channels/test_esp_webhooks.py).
ESP_WEBHOOKS = {f"anymail:{pattern.name}" for pattern in anymail_urls.urlpatterns}
# SMS gateways' delivery receipts: a per-channel token in the URL, or Twilio's signature;
# anything else gets 403 and changes nothing (tests/channels/test_sms.py).
SMS_HOOKS = {"hooks:sms", "hooks:twilio"}


def all_url_names(resolver=None, namespace=""):
    resolver = resolver or get_resolver()
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from all_url_names(pattern, inner)
        elif isinstance(pattern, URLPattern) and pattern.name:
            yield namespace + pattern.name


def test_every_url_is_covered_by_an_access_test():
    covered = (
        set(WORKSPACE_PAGES) | set(OBJECT_VIEWS) | set(API_ENDPOINTS) | set(SEGMENT_ENDPOINTS)
        | set(WORKSPACE_DOWNLOADS) | set(WORKSPACE_POSTS) | set(WORKSPACE_PARTIALS)
        | set(REPORT_VIEWS) | PUBLIC | SIGNED_LINKS
        | ESP_WEBHOOKS | SMS_HOOKS
    )  # fmt: skip
    names = {name for name in all_url_names() if not name.startswith("admin:")}
    assert names - covered == set(), "add the new view to the access tests"


@pytest.fixture
def acme(workspace, marketer, analyst):
    """Acme with an owner, a marketer, an analyst and an API key."""
    api_key, _raw = services.create_api_key(workspace, "Acme site", ["ingest"])
    return {
        "workspace": workspace,
        "api_key": api_key,
        "marketer_membership": Membership.objects.get(user=marketer),
        "contact": Contact.objects.create(
            workspace=workspace, email="ann@acme.test", first_name="Ann", attributes={"plan": "pro"}
        ),
        "erasable_contact": Contact.objects.create(workspace=workspace, email="bo@acme.test"),
        "contact_list": ContactList.objects.create(workspace=workspace, name="VIP", slug="vip"),
        # An uploaded file waiting for its mapping (the file itself is never read here).
        "contact_import": ContactImport.objects.create(
            workspace=workspace,
            file="imports/acme.csv",
            original_name="acme.csv",
            mapping={"encoding": "utf-8", "delimiter": ",", "header": ["Email"]},
            total_rows=1,
        ),
        "segment": Segment.objects.create(
            workspace=workspace,
            name="Pros",
            slug="pros",
            rule={"attr": "plan", "op": "eq", "value": "pro"},
        ),
        "template": email_template(workspace, "welcome"),
        "webhook": WebhookSubscription.objects.create(
            workspace=workspace,
            url="https://hooks.acme.test/in",
            event_types=["*"],
            secret="whsec_acme",
        ),
        "slot": ContentSlotFactory(workspace=workspace, key="home-hero", name="Acme hero"),
        "channel": ChannelFactory(
            workspace=workspace,
            name="Mail server",
            provider="smtp",
            config={"host": "127.0.0.1", "port": 9, "timeout": 1},
            secrets={"password": "pw"},
        ),
        "journey": acme_journey(workspace),
    }


def acme_journey(workspace):
    """A journey of Acme, published once (version 1)."""
    journey = journeys.create_journey(
        workspace,
        {
            "name": "Acme welcome",
            "entry": {"type": "api"},
            "start": "done",
            "nodes": [{"id": "done", "type": "exit"}],
        },
    )
    journeys.publish(journey)
    return journey


def object_url(name, acme):
    target = {
        "accounts:member_role": acme["marketer_membership"].pk,
        "accounts:member_remove": acme["marketer_membership"].pk,
        "accounts:api_key_revoke": acme["api_key"].pk,
    }
    if name == "accounts:switch_workspace":
        return reverse(name, args=[acme["workspace"].slug])
    if name == "contacts:bulk_add_to_list":
        return reverse(name)
    if name == "contacts:erase":
        return reverse(name, args=[acme["erasable_contact"].pk])
    if name.startswith("contacts:import_"):
        return reverse(name, args=[acme["contact_import"].pk])
    if name.startswith("contacts:"):
        return reverse(name, args=[acme["contact"].pk])
    if name.startswith("segments:"):
        return reverse(name, args=[acme["segment"].pk])
    if name.startswith("messages:"):
        return reverse(name, args=[acme_message(acme).pk])
    if name == "templates:version":
        return reverse(name, args=[acme["template"].pk, 1])
    if name.startswith("templates:"):
        return reverse(name, args=[acme["template"].pk])
    if name.startswith("channels:"):
        return reverse(name, args=[acme["channel"].pk])
    if name.startswith("personalization:variant_") and name != "personalization:variant_create":
        variant = VariantFactory(slot=acme["slot"], name="pros")
        return reverse(name, args=[acme["slot"].pk, variant.pk])
    if name.startswith("personalization:"):
        return reverse(name, args=[acme["slot"].pk])
    if name in ("journeys:version", "journeys:restore"):
        return reverse(name, args=[acme["journey"].pk, 1])
    if name.startswith("journeys:"):
        return reverse(name, args=[acme["journey"].pk])
    if name in ("webhooks:delivery", "webhooks:replay"):
        return reverse(name, args=[acme["webhook"].pk, acme_delivery(acme).pk])
    if name.startswith("webhooks:"):
        return reverse(name, args=[acme["webhook"].pk])
    return reverse(name, args=[target[name]])


def acme_message(acme):
    """A message sent to Ann (its page shows her address, its template and its history)."""
    workspace = acme["workspace"]
    version = email_template(workspace, "acme-news").versions.get()
    return Message.objects.create(
        workspace=workspace, contact=acme["contact"], channel=ChannelFactory(workspace=workspace),
        template_version=version, idempotency_key="acme-news", recipient="ann@acme.test",
        subject="Acme news", status="sent",
    )  # fmt: skip


def acme_delivery(acme):
    """A delivery to Acme's webhook, not sent yet (a replay would send it)."""
    return WebhookDelivery.objects.create(
        workspace=acme["workspace"],
        subscription=acme["webhook"],
        event_id="evt_acme",
        event_type="conversion",
        payload={"id": "evt_acme"},
    )


def acme_state(acme):
    """Everything the change views could touch, to compare before and after."""
    workspace = Workspace.objects.get(pk=acme["workspace"].pk)
    return {
        "workspace": (workspace.name, workspace.timezone, workspace.default_from_email),
        "memberships": sorted(
            Membership.objects.for_workspace(workspace).values_list("user__email", "role")
        ),
        "keys": sorted(ApiKey.objects.for_workspace(workspace).values_list("name", "revoked_at")),
        "contacts": list(
            Contact.objects.for_workspace(workspace)
            .order_by("pk")
            .values_list("email", "first_name", "attributes")
        ),
        "consent_changes": ConsentChange.objects.for_workspace(workspace).count(),
        "lists": sorted(
            ContactList.objects.for_workspace(workspace).values_list("name", flat=True)
        ),
        "list_members": ListMembership.objects.for_workspace(workspace).count(),
        "segments": list(
            Segment.objects.for_workspace(workspace)
            .order_by("pk")
            .values_list("name", "rule", "refreshed_at")
        ),
        # (acme_message makes its own template and channel on demand: those are left out)
        "templates": list(
            Template.objects.for_workspace(workspace)
            .exclude(versions__messages__isnull=False)
            .order_by("pk")
            .values_list("name", "version")
        ),
        "channels": list(
            Channel.objects.for_workspace(workspace)
            .exclude(messages__isnull=False)
            .order_by("pk")
            .values_list("name", "config", "secrets", "is_active")
        ),
        "policy": list(DeliveryPolicy.objects.filter(workspace=workspace).values()),
        "webhooks": list(
            WebhookSubscription.objects.for_workspace(workspace)
            .order_by("pk")
            .values_list("url", "event_types", "secret", "is_active")
        ),
        "journeys": list(
            Journey.objects.for_workspace(workspace)
            .order_by("pk")
            .values_list("name", "status", "draft")
        ),
    }


CHANGE_POSTS = {
    "accounts:workspace_settings": {"name": "Hacked", "timezone": "UTC"},
    "accounts:member_list": {"email": "intruder@evil.test", "role": Role.OWNER},
    "accounts:api_key_list": {"name": "stolen", "scopes": ["read"]},
    "accounts:member_role": {"role": Role.OWNER},
    "accounts:member_remove": {},
    "accounts:api_key_revoke": {},
    "contacts:lists": {"name": "Stolen"},
    "contacts:bulk_add_to_list": lambda acme: {
        "contact_list": acme["contact_list"].pk,
        "contact": [acme["contact"].pk],
    },
    "contacts:edit": {
        "email": "ann@acme.test",
        "first_name": "Hacked",
        "attributes-TOTAL_FORMS": "0",
        "attributes-INITIAL_FORMS": "0",
    },
    "contacts:consent": {"channel": "email", "status": "unsubscribed"},
    "contacts:list_membership": lambda acme: {
        "contact_list": acme["contact_list"].pk,
        "action": "add",
    },
    "contacts:erase": {"confirm": "bo@acme.test"},
    "segments:create": {"name": "Stolen segment", "rule": '{"all": []}'},
    "segments:preview": {"rule": '{"all": []}'},
    "segments:edit": {"name": "Hacked segment", "rule": '{"all": []}'},
    "segments:refresh": {},
    "segments:delete": {},
    "templates:create": {"name": "Stolen template", "channel": "sms", "body": "Hi"},
    "templates:preview": {"channel": "sms", "body": "Hi {{ contact.first_name }}"},
    "templates:send_test": {"channel": "sms", "body": "Hi", "recipient": "+4520123456"},
    "templates:edit": {"name": "Hacked template", "channel": "sms", "body": "Hacked"},
    "templates:delete": {},
    "channels:list": {"max_per_day": "1", "over_limit": "drop"},
    "channels:create": {"provider": "server", "name": "Stolen channel", "is_active": "on"},
    "channels:edit": {
        "name": "Hacked channel",
        "is_active": "on",
        "settings-host": "evil.test",
        "settings-port": "25",
        "settings-timeout": "5",
    },
    "channels:delete": {},
    "webhooks:create": {"url": "https://stolen.test/hooks", "event_types": ["*"]},
    "webhooks:detail": {"url": "https://hacked.test/hooks", "event_types": ["*"]},
    "journeys:new": {"starter": "blank"},
    "journeys:node_form": {"node": json.dumps({"id": "done", "type": "exit"})},
    "journeys:settings_form": {"settings": "{}"},
    "journeys:restore": {},
    "journeys:steps": {"action": "save"},
}
# Of CHANGE_POSTS, those marketers may make too (analysts still may not).
EDITOR_POSTS = {
    name
    for name in CHANGE_POSTS
    if name.startswith(("contacts:", "segments:", "templates:", "journeys:"))
}
# Owners and marketers change webhooks (tests/webhooks/test_views.py).
EDITOR_POSTS |= {"webhooks:create", "webhooks:detail"}


def post_data(name, acme):
    data = CHANGE_POSTS.get(name, {})
    return data(acme) if callable(data) else data


@pytest.mark.parametrize("name", OBJECT_VIEWS)
def test_outsider_gets_404_from_views_addressing_another_workspace(
    name, acme, outsider, client_for
):
    before = acme_state(acme)
    client = client_for(outsider)
    if name in OBJECT_READS:
        response = client.get(object_url(name, acme))
    else:
        response = client.post(object_url(name, acme), post_data(name, acme))
    assert response.status_code == 404
    assert acme_state(acme) == before


@pytest.mark.parametrize("name", WORKSPACE_PAGES)
def test_outsider_pages_show_only_their_own_workspace(name, acme, outsider, client_for):
    response = client_for(outsider).get(reverse(name))
    assert response.status_code == 200
    content = response.content.decode()
    assert "Other Brand" in content
    assert "Acme" not in content
    assert "marketer@acme.test" not in content
    assert acme["api_key"].prefix not in content
    assert "ann@acme.test" not in content


@pytest.mark.parametrize("name", WORKSPACE_PAGES)
def test_anonymous_visitor_is_sent_to_sign_in(name, client, db):
    response = client.get(reverse(name))
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


@pytest.mark.parametrize("name", [name for name in CHANGE_POSTS if name not in EDITOR_POSTS])
@pytest.mark.parametrize("person", ["analyst", "marketer"])
def test_only_owners_change_settings_members_and_keys(name, person, acme, request, client_for):
    user = request.getfixturevalue(person)
    url = object_url(name, acme) if name in OBJECT_VIEWS else reverse(name)
    before = acme_state(acme)
    response = client_for(user).post(url, post_data(name, acme))
    assert response.status_code == 403
    assert acme_state(acme) == before


@pytest.mark.parametrize("name", sorted(EDITOR_POSTS))
def test_analyst_cannot_change_contacts_or_lists(name, acme, analyst, client_for):
    url = object_url(name, acme) if name in OBJECT_VIEWS else reverse(name)
    before = acme_state(acme)
    response = client_for(analyst).post(url, post_data(name, acme))
    assert response.status_code == 403
    assert acme_state(acme) == before


def test_owner_can_make_the_same_changes(acme, owner, client_for):
    """The forbidden posts above are real changes: an owner's go through."""
    client = client_for(owner)
    for name in CHANGE_POSTS:
        if name == "accounts:member_remove":
            continue  # would remove the marketer whose role is changed
        url = object_url(name, acme) if name in OBJECT_VIEWS else reverse(name)
        assert client.post(url, post_data(name, acme)).status_code in (200, 302), name
    state = acme_state(acme)
    assert state["workspace"][0] == "Hacked"
    assert ("intruder@evil.test", Role.OWNER) in state["memberships"]
    assert ("marketer@acme.test", Role.OWNER) in state["memberships"]
    assert {name for name, _revoked in state["keys"]} == {"Acme site", "stolen"}
    assert all(revoked for name, revoked in state["keys"] if name == "Acme site")
    assert state["contacts"] == [("ann@acme.test", "Hacked", {})]
    assert state["lists"] == ["Stolen", "VIP"]
    assert (state["consent_changes"], state["list_members"]) == (1, 1)
    assert [name for name, _rule, _refreshed in state["segments"]] == ["Stolen segment"]


def test_outsider_preview_counts_only_their_own_workspace(acme, outsider, client_for):
    client = client_for(outsider)
    pros = {"attr": "plan", "op": "eq", "value": "pro"}
    response = client.post(reverse("segments:preview"), {"rule": json.dumps(pros)})
    assert response.status_code == 200
    assert 'data-count="0"' in response.content.decode()
    acme_refs = {"any": [{"segment": "pros"}, {"list": "vip"}]}
    content = client.post(reverse("segments:preview"), {"rule": json.dumps(acme_refs)})
    content = content.content.decode()
    assert "there is no segment &#x27;pros&#x27;" in content
    assert "there is no list &#x27;vip&#x27;" in content
    assert "ann@acme.test" not in content


def test_outsider_cannot_switch_into_another_workspace(acme, outsider, client_for):
    client = client_for(outsider)
    response = client.post(reverse("accounts:switch_workspace", args=["acme"]))
    assert response.status_code == 404
    assert "Other Brand" in client.get(reverse("dashboard")).content.decode()


class TestApi:
    def test_outsider_key_gets_404_for_another_workspaces_member(
        self, acme, other_workspace, api_key_for
    ):
        api = api_key_for(other_workspace)
        pk = acme["marketer_membership"].pk
        response = api.get(reverse("api:membership-detail", args=[pk]))
        assert response.status_code == 404
        assert response.json() == {"detail": "Not found."}

    def test_outsider_key_lists_only_its_own_workspace(self, acme, other_workspace, api_key_for):
        api = api_key_for(other_workspace)
        emails = [m["email"] for m in api.get(reverse("api:membership-list")).json()["results"]]
        assert len(emails) == 1
        assert not any(email.endswith("@acme.test") for email in emails)
        assert api.get(reverse("api:workspace")).json()["slug"] == "other"

    def test_outsider_session_gets_404_for_another_workspaces_member(
        self, acme, outsider, client_for
    ):
        pk = acme["marketer_membership"].pk
        response = client_for(outsider).get(reverse("api:membership-detail", args=[pk]))
        assert response.status_code == 404

    def test_member_session_reads_own_workspace(self, acme, analyst, client_for):
        response = client_for(analyst).get(reverse("api:membership-list"))
        assert response.status_code == 200
        assert len(response.json()["results"]) == 3

    @pytest.mark.parametrize("name", ["api:workspace", "api:membership-list"])
    def test_no_credentials_get_401_or_403(self, name, client, db):
        response = client.get(reverse(name))
        assert response.status_code in (401, 403)
        assert "detail" in response.json()

    def test_ingest_only_key_cannot_read(self, acme, api_key_for):
        api = api_key_for(acme["workspace"], scopes=["ingest"])
        response = api.get(reverse("api:membership-list"))
        assert response.status_code == 403

    def test_read_key_reads(self, acme, api_key_for):
        api = api_key_for(acme["workspace"], scopes=["read"])
        response = api.get(reverse("api:membership-list"))
        assert response.status_code == 200
        assert {m["email"] for m in response.json()["results"]} == {
            "owner@acme.test",
            "marketer@acme.test",
            "analyst@acme.test",
        }

    def test_read_only_endpoints_refuse_writes(self, acme, api_key_for):
        api = api_key_for(acme["workspace"], scopes=["read", "write"])
        response = api.post(reverse("api:membership-list"), {"role": "owner"}, format="json")
        assert response.status_code == 405
        assert Membership.objects.for_workspace(acme["workspace"]).count() == 3
