from django.core.management import call_command

from apps.accounts import services
from apps.accounts.choices import Role
from apps.accounts.models import Membership, User, Workspace


def test_first_run_creates_the_demo_workspace_and_an_owner_with_a_generated_password(db):
    result = services.ensure_first_run(None, None)
    assert result.workspace.slug == "demo"
    assert result.owner.email == "admin@example.com"
    assert result.owner.is_superuser
    assert result.password
    assert result.owner.check_password(result.password)
    assert Membership.objects.get(user=result.owner).role == Role.OWNER


def test_first_run_uses_the_given_login_and_is_idempotent(db):
    first = services.ensure_first_run("Boss@Shop.test", "s3cret-enough-pw")
    assert first.password is None
    assert first.owner.check_password("s3cret-enough-pw")
    again = services.ensure_first_run("boss@shop.test", "s3cret-enough-pw")
    assert again.owner == first.owner
    assert (User.objects.count(), Workspace.objects.count()) == (1, 1)


def test_command_prints_the_password_once_and_keeps_it_in_var(db, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ORCHESTRA_VAR_DIR", str(tmp_path))
    monkeypatch.delenv("ORCHESTRA_ADMIN_EMAIL", raising=False)
    monkeypatch.delenv("ORCHESTRA_ADMIN_PASSWORD", raising=False)
    call_command("first_run")
    first = capsys.readouterr().out
    password = (tmp_path / "admin-password").read_text().strip()
    assert f"password: {password}" in first
    assert User.objects.get(email="admin@example.com").check_password(password)
    call_command("first_run")
    second = capsys.readouterr().out
    assert password not in second
    assert "admin-password" in second
