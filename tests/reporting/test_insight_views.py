"""The customer insight page as people use it: it reads the latest snapshot (and says when
it was computed), filters swap the charts in place, every chart has its CSV, a cell lists
its customers and saves as a segment; analysts only read, outsiders see nothing of Acme."""

import csv
import datetime as dt
import io
import zoneinfo

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.contacts.models import Consent, Contact, ContactList, Event
from apps.reporting.models import AttributionSettings, InsightSnapshot
from apps.reporting.services import insight
from apps.reporting.views_insight import EXPORTS
from apps.segments.models import Segment
from apps.segments.services import matching_contacts
from tests.contacts.factories import ContactFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop(workspace):
    """Acme's customers: ann bought 5 times this month (R5 F4), bob once 2 days ago (R5 F1),
    cy twice 40 and 60 days ago (R4 F2); ann opened an email on a Monday at 09:00 her time;
    ann and bob said yes to email, bob to SMS too. Insight computed."""
    now = timezone.now()
    people = {}
    for name in ("ann", "bob", "cy"):
        people[name] = ContactFactory(
            workspace=workspace,
            external_id=name,
            email=f"{name}@acme.test",
            first_name=name.title(),
            last_name="Acme",
            created_at=now - dt.timedelta(days=400),
        )
    purchases = {"ann": (1, 5, 10, 20, 25), "bob": (2,), "cy": (40, 60)}
    for name, days in purchases.items():
        for day in days:
            Event.objects.create(
                workspace=workspace,
                contact=people[name],
                name="purchase",
                occurred_at=now - dt.timedelta(days=day, hours=12),
                properties={"revenue": 100},
            )
    copenhagen = zoneinfo.ZoneInfo("Europe/Copenhagen")  # ann's time zone
    today = now.astimezone(copenhagen).date()
    monday = today - dt.timedelta(days=today.weekday() or 7)
    monday_9 = dt.datetime.combine(monday, dt.time(9), tzinfo=copenhagen)
    Event.objects.create(
        workspace=workspace,
        contact=people["ann"],
        name="message_opened",
        occurred_at=monday_9,
        properties={"channel": "email"},
    )
    for name, channels in (("ann", ["email"]), ("bob", ["email", "sms"])):
        for channel in channels:
            Consent.objects.create(
                workspace=workspace, contact=people[name], channel=channel, status="subscribed"
            )
    insight.refresh_insight(workspace.pk)
    return people


def csv_rows(response) -> list[list[str]]:
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text)))


def test_page_shows_every_chart_from_the_snapshot(shop, workspace, marketer, client_for):
    response = client_for(marketer).get(reverse("reporting:insight"))
    assert response.status_code == 200
    page = response.content.decode()
    for chart, name in (
        ("rfm-data", "rfm_chart"),
        ("cohort-data", "cohort_chart"),
        ("lifecycle-data", "lifecycle_chart"),
        ("engagement-data", "engagement_chart"),
        ("send-hour-data", "send_hour_chart"),
        ("reach-data", "reach_chart"),
    ):
        assert f'data-chart="{chart}"' in page and f'id="{chart}"' in page, chart
        assert response.context[name]["data"], name  # plotly traces, drawn by plotly.js
    assert "Computed 0\xa0minutes ago" in page
    assert "Recompute now" in page
    cell = page[page.index('data-cell="r5f4"') :]
    assert reverse("reporting:insight_rfm_customers", args=["r5f4"]) in cell[:400]
    assert ">1</a>" in cell[:400]
    assert reverse("reporting:insight_save_segment", args=["r5f4"]) in cell[:1200]
    assert "Most opens: Mon at 09:00 (1)." in page
    heat = response.context["rfm_chart"]["data"][0]
    assert heat["z"][4] == [100.0, 0, 0, 500.0, 0]  # revenue of recency 5: bob (F1), ann (F4)


def test_page_reads_a_fixed_number_of_queries(
    shop, workspace, marketer, client_for, django_assert_max_num_queries
):
    client = client_for(marketer)
    with django_assert_max_num_queries(6):
        assert client.get(reverse("reporting:insight")).status_code == 200


def test_filters_swap_the_body_and_keep_the_choice(shop, workspace, owner, client_for):
    response = client_for(owner).get(
        reverse("reporting:insight"),
        {"lifecycle": "30", "channel": "email"},
        HTTP_HX_REQUEST="true",
    )
    page = response.content.decode()
    assert "<html" not in page
    assert '<option value="30" selected>' in page
    assert '<option value="email" selected>' in page
    assert response.context["lifecycle_period"]["days"] == 30
    flows = {(f["from"], f["to"]) for f in response.context["lifecycle_period"]["flows"]}
    assert ("prospect", "repeat") in flows  # ann's five purchases all fell within the month
    unknown = client_for(owner).get(
        reverse("reporting:insight"), {"lifecycle": "7", "channel": "fax"}
    )
    assert unknown.context["lifecycle"] == "90" and unknown.context["channel"] == ""


def test_without_a_snapshot_the_page_says_so_and_asks_for_one(
    workspace, owner, client_for, django_capture_on_commit_callbacks
):
    ContactFactory(workspace=workspace)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        page = client_for(owner).get(reverse("reporting:insight")).content.decode()
    assert "The insight is on its way" in page
    assert "Computing the insight" in page
    assert len(callbacks) == 1  # the task ran (eagerly): a snapshot is in
    snapshot = InsightSnapshot.objects.get(workspace=workspace)
    status = client_for(owner).get(reverse("reporting:insight_status"), {"shown": ""})
    assert status.status_code == 204 and status["HX-Refresh"] == "true"
    status = client_for(owner).get(reverse("reporting:insight_status"), {"shown": snapshot.pk})
    assert status.status_code == 200 and "Computed" in status.content.decode()


def test_recompute_now_makes_a_new_snapshot(
    shop, workspace, marketer, client_for, django_capture_on_commit_callbacks
):
    before = insight.latest_snapshot(workspace)
    Event.objects.create(
        workspace=workspace, contact=shop["cy"], name="purchase", occurred_at=timezone.now()
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(marketer).post(reverse("reporting:insight_recompute"))
    assert response.status_code == 302
    latest = insight.latest_snapshot(workspace)
    assert latest.pk != before.pk
    cells = {(c["recency"], c["frequency"]): c["contacts"] for c in latest.data["rfm"]["cells"]}
    assert cells[(5, 3)] == 1  # cy bought a third time, just now


def test_recompute_from_the_page_polls_until_the_new_snapshot_is_in(
    shop, workspace, marketer, client_for
):
    client = client_for(marketer)
    shown = insight.latest_snapshot(workspace)
    # The task is queued after the commit (not run here): the button turns into a poll.
    response = client.post(
        reverse("reporting:insight_recompute"), {"shown": shown.pk}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    assert 'hx-trigger="every 3s"' in response.content.decode()
    status = client.get(reverse("reporting:insight_status"), {"shown": shown.pk})
    assert "Computing the insight" in status.content.decode()
    insight.refresh_insight(workspace.pk)
    status = client.get(reverse("reporting:insight_status"), {"shown": shown.pk})
    assert status.status_code == 204 and status["HX-Refresh"] == "true"


def test_analysts_read_but_cannot_recompute_or_save(shop, workspace, analyst, client_for):
    client = client_for(analyst)
    page = client.get(reverse("reporting:insight")).content.decode()
    assert "Recompute now" not in page and "Save as segment" not in page
    assert 'data-cell="r5f4"' in page
    snapshots = InsightSnapshot.objects.filter(workspace=workspace).count()
    assert client.post(reverse("reporting:insight_recompute")).status_code == 403
    response = client.post(reverse("reporting:insight_save_segment", args=["r5f4"]))
    assert response.status_code == 403
    assert Segment.objects.filter(workspace=workspace).count() == 0
    assert InsightSnapshot.objects.filter(workspace=workspace).count() == snapshots


def test_a_cell_lists_its_customers(shop, workspace, analyst, client_for):
    response = client_for(analyst).get(reverse("reporting:insight_rfm_customers", args=["r5f4"]))
    page = response.content.decode()
    assert "R5 F4: Champions" in page
    assert "Ann Acme" in page and "Bob Acme" not in page
    assert [row.contact_id for row in response.context["customers"]] == [shop["ann"].pk]
    group = client_for(analyst).get(
        reverse("reporting:insight_rfm_customers", args=["new_customers"])
    )
    assert [row.contact.external_id for row in group.context["customers"]] == ["bob"]
    for bad in ("r9f9", "vips"):
        url = reverse("reporting:insight_rfm_customers", args=[bad])
        assert client_for(analyst).get(url).status_code == 404


def test_customers_page_by_page(workspace, marketer, client_for):
    now = timezone.now()
    for n in range(53):
        person = ContactFactory(workspace=workspace)
        Event.objects.create(
            workspace=workspace,
            contact=person,
            name="purchase",
            occurred_at=now - dt.timedelta(days=1, minutes=n),
        )
    insight.refresh_insight(workspace.pk)
    url = reverse("reporting:insight_rfm_customers", args=["r5f1"])
    first = client_for(marketer).get(url)
    assert len(first.context["customers"]) == 50
    after = first.context["next_after"]
    second = client_for(marketer).get(url, {"after": after}, HTTP_HX_REQUEST="true")
    assert "<html" not in second.content.decode()
    assert len(second.context["customers"]) == 3 and second.context["next_after"] is None
    seen = {c.contact_id for c in first.context["customers"]} | {
        c.contact_id for c in second.context["customers"]
    }
    assert len(seen) == 53


def test_save_as_segment_makes_a_segment_of_the_cell(shop, workspace, marketer, client_for):
    client = client_for(marketer)
    response = client.post(reverse("reporting:insight_save_segment", args=["r5f4"]))
    segment = Segment.objects.get(workspace=workspace)
    assert response.status_code == 302
    assert response.url == reverse("segments:detail", args=[segment.pk])
    assert segment.name == "RFM R5 F4: Champions"
    assert segment.created_by == marketer
    assert segment.rule["all"][-1] == {"event": "purchase", "count": {"gte": 5, "lte": 9}}
    again = client.post(reverse("reporting:insight_save_segment", args=["r5f4"]))
    assert again.url == response.url
    assert Segment.objects.filter(workspace=workspace).count() == 1


def test_with_several_purchase_events_a_cell_is_saved_as_a_static_list(
    shop, workspace, marketer, client_for
):
    AttributionSettings.objects.create(
        workspace=workspace, conversion_events=["purchase", "renewal"]
    )
    insight.refresh_insight(workspace.pk)
    response = client_for(marketer).post(reverse("reporting:insight_save_segment", args=["r5f1"]))
    saved = ContactList.objects.get(workspace=workspace)
    assert response.url == reverse("contacts:list") + f"?list={saved.slug}"
    assert list(saved.memberships.values_list("contact__external_id", flat=True)) == ["bob"]
    assert not Segment.objects.filter(workspace=workspace).exists()
    page = client_for(marketer).get(response.url).content.decode()
    assert "static list" in page and "bob@acme.test" in page


def test_every_chart_has_its_csv(shop, workspace, analyst, client_for):
    client = client_for(analyst)

    def rows(chart):
        return csv_rows(client.get(reverse("reporting:insight_export", args=[chart])))

    rfm = rows("rfm")
    assert rfm[0][:5] == [
        "recency_score",
        "last_purchase",
        "frequency_score",
        "purchases_range",
        "group",
    ]
    assert len(rfm) == 26
    assert ["5", "\u2264 30 days", "4", "5\u20139", "champions", "1", "5", "500.0"] in rfm
    assert ["potential_loyalists", "1", "200.0"] in rows("rfm_groups")
    cohorts = rows("cohorts")
    assert cohorts[0] == ["cohort", "contacts", "month", "active", "share"]
    assert len(cohorts) == 1 + sum(range(1, 13))
    lifecycle = rows("lifecycle")
    assert lifecycle[0][3:] == ["stage_at_start", "stage_at_end", "contacts"]
    assert {tuple(row[3:]) for row in lifecycle if row[0] == "30"} == {
        ("prospect", "repeat", "1"),
        ("prospect", "first_purchase", "1"),
        ("repeat", "repeat", "1"),
    }
    # cy bought nothing in the last 30 days: score 0; bob 10, ann 51 (5 purchases, an open)
    engagement = rows("engagement")
    assert [row[2] for row in engagement[1:]] == [
        "1",
        "0",
        "1",
        "0",
        "0",
        "0",
        "1",
        "0",
        "0",
        "0",
        "0",
    ]
    send_hour = rows("send_hour")
    assert len(send_hour) == 1 + 2 * 7 * 24  # all channels, and email
    assert ["", "1", "Mon", "9", "1"] in send_hour and ["email", "1", "Mon", "9", "1"] in send_hour
    assert rows("reach")[1:] == [["email", "1"], ["email+sms", "1"], ["", "1"]]
    assert client.get(reverse("reporting:insight_export", args=["nope"])).status_code == 404


def test_insight_api_answers_the_snapshot(shop, workspace, api_key_for):
    body = api_key_for(workspace, ["read"]).get(reverse("api:report-insight")).json()
    assert body["computed_at"] == body["data"]["computed_at"].replace("+00:00", "Z")
    assert body["data"]["rfm"]["customers"] == 3
    assert body["data"]["reach"]["channels"] == {"email": 2, "sms": 1, "push": 0}
    response = api_key_for(workspace, ["ingest"]).get(reverse("api:report-insight"))
    assert response.status_code == 403


def test_outsiders_see_nothing_of_acme(
    shop, workspace, outsider, other_workspace, client_for, api_key_for
):
    client = client_for(outsider)
    page = client.get(reverse("reporting:insight")).content.decode()
    assert "Other Brand" in page and "Acme" not in page
    customers = client.get(reverse("reporting:insight_rfm_customers", args=["r5f4"]))
    assert list(customers.context["customers"]) == []
    assert "ann@acme.test" not in customers.content.decode()
    export = client.get(reverse("reporting:insight_export", args=["rfm"]))
    assert csv_rows(export) == [EXPORTS["rfm"][0]]  # no snapshot of their own yet
    body = api_key_for(other_workspace, ["read"]).get(reverse("api:report-insight")).json()
    assert body == {"computed_at": None, "data": None}
    # Saving "their" R5 F4 saves a segment of their own workspace, which has no customers.
    insight.refresh_insight(other_workspace.pk)
    response = client.post(reverse("reporting:insight_save_segment", args=["r5f4"]))
    assert response.status_code == 302
    assert not Segment.objects.filter(workspace=workspace).exists()
    saved = Segment.objects.get(workspace=other_workspace)
    mine = Contact.objects.filter(workspace=workspace).values_list("pk", flat=True)
    assert matching_contacts(other_workspace, saved.rule, mine) == set()
    export = csv_rows(client.get(reverse("reporting:insight_export", args=["rfm"])))
    assert all(row[5] == "0" for row in export[1:])
