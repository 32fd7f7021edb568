"""The customer insight page in a real browser, on generated data: plotly draws all six
charts (the RFM and cohort heatmaps, the Sankey of lifecycle stages, the engagement
histogram, the send-hour heatmap, channel reach), the filters swap them in place, a cell
opens its customers and saves as a segment, and nothing fails in the console."""

import datetime as dt
import random

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from apps.contacts.models import Consent, Contact, Event
from apps.reporting.models import CustomerRfm
from apps.reporting.services import insight
from apps.segments.models import Segment
from tests.e2e.test_sign_in_and_keys import sign_in

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SCREENSHOT = "/tmp/insight.png"  # noqa: S108
ZONES = ["", "Europe/Copenhagen", "America/New_York", "Asia/Tokyo"]


@pytest.fixture
def shop_history(workspace):
    """300 contacts over the last 14 months: purchases, page views, opens and clicks, and
    consents, drawn from a seeded random generator; the insight computed."""
    rng = random.Random(7)
    now = timezone.now()
    contacts = Contact.objects.bulk_create(
        Contact(
            workspace=workspace,
            external_id=f"c{n}",
            email=f"c{n}@shop.test",
            first_name=f"Customer {n}",
            timezone=rng.choice(ZONES),
            created_at=now - dt.timedelta(days=rng.uniform(0, 420)),
        )
        for n in range(300)
    )
    events, consents = [], []
    for person in contacts:
        age = (now - person.created_at).days
        buys = rng.choice([0, 0, 1, 1, 2, 3, 5, 8, 12])
        for _n in range(buys):
            events.append(
                Event(
                    workspace=workspace,
                    contact=person,
                    name="purchase",
                    properties={"revenue": rng.randint(10, 300)},
                    occurred_at=now - dt.timedelta(days=rng.uniform(0, age)),
                )
            )
        for name, times in (
            ("page", rng.randint(0, 6)),
            ("message_opened", rng.randint(0, 4)),
            ("message_clicked", rng.randint(0, 2)),
        ):
            for _n in range(times):
                events.append(
                    Event(
                        workspace=workspace,
                        contact=person,
                        name=name,
                        properties={"channel": rng.choice(["email", "push"])},
                        occurred_at=now - dt.timedelta(days=rng.uniform(0, min(age, 80))),
                    )
                )
        for channel in ("email", "sms", "push"):
            if rng.random() < {"email": 0.7, "sms": 0.3, "push": 0.2}[channel]:
                consents.append(
                    Consent(
                        workspace=workspace, contact=person, channel=channel, status="subscribed"
                    )
                )
    Event.objects.bulk_create(events)
    Consent.objects.bulk_create(consents)
    insight.refresh_insight(workspace.pk)
    return contacts


def test_insight_page_draws_its_charts_and_saves_a_cell(
    page, live_server, owner, workspace, shop_history
):
    errors = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("response", lambda r: r.status >= 400 and errors.append(f"{r.status} {r.url}"))
    sign_in(page, live_server, "owner@acme.test")
    page.goto(f"{live_server.url}/reports/insight/")
    expect(page.locator("h1")).to_have_text("Customer insight")
    expect(page.locator(".js-plotly-plot")).to_have_count(6)
    expect(page.locator('[data-chart="lifecycle-data"] .sankey')).to_have_count(1)
    for chart in ("rfm-data", "cohort-data", "send-hour-data"):
        expect(page.locator(f'[data-chart="{chart}"] .hm image')).to_have_count(1)
    expect(page.locator('[data-chart="engagement-data"] .bars .point')).to_have_count(11)
    page.screenshot(path=SCREENSHOT, full_page=True)

    page.select_option("#insight-lifecycle", "30")
    expect(page).to_have_url(f"{live_server.url}/reports/insight/?lifecycle=30&channel=")
    expect(page.locator(".js-plotly-plot")).to_have_count(6)
    expect(page.locator("#insight-lifecycle")).to_have_value("30")
    page.select_option("#insight-channel", "email")
    expect(page.locator("#insight-channel")).to_have_value("email")
    expect(page.locator(".js-plotly-plot")).to_have_count(6)

    busiest = CustomerRfm.objects.filter(workspace=workspace).values("recency", "frequency")
    cell = max(
        {(row["recency"], row["frequency"]) for row in busiest},
        key=lambda rf: busiest.filter(recency=rf[0], frequency=rf[1]).count(),
    )
    key = insight.cell_key(*cell)
    count = CustomerRfm.objects.filter(
        workspace=workspace, recency=cell[0], frequency=cell[1]
    ).count()
    page.click(f'[data-cell="{key}"] a.count')
    expect(page.locator("#insight-customers tbody tr")).to_have_count(min(count, 50))
    page.click("text=Save as segment")
    expect(page.locator("h1")).to_contain_text(f"RFM R{cell[0]} F{cell[1]}")
    segment = Segment.objects.get(workspace=workspace)
    assert segment.rule["all"][-1]["event"] == "purchase"

    page.goto(f"{live_server.url}/reports/insight/")
    before = page.locator("[data-computed-at]").get_attribute("data-computed-at")
    page.click("text=Recompute now")
    # Tasks run inline here: the request computes the snapshot, then the page reloads.
    expect(page.locator("[data-computed-at]")).not_to_have_attribute(
        "data-computed-at", before, timeout=30_000
    )
    expect(page.locator(".js-plotly-plot")).to_have_count(6)
    assert errors == []
