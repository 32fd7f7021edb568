import datetime as dt

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from apps.accounts import services
from apps.accounts.models import ApiKey, hash_api_key


def test_key_is_stored_hashed_with_a_display_prefix(workspace):
    api_key, raw = services.create_api_key(workspace, "Website", ["ingest", "read"])
    api_key.refresh_from_db()
    assert raw.startswith("orc_")
    assert len(raw) > 40
    assert api_key.hashed_key == hash_api_key(raw)
    assert raw not in api_key.hashed_key
    assert raw.startswith(api_key.prefix)
    assert len(api_key.prefix) == 12
    assert api_key.scopes == ["ingest", "read"]


def test_unknown_or_missing_scopes_are_refused(workspace):
    with pytest.raises(ValueError, match="Scopes must be"):
        services.create_api_key(workspace, "bad", ["admin"])
    with pytest.raises(ValueError):
        services.create_api_key(workspace, "none", [])
    assert ApiKey.objects.count() == 0


def test_bearer_key_authenticates_and_records_last_use(workspace, api_key_for):
    api = api_key_for(workspace, ["read"])
    response = api.get(reverse("api:workspace"))
    assert response.status_code == 200
    assert response.json()["slug"] == "acme"
    assert ApiKey.objects.get().last_used_at is not None


def test_last_use_is_written_at_most_once_a_minute(workspace, api_key_for):
    api = api_key_for(workspace, ["read"])
    api.get(reverse("api:workspace"))
    first = ApiKey.objects.get().last_used_at
    api.get(reverse("api:workspace"))
    assert ApiKey.objects.get().last_used_at == first
    ApiKey.objects.update(last_used_at=first - dt.timedelta(minutes=2))
    services.forget_api_keys()  # as when the process's memory of the key runs out
    api.get(reverse("api:workspace"))
    assert ApiKey.objects.get().last_used_at > first


def test_a_key_revoked_while_in_use_is_refused_at_once_by_this_process(workspace, api_key_for):
    api = api_key_for(workspace, ["read"])
    assert api.get(reverse("api:workspace")).status_code == 200
    ApiKey.objects.get().revoke()
    assert api.get(reverse("api:workspace")).status_code == 401


def test_other_processes_forget_a_revoked_key_within_seconds(workspace, api_key_for, monkeypatch):
    api = api_key_for(workspace, ["read"])
    assert api.get(reverse("api:workspace")).status_code == 200
    # Revoked elsewhere (no signal reaches this process): still remembered for a moment...
    ApiKey.objects.update(revoked_at=timezone.now())
    assert api.get(reverse("api:workspace")).status_code == 200
    # ...and refused once API_KEY_CACHE_SECONDS have passed.
    later = services.time.monotonic() + services.API_KEY_CACHE_SECONDS + 1
    monkeypatch.setattr(services.time, "monotonic", lambda: later)
    assert api.get(reverse("api:workspace")).status_code == 401


def test_revoked_key_is_refused(workspace, api_key_for):
    api = api_key_for(workspace, ["read"])
    ApiKey.objects.get().revoke()
    response = api.get(reverse("api:workspace"))
    assert response.status_code == 401
    assert response.json() == {"detail": "The API key is unknown or revoked."}
    assert response["WWW-Authenticate"] == "Bearer"


def test_unknown_key_and_empty_bearer_are_refused(db, client):
    response = client.get(reverse("api:workspace"), HTTP_AUTHORIZATION="Bearer orc_nope")
    assert response.status_code == 401
    response = client.get(reverse("api:workspace"), HTTP_AUTHORIZATION="Bearer ")
    assert response.status_code == 401
    assert "no API key" in response.json()["detail"]


def test_key_wins_over_a_session_of_another_workspace(
    workspace, outsider, other_workspace, client_for
):
    _key, raw = services.create_api_key(workspace, "Acme", ["read"])
    client = client_for(outsider)
    response = client.get(reverse("api:workspace"), HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.json()["slug"] == "acme"


def test_management_command_prints_just_the_key(workspace, capsys):
    call_command("create_api_key", "--workspace", "acme", "--scopes", "ingest,read,write")
    printed = capsys.readouterr().out.strip()
    assert printed.startswith("orc_")
    assert "\n" not in printed
    api_key = ApiKey.objects.get()
    assert api_key.hashed_key == hash_api_key(printed)
    assert api_key.scopes == ["ingest", "read", "write"]


def test_management_command_names_an_unknown_workspace(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="No workspace with the slug 'nope'"):
        call_command("create_api_key", "--workspace", "nope")


def test_owner_creates_a_key_on_the_settings_page_and_sees_it_once(workspace, owner, client_for):
    client = client_for(owner)
    response = client.post(
        reverse("accounts:api_key_list"), {"name": "Website", "scopes": ["ingest", "read"]}
    )
    assert response.status_code == 200
    raw = response.context["new_key"]
    assert raw in response.content.decode()
    api_key = ApiKey.objects.get()
    assert api_key.hashed_key == hash_api_key(raw)
    assert api_key.created_by == owner
    later = client.get(reverse("accounts:api_key_list")).content.decode()
    assert raw not in later
    assert api_key.prefix in later


def test_key_form_requires_a_scope(workspace, owner, client_for):
    response = client_for(owner).post(reverse("accounts:api_key_list"), {"name": "Website"})
    assert response.status_code == 200
    assert response.context["form"].errors["scopes"]
    assert ApiKey.objects.count() == 0


def test_owner_revokes_a_key_with_htmx_and_gets_the_row_back(workspace, owner, client_for):
    api_key, _raw = services.create_api_key(workspace, "Website", ["ingest"])
    response = client_for(owner).post(
        reverse("accounts:api_key_revoke", args=[api_key.pk]), HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    assert 'class="revoked"' in response.content.decode()
    api_key.refresh_from_db()
    assert api_key.revoked_at is not None
    assert api_key.revoked_at <= timezone.now()
