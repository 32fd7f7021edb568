"""The dashboard: key figures against the previous period, charts that follow the period
and channel filters, a CSV behind every chart, and the same numbers as JSON for partners."""

import csv
import datetime as dt
import io
import zoneinfo
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.journeys.models import Journey
from apps.reporting.models import AttributionDaily, JourneyDaily, MessageDaily
from tests.contacts.factories import ContactFactory

pytestmark = pytest.mark.django_db

# Days are the workspace's (Acme is in Copenhagen).
TODAY = timezone.localdate(timezone=zoneinfo.ZoneInfo("Europe/Copenhagen"))


def iso(days_ago: int) -> str:
    return (TODAY - dt.timedelta(days=days_ago)).isoformat()


@pytest.fixture
def figures(workspace):
    """The last 7 days: 100 emails (40 opened, 10 clicked), 50 SMS; the 7 days before: 80
    emails (20 opened). Conversions credited: 4 to email (revenue 400), 1 direct."""
    journey = Journey.objects.create(workspace=workspace, name="Welcome series", draft={})

    def messages(days_ago, channel, sent, opens=0, clicks=0, journey_id=0):
        MessageDaily.objects.create(
            workspace=workspace, day=TODAY - dt.timedelta(days=days_ago), channel=channel,
            journey_id=journey_id, sent=sent, delivered=sent, unique_opens=opens, opens=opens,
            unique_clicks=clicks, clicks=clicks,
        )  # fmt: skip

    messages(1, "email", 60, 30, 10, journey_id=journey.pk)
    messages(3, "email", 40, 10)
    messages(2, "sms", 50)
    messages(9, "email", 80, 20)
    for channel, conversions, revenue, journey_id in (
        ("email", 3, 300, journey.pk),
        ("email", 1, 100, 0),
        ("", 1, 25, 0),
    ):
        AttributionDaily.objects.create(
            workspace=workspace, day=TODAY - dt.timedelta(days=1), model="last_touch",
            channel=channel, conversions=conversions, revenue=Decimal(revenue),
            journey_id=journey_id,
        )  # fmt: skip
    AttributionDaily.objects.create(
        workspace=workspace, day=TODAY - dt.timedelta(days=1), model="first_touch",
        channel="sms", conversions=4, revenue=Decimal(400),
    )  # fmt: skip
    for outcome, count in (("entered", 200), ("converted", 4), ("sent", 60)):
        JourneyDaily.objects.create(
            workspace=workspace, day=TODAY - dt.timedelta(days=1), journey_id=journey.pk,
            node_id="hello", outcome=outcome, count=count,
        )  # fmt: skip
    ContactFactory.create_batch(3, workspace=workspace)
    return journey


def kpis(body: dict) -> dict:
    return {tile["key"]: (tile["value"], tile["previous"]) for tile in body["kpis"]}


def test_overview_api_counts_the_period_against_the_one_before(figures, workspace, api_key_for):
    body = api_key_for(workspace, ["read"]).get(reverse("api:report-overview"), {"days": 7}).json()
    assert (body["period"]["from"], body["period"]["to"]) == (iso(6), iso(0))
    assert body["period"]["previous_from"] == iso(13)
    figures_ = kpis(body)
    assert figures_["sent"] == (150, 80)
    assert figures_["open_rate"] == (40 / 150, 20 / 80)
    assert figures_["click_rate"] == (10 / 150, 0.0)
    assert figures_["conversion_rate"][0] == 4 / 150  # direct conversions are not credited
    assert figures_["revenue"] == (400.0, 0.0)
    assert figures_["contacts"] == (3, None)
    change = {tile["key"]: tile["change"] for tile in body["kpis"]}
    assert change["sent"] == pytest.approx(150 / 80 - 1)
    assert change["revenue"] is None  # nothing to compare with
    email = next(row for row in body["channels"] if row["channel"] == "email")
    assert (email["sent"], email["unique_opens"], email["conversions"]) == (100, 40, 4)
    assert body["top_journeys"] == [
        {"journey": figures.pk, "name": "Welcome series", "entered": 200, "sent": 60,
         "converted": 4, "conversion_rate": 0.02, "attributed_conversions": 3,
         "attributed_revenue": 300.0}
    ]  # fmt: skip
    days = body["over_time"]["days"]
    assert days == [iso(n) for n in range(6, -1, -1)]
    assert body["over_time"]["channels"]["sms"]["sent"][days.index(iso(2))] == 50


def test_channel_filter_narrows_every_figure(figures, workspace, api_key_for):
    body = (
        api_key_for(workspace, ["read"])
        .get(reverse("api:report-overview"), {"days": 7, "channel": "sms"})
        .json()
    )
    assert kpis(body)["sent"] == (50, 0)
    assert [row["channel"] for row in body["channels"]] == ["sms"]
    assert kpis(body)["revenue"] == (0.0, 0.0)
    assert body["top_journeys"] == []  # the journey sent no SMS


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"channel": "fax"}, "Unknown channel"),
        ({"from": "2026-06-10", "to": "2026-06-01"}, "starts after it ends"),
        ({"from": "yesterday"}, "YYYY-MM-DD"),
        ({"from": "2020-01-01", "to": "2026-01-01"}, "At most"),
    ],
)
def test_a_period_that_cannot_be_shown_is_a_clear_400(workspace, api_key_for, params, message):
    response = api_key_for(workspace, ["read"]).get(reverse("api:report-overview"), params)
    assert response.status_code == 400
    assert message in response.json()["errors"]["period"][0]


def test_dashboard_shows_tiles_and_charts_for_the_period(figures, workspace, owner, client_for):
    client = client_for(owner)
    response = client.get(reverse("dashboard"), {"days": 7})
    assert response.status_code == 200
    page = response.content.decode()
    assert 'data-kpi="sent"' in page and ">150<" in page
    assert "+88 %" in page  # 150 against 80
    for chart, name in (
        ("over-time-data", "over_time_chart"),
        ("channels-data", "channel_chart"),
        ("journeys-data", "journey_chart"),
    ):
        assert f'data-chart="{chart}"' in page and f'id="{chart}"' in page
        assert response.context[name]["data"], name  # plotly traces, drawn by plotly.js
    bars = response.context["channel_chart"]["data"]
    assert [trace["name"] for trace in bars] == ["Open rate", "Click rate", "Conversion rate"]
    assert "Welcome to Orchestra" not in page


def test_filters_swap_just_the_body_and_keep_the_url(figures, workspace, owner, client_for):
    response = client_for(owner).get(
        reverse("dashboard"), {"days": 7, "channel": "email"}, HTTP_HX_REQUEST="true"
    )
    page = response.content.decode()
    assert "<html" not in page
    assert 'data-kpi="sent"' in page and ">100<" in page
    assert "channel=email" in page  # the CSV links follow the filters


def test_a_bad_period_on_the_page_says_so_and_shows_the_default(workspace, owner, client_for):
    page = client_for(owner).get(reverse("dashboard"), {"from": "2026-13-01"}).content.decode()
    assert "Dates are YYYY-MM-DD" in page
    start = TODAY - dt.timedelta(days=29)
    assert f"{start:%-d %b %Y} to {TODAY:%-d %b %Y}" in page


def test_an_empty_workspace_gets_the_welcome(workspace, owner, client_for):
    page = client_for(owner).get(reverse("dashboard")).content.decode()
    assert "Welcome to Orchestra" in page
    assert "No messages in this period." in page


def test_every_chart_has_its_csv(figures, workspace, owner, client_for):
    client = client_for(owner)

    def rows(chart, **params):
        response = client.get(reverse("reporting:export", args=[chart]), {"days": 7, **params})
        assert response["Content-Type"] == "text/csv; charset=utf-8"
        text = b"".join(response.streaming_content).decode("utf-8-sig")
        return list(csv.reader(io.StringIO(text)))

    over_time = rows("over_time")
    assert over_time[0] == ["day", "channel", "sent", "unique_opens", "unique_clicks"]
    assert [iso(1), "email", "60", "30", "10"] in over_time
    assert len(over_time) == 1 + 7 * 2  # every day of both channels
    channels = rows("channels", channel="sms")
    assert [row[:2] for row in channels[1:]] == [["sms", "50"]]
    assert rows("top_journeys")[1][:5] == [str(figures.pk), "Welcome series", "200", "60", "4"]
    assert {row[0]: row[1] for row in rows("kpis")[1:]}["sent"] == "150"
    assert client.get(reverse("reporting:export", args=["nope"])).status_code == 404
    bad = client.get(reverse("reporting:export", args=["kpis"]), {"channel": "fax"})
    assert bad.status_code == 400


def test_outsiders_see_only_their_own_numbers(
    figures, workspace, outsider, other_workspace, client_for, api_key_for
):
    body = api_key_for(other_workspace, ["read"]).get(reverse("api:report-overview")).json()
    assert kpis(body)["sent"] == (0, 0)
    assert body["top_journeys"] == [] and body["channels"] == []
    page = client_for(outsider).get(reverse("dashboard")).content.decode()
    assert "Welcome series" not in page
    export = client_for(outsider).get(reverse("reporting:export", args=["top_journeys"]))
    assert b"Welcome series" not in b"".join(export.streaming_content)


def test_dashboard_reads_a_fixed_number_of_queries(
    figures, workspace, owner, client_for, django_assert_max_num_queries
):
    client = client_for(owner)
    client.get(reverse("dashboard"))  # the counts of what is true now are cached
    with django_assert_max_num_queries(18):
        assert client.get(reverse("dashboard"), {"days": 90}).status_code == 200
