import pytest
from django.urls import reverse

from apps.accounts import services
from tests.accounts.factories import UserFactory

ADMIN_MODELS = ["user", "workspace", "membership", "apikey"]


@pytest.fixture
def admin_client_with_data(admin_client, workspace, marketer):
    services.create_api_key(workspace, "Website", ["ingest"])
    return admin_client


@pytest.mark.parametrize("model", ADMIN_MODELS)
def test_every_model_has_a_searchable_filterable_admin_list(
    model, admin_client_with_data, django_assert_max_num_queries
):
    url = reverse(f"admin:accounts_{model}_changelist")
    with django_assert_max_num_queries(15):
        response = admin_client_with_data.get(url, {"q": "acme"})
    assert response.status_code == 200
    changelist = response.context["cl"]
    assert changelist.search_fields
    assert changelist.has_filters
    assert changelist.result_count >= 1


def test_admin_revokes_keys_in_bulk(admin_client, workspace):
    api_key, _raw = services.create_api_key(workspace, "Website", ["ingest"])
    admin_client.post(
        reverse("admin:accounts_apikey_changelist"),
        {"action": "revoke", "_selected_action": [api_key.pk]},
    )
    api_key.refresh_from_db()
    assert api_key.revoked_at is not None


def test_members_who_are_not_staff_cannot_enter_the_admin(workspace, owner, client_for):
    response = client_for(owner).get(reverse("admin:index"))
    assert response.status_code == 302
    assert "/admin/login/" in response.url


def test_admin_never_shows_a_key_hash(admin_client, workspace):
    api_key, _raw = services.create_api_key(workspace, "Website", ["ingest"])
    page = admin_client.get(reverse("admin:accounts_apikey_change", args=[api_key.pk]))
    assert api_key.hashed_key not in page.content.decode()


def test_admin_creates_users_by_email(admin_client, db):
    response = admin_client.post(
        reverse("admin:accounts_user_add"),
        {
            "email": "new@acme.test",
            "password1": "a long Passw0rd!",
            "password2": "a long Passw0rd!",
        },
    )
    assert response.status_code == 302
    assert UserFactory._meta.model.objects.filter(email="new@acme.test").exists()


def project_models():
    from django.apps import apps

    return [
        model
        for config in apps.get_app_configs()
        if config.name.startswith("apps.")
        for model in config.get_models()
    ]


@pytest.mark.parametrize("model", project_models(), ids=lambda m: m._meta.label)
def test_every_project_model_is_in_the_admin_with_search_and_filters(model, admin_client):
    from django.contrib import admin

    model_admin = admin.site._registry.get(model)
    assert model_admin is not None, f"register {model._meta.label} in its app's admin.py"
    assert model_admin.search_fields and model_admin.list_filter
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    assert admin_client.get(url, {"q": "x"}).status_code == 200
