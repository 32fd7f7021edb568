"""A journey's report: funnel, conversions over time, lift over the holdout group with its
interval, split results with Pearson's chi-squared test; from a journey the engine ran."""

import datetime as dt
import json
import math

import pytest
from django.urls import reverse

from apps.journeys.choices import StepOutcome
from apps.journeys.models import Enrollment, JourneyStep
from apps.reporting.services.journey_report import (
    chi_squared,
    chi_squared_survival,
    holdout_lift,
    journey_report,
)
from apps.reporting.services.overview import period_from
from apps.reporting.services.rollups import refresh_rollups

pytestmark = pytest.mark.django_db

AB_TEST = {
    "name": "Welcome A/B",
    "entry": {"type": "event", "event": "go"},
    "holdout_percent": 20,
    "start": "ab",
    "nodes": [
        {"id": "ab", "type": "random_split", "weights": {"a": 50, "b": 50}},
        {"id": "mail_a", "type": "send", "channel": "email", "template": "welcome-1"},
        {"id": "mail_b", "type": "send", "channel": "email", "template": "welcome-2"},
        {"id": "pause", "type": "wait", "duration": "P3D"},
        {"id": "done", "type": "exit"},
        {"id": "bought", "type": "goal", "event": "purchase"},
    ],
    "edges": [
        {"from": "ab", "to": "mail_a", "branch": "a"},
        {"from": "ab", "to": "mail_b", "branch": "b"},
        {"from": "mail_a", "to": "pause"},
        {"from": "mail_b", "to": "pause"},
        {"from": "pause", "to": "done"},
    ],
}


@pytest.mark.parametrize(
    ("x", "degrees", "p"),
    [(3.841459, 1, 0.05), (5.991465, 2, 0.05), (7.814728, 3, 0.05), (9.487729, 4, 0.05),
     (11.0705, 5, 0.05), (0.454936, 1, 0.5), (0, 2, 1.0)],
)  # fmt: skip
def test_chi_squared_tail_matches_the_tables(x, degrees, p):
    assert chi_squared_survival(x, degrees) == pytest.approx(p, abs=1e-4)


def test_chi_squared_of_two_branches():
    statistic, p_value, trusted = chi_squared([(30, 70), (50, 50)])
    assert statistic == pytest.approx(8.3333, abs=1e-4)
    assert p_value == pytest.approx(0.00389, abs=1e-5)
    assert trusted
    assert chi_squared([(1, 3), (2, 2)])[2] is False  # expected counts under 5
    assert chi_squared([(0, 10), (0, 12)]) == (None, None, False)  # nobody converted


def test_holdout_lift_and_its_interval():
    lift = holdout_lift(
        {False: {"entered": 900, "converted": 270}, True: {"entered": 100, "converted": 10}}, 10
    )
    assert lift["difference"] == pytest.approx(0.2)
    error = math.sqrt(0.3 * 0.7 / 900 + 0.1 * 0.9 / 100)
    assert lift["interval"] == pytest.approx((0.2 - 1.959964 * error, 0.2 + 1.959964 * error))
    assert lift["incremental_conversions"] == pytest.approx(180)
    assert lift["relative_lift"] == pytest.approx(2.0)
    assert lift["significant"] is True
    assert holdout_lift({False: {"entered": 5, "converted": 1},
                         True: {"entered": 0, "converted": 0}}, 0) is None  # fmt: skip


@pytest.mark.django_db(transaction=True)  # the engine runs once ingest commits
def test_report_of_a_journey_the_engine_ran_agrees_with_its_enrollments(
    workspace,
    live_journey,
    subscribed,
    track,
    smtp_server,
    owner,
    client_for,
    api_key_for,
):
    journey = live_journey(AB_TEST)
    contacts = [subscribed() for _ in range(60)]
    for contact in contacts:
        track(contact, "go")
    buyers = contacts[::3]
    for contact in buyers:
        track(contact, "purchase", amount=50)
    refresh_rollups()

    period = period_from(workspace, {"days": 7})
    report = journey_report(journey, journey.live_version.graph, period)

    enrollments = Enrollment.objects.filter(journey=journey)
    steps = JourneyStep.objects.filter(enrollment__journey=journey)
    funnel = {step["node"]: step["reached"] for step in report["funnel"]}
    assert funnel[""] == 60 == enrollments.count()
    assert funnel["ab"] == 60
    assert funnel["mail_a"] + funnel["mail_b"] == 60
    assert funnel["pause"] == 60 and funnel["bought"] == len(buyers)
    assert funnel["done"] == 0  # everyone still waits three days

    held = enrollments.filter(holdout=True)
    lift = report["holdout"]
    assert lift["holdout"]["entered"] == held.count()
    assert lift["treated"]["entered"] == 60 - held.count()
    converted = steps.filter(outcome=StepOutcome.CONVERTED)
    assert lift["holdout"]["converted"] == converted.filter(enrollment__holdout=True).count()

    (split,) = report["splits"]
    took = {b["branch"]: b["took"] for b in split["branches"]}
    assert took == {
        label: steps.filter(node_id="ab", outcome="branched", detail=label).count()
        for label in ("a", "b")
    }
    assert sum(b["converted"] for b in split["branches"]) == len(buyers)
    assert split["test"] == "Pearson's chi-squared test"
    assert "significant" in split["verdict"].lower()
    today = report["over_time"][-1]
    assert (today["entered"], today["converted"]) == (60, len(buyers))

    page = client_for(owner).get(reverse("reporting:journey", args=[journey.pk]))
    assert page.status_code == 200
    body = page.content.decode()
    for chart in ("funnel-data", "journey-time-data", "holdout-data", "split-1-data"):
        assert f'id="{chart}"' in body
    api = api_key_for(workspace, ["read"]).get(
        reverse("api:report-journey", args=[journey.pk]), {"days": 7}
    )
    assert api.json()["funnel"] == json.loads(json.dumps(report["funnel"]))
    assert api.json()["splits"][0]["p_value"] == split["p_value"]
    export = client_for(owner).get(reverse("reporting:journey_export", args=[journey.pk, "splits"]))
    lines = b"".join(export.streaming_content).decode("utf-8-sig").splitlines()
    assert lines[0] == "step,branch,took,converted,rate,p_value"
    assert len(lines) == 3


def test_journey_reports_are_the_workspaces_own(
    workspace, live_journey, outsider, client_for, owner, api_key_for
):
    journey = live_journey(AB_TEST)
    outsider_client = client_for(outsider)
    assert outsider_client.get(reverse("reporting:journey", args=[journey.pk])).status_code == 404
    export = reverse("reporting:journey_export", args=[journey.pk, "funnel"])
    assert outsider_client.get(export).status_code == 404
    assert "Welcome A/B" not in outsider_client.get(reverse("reporting:journeys")).content.decode()
    other_key = api_key_for(outsider.workspaces.get(), ["read"])
    assert other_key.get(reverse("api:report-journey", args=[journey.pk])).status_code == 404
    owner_page = client_for(owner).get(reverse("reporting:journeys")).content.decode()
    assert "Welcome A/B" in owner_page
    assert dt.date.today()  # the list needs no period
