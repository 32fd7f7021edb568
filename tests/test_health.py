import pytest
from django.urls import reverse

from orchestra.celery import app as celery_app


def test_healthz_answers_without_touching_anything(client):
    response = client.get(reverse("healthz"))
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_is_green_when_database_and_broker_answer(client, db):
    response = client.get(reverse("readyz"))
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["database"], body["broker"]) == ("ok", "ok", "ok")


@pytest.fixture
def unreachable_broker():
    """Point the broker at a port where nothing listens (a real refused connection)."""
    original = celery_app.conf.broker_url
    celery_app.conf.broker_url = "redis://127.0.0.1:9/0"  # readyz opens a new connection
    yield
    celery_app.conf.broker_url = original


def test_readyz_names_the_broker_when_it_is_down(client, db, unreachable_broker):
    response = client.get(reverse("readyz"))
    assert response.status_code == 503
    body = response.json()
    assert body["failing"] == ["broker"]
    assert body["database"] == "ok"
    assert body["broker"].startswith("error:")
