"""A journey's webhook step: after the step commits, a worker posts the contact to the URL
(retried with backoff on network errors, 429 and 5xx answers; the Idempotency-Key header
lets the receiver ignore a repeat)."""

import requests
from django.utils import timezone

from apps.channels.services.scope import contact_data, segment_slugs
from apps.journeys.choices import StepOutcome
from apps.journeys.models import Enrollment, JourneyStep

TIMEOUT_SECONDS = 10


def call_webhook(enrollment_id: int, node_id: str) -> int:
    enrollment = (
        Enrollment.objects.select_related("contact", "journey", "version")
        .filter(pk=enrollment_id)
        .first()
    )
    if enrollment is None:
        return 0
    node = enrollment.version.node(node_id) or {}
    contact = enrollment.contact
    body = {
        "journey": {"id": enrollment.journey_id, "name": enrollment.journey.name},
        "step": node_id,
        "contact": contact_data(contact, segment_slugs([contact.pk])[contact.pk]),
        "event": enrollment.entry_event or None,
    }
    visit = enrollment.visits.get(node_id, 1)
    response = requests.post(
        node["url"],
        json=body,
        timeout=TIMEOUT_SECONDS,
        headers={
            "Idempotency-Key": f"journey:{enrollment.pk}:{node_id}:{visit}",
            "User-Agent": "Orchestra-Journeys",
        },
    )
    if response.status_code == 429 or response.status_code >= 500:
        response.raise_for_status()  # retried
    if response.status_code >= 400:
        JourneyStep.objects.create(
            enrollment=enrollment,
            node_id=node_id,
            outcome=StepOutcome.FAILED,
            at=timezone.now(),
            detail=f"HTTP {response.status_code}",
        )
    return response.status_code
