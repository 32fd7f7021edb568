"""Every view and endpoint: an outsider sees nothing of another workspace, and an
analyst (or a marketer, where owners only may act) changes nothing."""

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from apps.accounts import services
from apps.accounts.choices import Role
from apps.accounts.models import ApiKey, Membership, Workspace

# Pages that work inside the current workspace: reachable by any member, and for an
# outsider they show the outsider's own workspace, never Acme's.
WORKSPACE_PAGES = [
    "dashboard",
    "contacts:list",
    "segments",
    "journeys",
    "templates",
    "reports",
    "accounts:workspace_settings",
    "accounts:member_list",
    "accounts:api_key_list",
]
# Views addressing one row of a workspace by its id or slug, and what they change.
OBJECT_VIEWS = [
    "accounts:member_role",
    "accounts:member_remove",
    "accounts:api_key_revoke",
    "accounts:switch_workspace",
]
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
]
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


def all_url_names(resolver=None, namespace=""):
    resolver = resolver or get_resolver()
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from all_url_names(pattern, inner)
        elif isinstance(pattern, URLPattern) and pattern.name:
            yield namespace + pattern.name


def test_every_url_is_covered_by_an_access_test():
    covered = set(WORKSPACE_PAGES) | set(OBJECT_VIEWS) | set(API_ENDPOINTS) | PUBLIC
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
    }


def object_url(name, acme):
    target = {
        "accounts:member_role": acme["marketer_membership"].pk,
        "accounts:member_remove": acme["marketer_membership"].pk,
        "accounts:api_key_revoke": acme["api_key"].pk,
    }
    if name == "accounts:switch_workspace":
        return reverse(name, args=[acme["workspace"].slug])
    return reverse(name, args=[target[name]])


def acme_state(acme):
    """Everything the change views could touch, to compare before and after."""
    workspace = Workspace.objects.get(pk=acme["workspace"].pk)
    return {
        "workspace": (workspace.name, workspace.timezone, workspace.default_from_email),
        "memberships": sorted(
            Membership.objects.for_workspace(workspace).values_list("user__email", "role")
        ),
        "keys": sorted(ApiKey.objects.for_workspace(workspace).values_list("name", "revoked_at")),
    }


CHANGE_POSTS = {
    "accounts:workspace_settings": {"name": "Hacked", "timezone": "UTC"},
    "accounts:member_list": {"email": "intruder@evil.test", "role": Role.OWNER},
    "accounts:api_key_list": {"name": "stolen", "scopes": ["read"]},
    "accounts:member_role": {"role": Role.OWNER},
    "accounts:member_remove": {},
    "accounts:api_key_revoke": {},
}


@pytest.mark.parametrize("name", OBJECT_VIEWS)
def test_outsider_gets_404_from_views_addressing_another_workspace(
    name, acme, outsider, client_for
):
    before = acme_state(acme)
    response = client_for(outsider).post(object_url(name, acme), CHANGE_POSTS.get(name, {}))
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


@pytest.mark.parametrize("name", WORKSPACE_PAGES)
def test_anonymous_visitor_is_sent_to_sign_in(name, client, db):
    response = client.get(reverse(name))
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


@pytest.mark.parametrize("name", list(CHANGE_POSTS))
@pytest.mark.parametrize("person", ["analyst", "marketer"])
def test_only_owners_change_settings_members_and_keys(name, person, acme, request, client_for):
    user = request.getfixturevalue(person)
    url = object_url(name, acme) if name in OBJECT_VIEWS else reverse(name)
    before = acme_state(acme)
    response = client_for(user).post(url, CHANGE_POSTS[name])
    assert response.status_code == 403
    assert acme_state(acme) == before


def test_owner_can_make_the_same_changes(acme, owner, client_for):
    """The forbidden posts above are real changes: an owner's go through."""
    client = client_for(owner)
    for name, data in CHANGE_POSTS.items():
        if name == "accounts:member_remove":
            continue  # would remove the marketer whose role is changed
        url = object_url(name, acme) if name in OBJECT_VIEWS else reverse(name)
        assert client.post(url, data).status_code in (200, 302), name
    state = acme_state(acme)
    assert state["workspace"][0] == "Hacked"
    assert ("intruder@evil.test", Role.OWNER) in state["memberships"]
    assert ("marketer@acme.test", Role.OWNER) in state["memberships"]
    assert {name for name, _revoked in state["keys"]} == {"Acme site", "stolen"}
    assert all(revoked for name, revoked in state["keys"] if name == "Acme site")


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
