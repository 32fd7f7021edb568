import pytest
from django.core.exceptions import ImproperlyConfigured

from orchestra.env import env_bool, env_int, env_list, env_required, env_secret


def test_booleans_are_true_or_false_or_an_error(monkeypatch):
    monkeypatch.setenv("X_FLAG", "true")
    assert env_bool("X_FLAG", False) is True
    monkeypatch.setenv("X_FLAG", "no")
    assert env_bool("X_FLAG", True) is False
    monkeypatch.setenv("X_FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="X_FLAG must be true or false"):
        env_bool("X_FLAG", False)
    monkeypatch.delenv("X_FLAG")
    assert env_bool("X_FLAG", True) is True


def test_integers_and_lists(monkeypatch):
    monkeypatch.setenv("X_PORT", "80x")
    with pytest.raises(ImproperlyConfigured, match="X_PORT must be a whole number"):
        env_int("X_PORT", 1)
    monkeypatch.setenv("X_HOSTS", "a.test, b.test,,")
    assert env_list("X_HOSTS", []) == ["a.test", "b.test"]


def test_secrets_come_from_a_file_and_missing_ones_are_named(monkeypatch, tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("hunter2\n")
    monkeypatch.delenv("X_SECRET", raising=False)
    monkeypatch.setenv("X_SECRET_FILE", str(secret))
    assert env_secret("X_SECRET") == "hunter2"
    monkeypatch.setenv("X_SECRET_FILE", str(tmp_path / "missing"))
    with pytest.raises(ImproperlyConfigured, match="X_SECRET_FILE points to"):
        env_secret("X_SECRET")
    monkeypatch.delenv("X_SECRET_FILE")
    with pytest.raises(ImproperlyConfigured, match="X_SECRET is required"):
        env_required("X_SECRET")
