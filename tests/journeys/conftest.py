import pytest

from apps.contacts.choices import ConsentStatus, EventSource
from apps.contacts.services.consent import set_consent
from apps.contacts.services.events import record_events
from apps.journeys.services import journeys
from tests.channels.factories import email_template
from tests.contacts.factories import ContactFactory


@pytest.fixture
def subscribed(workspace):
    """subscribed(**fields): a contact of Acme who consents to email."""

    def make(**fields):
        contact = ContactFactory(workspace=workspace, **fields)
        set_consent(contact, "email", ConsentStatus.SUBSCRIBED, "test")
        return contact

    return make


@pytest.fixture
def templates(workspace):
    """Email templates welcome-1, welcome-2 and reminder."""
    return {
        slug: email_template(workspace, slug, subject=f"{slug} for {{{{ contact.first_name }}}}")
        for slug in ("welcome-1", "welcome-2", "reminder")
    }


@pytest.fixture
def live_journey(workspace, templates):
    """live_journey(graph): a journey created from the graph and published."""

    def make(graph):
        journey = journeys.create_journey(workspace, graph)
        journeys.publish(journey)
        journey.refresh_from_db()
        return journey

    return make


@pytest.fixture
def track(workspace):
    """track(contact, name, **properties): an event through the ingest service."""

    def send(contact, name, message_id=None, **properties):
        item = {"external_id": contact.external_id, "name": name, "properties": properties}
        if message_id:
            item["message_id"] = message_id
        result = record_events(workspace, [item], EventSource.API)
        assert result.accepted == 1, result.rejected

    return send
