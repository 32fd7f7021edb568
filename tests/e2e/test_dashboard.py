"""The dashboard in a real browser: the charts draw (plotly.js served from our static
files), the filters swap the figures in place, and nothing fails in the console."""

import datetime as dt
import zoneinfo
from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from apps.journeys.models import Journey
from apps.reporting.models import AttributionDaily, JourneyDaily, MessageDaily
from tests.e2e.test_sign_in_and_keys import sign_in

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SCREENSHOT = "/tmp/dashboard.png"  # noqa: S108


@pytest.fixture
def month_of_sends(workspace):
    today = timezone.localdate(timezone=zoneinfo.ZoneInfo(workspace.timezone))
    journey = Journey.objects.create(workspace=workspace, name="Abandoned cart", draft={})
    for days_ago in range(30):
        day = today - dt.timedelta(days=days_ago)
        for channel, sent in (("email", 900 + 13 * days_ago), ("sms", 200 + days_ago)):
            MessageDaily.objects.create(
                workspace=workspace, day=day, channel=channel, journey_id=journey.pk,
                sent=sent, delivered=sent, unique_opens=sent // 3, unique_clicks=sent // 12,
            )  # fmt: skip
        AttributionDaily.objects.create(
            workspace=workspace, day=day, model="last_touch", channel="email",
            journey_id=journey.pk, conversions=5, revenue=Decimal("480.00"),
        )  # fmt: skip
        JourneyDaily.objects.create(workspace=workspace, day=day, journey_id=journey.pk,
                                    node_id="reminder", outcome="converted", count=5)  # fmt: skip
    return today


def test_dashboard_draws_its_charts_and_follows_the_filters(
    page, live_server, owner, workspace, month_of_sends
):
    errors = _watch_errors(page)
    sign_in(page, live_server, "owner@acme.test")
    expect(page.locator(".js-plotly-plot")).to_have_count(3)
    expect(page.locator('[data-kpi="sent"] .value')).to_have_text("39,090")
    page.screenshot(path=SCREENSHOT, full_page=True)

    page.select_option("#dashboard-channel", "sms")
    expect(page.locator('[data-kpi="sent"] .value')).to_have_text("6,435")
    expect(page).to_have_url(f"{live_server.url}/?days=30&channel=sms")
    expect(page.locator(".js-plotly-plot")).to_have_count(3)
    journeys = page.locator("article:has(#journeys-heading) table")
    expect(journeys).to_contain_text("Abandoned cart")  # it sent SMS too
    page.select_option("#dashboard-days", "7")
    expect(page.locator('[data-kpi="sent"] .value')).to_have_text("1,421")
    assert errors == []


def _watch_errors(page) -> list[str]:
    errors: list[str] = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.on("pageerror", lambda error: errors.append(str(error)))
    return errors


def test_journey_report_and_attribution_draw_their_charts(
    page, live_server, owner, workspace, month_of_sends
):
    journey = Journey.objects.get(workspace=workspace)
    journey.draft = {
        "start": "ab", "holdout_percent": 10,
        "nodes": [{"id": "ab", "type": "random_split", "weights": {"a": 50, "b": 50}},
                  {"id": "reminder", "type": "goal", "event": "purchase"}],
        "edges": [],
    }  # fmt: skip
    journey.save()
    day = month_of_sends
    for holdout, entered, converted in ((False, 900, 270), (True, 100, 10)):
        JourneyDaily.objects.create(workspace=workspace, day=day, journey_id=journey.pk,
                                    node_id="ab", outcome="entered", holdout=holdout,
                                    count=entered)  # fmt: skip
        JourneyDaily.objects.update_or_create(
            workspace=workspace, day=day, journey_id=journey.pk, node_id="reminder",
            outcome="converted", holdout=holdout, defaults={"count": converted},
        )  # fmt: skip
    for branch, took, converted in (("a", 500, 100), ("b", 500, 180)):
        for outcome, count in (("branched", took), ("split_converted", converted)):
            JourneyDaily.objects.create(workspace=workspace, day=day, journey_id=journey.pk,
                                        node_id="ab", outcome=outcome, branch=branch,
                                        count=count)  # fmt: skip
    errors = _watch_errors(page)
    sign_in(page, live_server, "owner@acme.test")
    page.goto(f"{live_server.url}/reports/journeys/")
    page.click("text=Abandoned cart")
    expect(page.locator("h1")).to_have_text("Abandoned cart")
    expect(page.locator(".js-plotly-plot")).to_have_count(4)  # funnel, time, holdout, split
    expect(page.locator("[data-split=ab] .verdict")).to_contain_text("Significant")
    expect(page.locator("[data-lift=incremental]")).to_contain_text("conversions added")
    page.screenshot(path="/tmp/journey_report.png", full_page=True)  # noqa: S108

    page.goto(f"{live_server.url}/reports/attribution/")
    expect(page.locator(".js-plotly-plot")).to_have_count(1)
    expect(page.locator(".attribution-table")).to_contain_text("Email")
    page.select_option("#attribution-by", "journey")
    expect(page.locator(".attribution-table")).to_contain_text("Abandoned cart")
    page.screenshot(path="/tmp/attribution.png", full_page=True)  # noqa: S108
    assert errors == []
