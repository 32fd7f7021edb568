from django.core import mail
from django.urls import reverse

from apps.accounts import services
from apps.accounts.choices import Role
from apps.accounts.models import Membership, User


def test_owner_adds_a_new_person_who_gets_an_invitation(
    workspace, owner, client_for, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(owner).post(
            reverse("accounts:member_list"), {"email": "New.Person@Acme.test", "role": "analyst"}
        )
    assert response.status_code == 302
    user = User.objects.get(email="new.person@acme.test")
    assert not user.has_usable_password()
    assert Membership.objects.get(user=user).role == Role.ANALYST
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["new.person@acme.test"]
    assert "Acme" in message.subject
    assert "/accounts/reset/" in message.body


def test_invitation_link_lets_the_new_member_choose_a_password_and_sign_in(
    workspace, owner, client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        services.add_member(workspace, "new@acme.test", Role.MARKETER, owner)
    link = next(line for line in mail.outbox[0].body.splitlines() if "/accounts/reset/" in line)
    path = link.split("://", 1)[1].split("/", 1)[1]
    response = client.get("/" + path, follow=True)
    assert response.context["validlink"]
    password = "a long enough Passw0rd"
    response = client.post(
        response.redirect_chain[-1][0],
        {"new_password1": password, "new_password2": password},
    )
    assert response.status_code == 302
    assert client.login(username="new@acme.test", password=password)


def test_adding_an_existing_user_sends_no_invitation(
    workspace, owner, outsider, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        services.add_member(workspace, "outsider@other.test", Role.ANALYST, owner)
    assert mail.outbox == []
    assert set(outsider.workspaces.values_list("slug", flat=True)) == {"acme", "other"}


def test_owner_changes_a_role(workspace, owner, marketer, client_for):
    membership = Membership.objects.get(user=marketer)
    response = client_for(owner).post(
        reverse("accounts:member_role", args=[membership.pk]), {"role": "analyst"}
    )
    assert response.status_code == 302
    membership.refresh_from_db()
    assert membership.role == Role.ANALYST


def test_the_last_owner_cannot_be_demoted_or_removed(workspace, owner, client_for):
    membership = Membership.objects.get(user=owner)
    client = client_for(owner)
    response = client.post(
        reverse("accounts:member_role", args=[membership.pk]), {"role": "analyst"}, follow=True
    )
    assert "at least one owner" in response.content.decode()
    response = client.post(reverse("accounts:member_remove", args=[membership.pk]), follow=True)
    assert "at least one owner" in response.content.decode()
    membership.refresh_from_db()
    assert membership.role == Role.OWNER


def test_owner_removes_a_member(workspace, owner, marketer, client_for):
    membership = Membership.objects.get(user=marketer)
    client_for(owner).post(reverse("accounts:member_remove", args=[membership.pk]))
    assert not Membership.objects.filter(pk=membership.pk).exists()
    assert User.objects.filter(pk=marketer.pk).exists()


def test_a_person_in_two_workspaces_switches_between_them(
    workspace, owner, other_workspace, client_for
):
    Membership.objects.create(workspace=other_workspace, user=owner, role=Role.ANALYST)
    client = client_for(owner)
    page = client.get(reverse("dashboard")).content.decode()
    assert "workspace-switcher" in page
    response = client.post(
        reverse("accounts:switch_workspace", args=["other"]), {"next": "/settings/members/"}
    )
    assert response.status_code == 302
    assert response.url == "/settings/members/"
    response = client.get(reverse("dashboard"))
    assert response.context["workspace"] == other_workspace
    assert response.context["membership"].role == Role.ANALYST


def test_switch_ignores_a_next_url_on_another_site(workspace, owner, client_for):
    response = client_for(owner).post(
        reverse("accounts:switch_workspace", args=["acme"]), {"next": "https://evil.test/"}
    )
    assert response.url == reverse("dashboard")


def test_owner_edits_workspace_settings(workspace, owner, client_for):
    response = client_for(owner).post(
        reverse("accounts:workspace_settings"),
        {
            "name": "Acme Nordic",
            "timezone": "Europe/Stockholm",
            "default_from_name": "Acme",
            "default_from_email": "hello@acme.test",
            "default_reply_to": "",
        },
    )
    assert response.status_code == 302
    workspace.refresh_from_db()
    assert (workspace.name, workspace.timezone) == ("Acme Nordic", "Europe/Stockholm")


def test_workspace_settings_refuse_an_unknown_time_zone(workspace, owner, client_for):
    response = client_for(owner).post(
        reverse("accounts:workspace_settings"), {"name": "Acme", "timezone": "Mars/Olympus"}
    )
    assert response.status_code == 200
    assert "timezone" in response.context["form"].errors
    workspace.refresh_from_db()
    assert workspace.timezone == "Europe/Copenhagen"


def test_user_without_workspace_is_told_so(db, client_for):
    from tests.accounts.factories import UserFactory

    response = client_for(UserFactory()).get(reverse("dashboard"))
    assert response.status_code == 403
    assert "not in any workspace" in response.content.decode()
