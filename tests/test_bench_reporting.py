"""The reporting benchmark (bench/reporting.py) at a tiny size, so that the suite catches
its breakage: its generated history rolls up, from scratch and after more rows, to the
figures its floor queries compute from the raw tables, and its visitor can open the pages."""

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.test import Client

from bench import reporting
from bench.harness import BenchDatabase, with_database_name

pytestmark = pytest.mark.django_db(transaction=True)  # COPY commits on a connection of its own

SIZE = {"messages": 3_000, "events": 3_000, "contacts": 300, "enrollments": 400}


@pytest.fixture
def database():
    """The test database, as the workload's COPY and floors reach it."""
    name = connection.settings_dict["NAME"]
    # DATABASE_URL may name a unix socket (the embedded server): keep it, change the name.
    return BenchDatabase(url=with_database_name(django_settings.DATABASE_URL, name), name=name)


def test_generated_history_rolls_up_to_the_figures_the_floors_compute(workspace, database):
    history = reporting.generate(database, workspace.pk, SIZE, log=lambda _message: None)
    rows = history.counts
    assert rows["channels_message"] == SIZE["messages"]
    assert rows["contacts_event"] == SIZE["events"]
    assert rows["journeys_enrollment"] == SIZE["enrollments"]
    assert rows["channels_messageevent"] == database.count("channels_messageevent")
    # Every message was sent (one "sent" each); some were opened, some clicked.
    assert database.count("channels_messageevent", "kind = 'sent'") == SIZE["messages"]
    assert database.count("channels_messageevent", "kind = 'opened'") > 0
    assert database.count("channels_messageevent", "kind = 'clicked'") > 0
    assert database.count("contacts_event", "name = 'purchase'") > 0
    assert database.count("journeys_enrollment", "holdout") > 0

    scratch = reporting.refresh()
    assert {table: s["rows"] for table, s in scratch.items()} == reporting.source_rows(database)
    added = reporting.add_increment(database, history, 0)
    again = reporting.refresh()
    assert again["channels_messageevent"]["rows"] == added["channels_messageevent"] > 0
    assert again["contacts_event"]["rows"] == added["contacts_event"] == SIZE["events"] // 100
    assert again["journeys_journeystep"]["rows"] == added["journeys_journeystep"] > 0

    visitor = reporting.make_visitor(workspace.pk)
    browser = Client()
    browser.cookies.load(visitor.cookie)
    welcome = history.setup.journeys["welcome"][0]
    for page in reporting.pages(welcome):
        if page.auth == "session" and not page.key.endswith("insight"):
            assert browser.get(page.path).status_code == 200, page.path
    partner = Client(headers={"Authorization": f"Bearer {visitor.api_key}"})
    overview = partner.get("/api/v1/reports/overview/").json()
    journey = partner.get(f"/api/v1/reports/journeys/{welcome}/").json()
    assert overview["kpis"] and journey["funnel"]

    period = overview["period"]
    params = reporting.floor_params(
        workspace.pk,
        reporting.dt.date.fromisoformat(period["previous_from"]),
        reporting.dt.date.fromisoformat(period["to"]),
        welcome,
    )
    current = reporting.floor_params(
        workspace.pk,
        reporting.dt.date.fromisoformat(period["from"]),
        reporting.dt.date.fromisoformat(period["to"]),
        welcome,
    )
    floors = {
        key: reporting.run_floor(database, key, current if key == "journey" else params)[1]
        for key in reporting.FLOORS
    }
    assert floors["messages"][0] and floors["attribution"][0] and floors["journey"][0]
    assert reporting.agreement(overview, journey, floors) == []
