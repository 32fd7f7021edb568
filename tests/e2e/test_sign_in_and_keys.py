"""A new owner in a real browser: sign in, create an API key, revoke it (htmx), switch workspace."""

import pytest
from playwright.sync_api import expect

from apps.accounts.choices import Role
from apps.accounts.models import ApiKey, Membership, hash_api_key
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def sign_in(page, live_server, email):
    page.goto(f"{live_server.url}/")
    expect(page).to_have_url(f"{live_server.url}/accounts/login/?next=/")
    page.fill("input[name=username]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Acme")


def test_owner_signs_in_creates_and_revokes_a_key(page, live_server, owner, workspace):
    sign_in(page, live_server, "owner@acme.test")
    page.click("nav >> text=Settings")
    page.click("text=API keys")
    page.fill("input[name=name]", "Website")
    page.check("input[value=read]")
    page.click("button:has-text('Create key')")

    raw_key = page.locator("#new-key").inner_text().strip()
    api_key = ApiKey.objects.get()
    assert api_key.hashed_key == hash_api_key(raw_key)
    assert api_key.scopes == ["ingest", "read"]

    page.on("dialog", lambda dialog: dialog.accept())
    page.click(f"#api-key-{api_key.pk} button:has-text('Revoke')")
    expect(page.locator(f"#api-key-{api_key.pk}")).to_have_class("revoked")
    api_key.refresh_from_db()
    assert api_key.revoked_at is not None


def test_person_in_two_workspaces_switches_in_the_navigation(
    page, live_server, owner, workspace, other_workspace
):
    Membership.objects.create(workspace=other_workspace, user=owner, role=Role.ANALYST)
    sign_in(page, live_server, "owner@acme.test")
    page.click(".workspace-switcher summary")
    page.click(".workspace-switcher button:has-text('Other Brand')")
    expect(page.locator("h1")).to_have_text("Other Brand")
