"""End to end with a real worker: an event accepted by the API moves the contact into the
segment, through Redis and a Celery worker process, without any test-side help."""

import time

import pytest
from django.urls import reverse

from apps.segments import services
from apps.segments.models import SegmentMembership

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def wait_for_members(segment, expected: set, timeout: float = 20) -> set:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = set(
            SegmentMembership.objects.filter(segment=segment).values_list(
                "contact__external_id", flat=True
            )
        )
        if found == expected:
            return found
        time.sleep(0.1)
    return found


def test_an_api_event_moves_the_contact_into_the_segment(workspace, api_key_for, celery_worker):
    segment = services.create_segment(
        workspace, "Buyers", {"event": "purchase", "where": [{"prop": "amount", "op": "gt",
                                                               "value": 100}]}
    )  # fmt: skip
    api = api_key_for(workspace, ["ingest"])
    response = api.post(
        reverse("api:event-list"),
        {"events": [
            {"external_id": "big", "name": "purchase", "properties": {"amount": 150}},
            {"external_id": "small", "name": "purchase", "properties": {"amount": 20}},
        ]},
        format="json",
    )  # fmt: skip
    assert response.status_code == 200
    assert wait_for_members(segment, {"big"}) == {"big"}
    log = celery_worker.read_text()
    assert "reevaluate_dirty_contacts_task" in log
