import pytest
from django.urls import reverse

from tests.conftest import PASSWORD

NAVIGATION = ["Dashboard", "Contacts", "Segments", "Journeys", "Templates", "Reports", "Settings"]


def test_login_page_signs_in_with_email_and_password(owner, workspace, client):
    page = client.get(reverse("login"))
    assert page.status_code == 200
    assert 'name="csrfmiddlewaretoken"' in page.content.decode()
    response = client.post(
        reverse("login"), {"username": "owner@acme.test", "password": PASSWORD}, follow=True
    )
    assert response.redirect_chain[-1][0] == reverse("dashboard")
    content = response.content.decode()
    for item in NAVIGATION:
        assert f">{item}<" in content


def test_wrong_password_is_refused_with_a_message(owner, client):
    response = client.post(reverse("login"), {"username": "owner@acme.test", "password": "x"})
    assert response.status_code == 200
    assert 'role="alert"' in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_logout_needs_post_and_ends_the_session(owner, workspace, client_for):
    client = client_for(owner)
    response = client.post(reverse("logout"))
    assert response.status_code == 302
    assert client.get(reverse("dashboard")).status_code == 302


def test_password_reset_sends_a_link(owner, client, mailoutbox):
    response = client.post(reverse("password_reset"), {"email": "owner@acme.test"})
    assert response.status_code == 302
    assert len(mailoutbox) == 1
    assert "/accounts/reset/" in mailoutbox[0].body


def test_dashboard_empty_state_guides_the_first_steps(owner, workspace, client_for):
    content = client_for(owner).get(reverse("dashboard")).content.decode()
    assert "Welcome to Orchestra" in content
    assert reverse("accounts:api_key_list") in content


@pytest.mark.parametrize(
    "name",
    [
        "reporting:index",
        "reporting:journeys",
        "reporting:attribution",
        "reporting:insight",
        "journeys:list",
    ],
)
def test_sections_mark_their_place_in_the_navigation(name, analyst, client_for):
    response = client_for(analyst).get(reverse(name))
    assert response.status_code == 200
    assert 'aria-current="page"' in response.content.decode()


def test_pages_follow_the_browser_language(owner, workspace, client_for):
    client = client_for(owner)
    response = client.get(reverse("dashboard"), HTTP_ACCEPT_LANGUAGE="da")
    assert response.status_code == 200
    assert response["Content-Language"] == "da"


def test_dashboard_query_count_is_bounded(
    owner, workspace, client_for, django_assert_max_num_queries
):
    """A fixed number, whatever the data: the figures come from rollups (the dashboard's
    own guard with data and a warm cache: tests/reporting/test_dashboard.py)."""
    client = client_for(owner)
    with django_assert_max_num_queries(22):
        client.get(reverse("dashboard"))


def test_vendored_assets_are_served_locally(client, owner, workspace, client_for):
    content = client_for(owner).get(reverse("dashboard")).content.decode()
    assert "/static/vendor/htmx/htmx.min.js" in content
    assert "/static/vendor/pico/pico.min.css" in content
    assert "http://" not in content.split("<body")[0]
    assert "https://" not in content.split("<body")[0]
