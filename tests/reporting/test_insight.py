"""Customer insight numbers on small hand-made histories, each with the exact figures a
marketer would count by hand: RFM cells, cohorts, lifecycle flows, engagement scores, best
send hour, channel reach; and the RFM cells saved as segments select the same contacts."""

import datetime as dt

import pytest
from django.utils import timezone

from apps.contacts.models import Consent, Contact, Event
from apps.reporting.models import AttributionSettings, CustomerRfm, InsightSnapshot
from apps.reporting.services import insight
from apps.segments import services as segments
from tests.contacts.factories import ContactFactory

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 6, 15, 12, 0, tzinfo=dt.UTC)  # a Monday; Acme is in Copenhagen
LONG_AGO = NOW - dt.timedelta(days=800)


def contact(workspace, name: str, created_at=LONG_AGO, **fields) -> Contact:
    return ContactFactory(
        workspace=workspace,
        external_id=name,
        email=f"{name}@acme.test",
        created_at=created_at,
        **fields,
    )


def event(person: Contact, name: str, at: dt.datetime, **properties) -> Event:
    return Event.objects.create(
        workspace=person.workspace, contact=person, name=name, occurred_at=at, properties=properties
    )


def days_ago(days: float, now=NOW) -> dt.datetime:
    return now - dt.timedelta(days=days)


@pytest.fixture
def customers(workspace, other_workspace):
    """Eight contacts with known purchases (and one in another workspace):

    ann   5 purchases, the last 1 day ago, 100 each       -> R5 F4 champions
    bob   1 purchase 2 days ago, 50                         -> R5 F1 new customers
    cy    2 purchases 40 and 60 days ago, 30 each (amount)  -> R4 F2 potential loyalists
    dee   3 purchases 100, 200, 300 days ago                -> R3 F3 need attention
    eve  10 purchases 400-409 days ago, 10 each             -> R1 F5 at risk
    fay   1 purchase 200 days ago                           -> R2 F1 hibernating
    gus   no purchase, only page views                      -> no cell (a prospect)
    hal   purchases 300 and 5 days ago                      -> R5 F2 potential loyalists
    ivy   created 10 days ago, a purchase 3 days ago, 20    -> R5 F1 new customers
    """
    people = {
        name: contact(workspace, name)
        for name in ("ann", "bob", "cy", "dee", "eve", "fay", "gus", "hal")
    }
    people["ivy"] = contact(workspace, "ivy", created_at=days_ago(10))
    for days in (1, 5, 10, 20, 25):
        event(people["ann"], "purchase", days_ago(days), revenue=100)
    event(people["ann"], "page", days_ago(1))
    event(people["bob"], "purchase", days_ago(2), revenue=50)
    for days in (40, 60):
        event(people["cy"], "purchase", days_ago(days), amount=30)
    for days in (100, 200, 300):
        event(people["dee"], "purchase", days_ago(days))
    for days in range(400, 410):
        event(people["eve"], "purchase", days_ago(days), revenue=10)
    event(people["fay"], "purchase", days_ago(200))
    event(people["gus"], "page", days_ago(3))
    event(people["hal"], "purchase", days_ago(300))
    event(people["hal"], "purchase", days_ago(5))
    event(people["ivy"], "purchase", days_ago(3), revenue=20)
    stranger = contact(other_workspace, "stranger")
    event(stranger, "purchase", days_ago(1), revenue=999)
    return people


def cells(data: dict) -> dict:
    return {
        (c["recency"], c["frequency"]): (c["contacts"], c["revenue"])
        for c in data["rfm"]["cells"]
        if c["contacts"]
    }


def test_rfm_cells_count_customers_and_revenue(customers, workspace):
    data = insight.compute_insight(workspace, NOW)
    assert cells(data) == {
        (5, 4): (1, 500.0),
        (5, 1): (2, 70.0),
        (5, 2): (1, 0.0),
        (4, 2): (1, 60.0),
        (3, 3): (1, 0.0),
        (2, 1): (1, 0.0),
        (1, 5): (1, 100.0),
    }
    assert len(data["rfm"]["cells"]) == 25
    assert (data["rfm"]["customers"], data["rfm"]["revenue"]) == (8, 730.0)
    groups = {g["group"]: g["contacts"] for g in data["rfm"]["groups"]}
    assert groups == {
        "champions": 1,
        "loyal": 0,
        "potential_loyalists": 2,
        "new_customers": 2,
        "promising": 0,
        "need_attention": 1,
        "at_risk": 1,
        "hibernating": 1,
    }
    rows = {
        row.contact.external_id: (row.recency, row.frequency, row.purchases)
        for row in CustomerRfm.objects.select_related("contact")
    }
    assert rows["eve"] == (1, 5, 10) and rows["ann"] == (5, 4, 5)
    assert "gus" not in rows and "stranger" not in rows


def test_rfm_boundaries_are_whole_days_back_from_now(workspace):
    exactly_30 = contact(workspace, "thirty")
    event(exactly_30, "purchase", days_ago(30))
    just_over_30 = contact(workspace, "over")
    event(just_over_30, "purchase", days_ago(30) - dt.timedelta(seconds=1))
    future = contact(workspace, "future")  # a clock ahead: counted, but not as recent
    event(future, "purchase", NOW + dt.timedelta(hours=1))
    insight.compute_insight(workspace, NOW)
    scores = dict(CustomerRfm.objects.values_list("contact__external_id", "recency"))
    assert scores == {"thirty": 5, "over": 4, "future": 1}


def test_customers_who_left_leave_their_cell(customers, workspace):
    insight.compute_insight(workspace, NOW)
    Event.objects.filter(contact=customers["bob"]).delete()
    Event.objects.create(
        workspace=workspace, contact=customers["gus"], name="purchase", occurred_at=days_ago(1)
    )
    data = insight.compute_insight(workspace, NOW)
    ids = set(CustomerRfm.objects.values_list("contact__external_id", flat=True))
    assert "bob" not in ids and "gus" in ids
    assert cells(data)[(5, 1)] == (2, 20.0)  # ivy and gus


def test_workspace_conversion_events_are_the_purchases(customers, workspace):
    AttributionSettings.objects.create(workspace=workspace, conversion_events=["page"])
    data = insight.compute_insight(workspace, NOW)
    assert data["conversion_events"] == ["page"]
    assert cells(data) == {(5, 1): (2, 0.0)}  # ann and gus viewed a page


def test_lifecycle_flows_between_the_start_and_the_end_of_the_period(customers, workspace):
    data = insight.compute_insight(workspace, NOW)
    month = data["lifecycle"]["periods"]["30"]
    assert (month["from"], month["to"]) == ("2026-05-16", "2026-06-15")
    flows = {(f["from"], f["to"]): f["contacts"] for f in month["flows"]}
    assert flows == {
        ("prospect", "repeat"): 1,  # ann: five purchases within the month
        ("prospect", "first_purchase"): 1,  # bob
        ("prospect", "prospect"): 1,  # gus
        ("repeat", "repeat"): 1,  # cy
        ("won_back", "lapsed"): 1,  # dee: came back 100 days ago, then nothing
        ("lapsed", "lapsed"): 2,  # eve, fay
        ("lapsed", "won_back"): 1,  # hal: back after 295 days
        ("joined", "first_purchase"): 1,  # ivy joined within the month
    }
    year = data["lifecycle"]["periods"]["365"]["flows"]
    assert {(f["from"], f["to"]): f["contacts"] for f in year} == {
        ("prospect", "repeat"): 2,  # ann, cy
        ("prospect", "first_purchase"): 1,  # bob
        ("prospect", "prospect"): 1,  # gus
        ("prospect", "lapsed"): 2,  # dee, fay: their purchases all fell within the year
        ("prospect", "won_back"): 1,  # hal
        ("repeat", "lapsed"): 1,  # eve: a year ago her purchases were recent
        ("joined", "first_purchase"): 1,  # ivy
    }


def test_cohorts_by_first_seen_month_in_the_workspace_time_zone(workspace):
    april = contact(workspace, "april", created_at=dt.datetime(2026, 4, 10, tzinfo=dt.UTC))
    event(april, "page", dt.datetime(2026, 4, 11, tzinfo=dt.UTC))
    event(april, "purchase", dt.datetime(2026, 5, 3, tzinfo=dt.UTC))
    event(april, "segment_entered", dt.datetime(2026, 6, 1, tzinfo=dt.UTC))  # not activity
    # 23:30 UTC on 30 April is 1 May in Copenhagen: a May contact.
    may = contact(workspace, "may", created_at=dt.datetime(2026, 4, 30, 23, 30, tzinfo=dt.UTC))
    event(may, "page", dt.datetime(2026, 5, 31, 22, 30, tzinfo=dt.UTC))  # June there
    contact(workspace, "june", created_at=dt.datetime(2026, 6, 1, 8, tzinfo=dt.UTC))
    contact(workspace, "old", created_at=dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
    cohorts = insight.compute_insight(workspace, NOW)["cohorts"]
    assert cohorts["months"][0] == "2025-07" and cohorts["months"][-1] == "2026-06"
    rows = {row["cohort"]: (row["contacts"], row["active"]) for row in cohorts["rows"]}
    assert rows["2026-04"] == (1, [1, 1, 0])
    assert rows["2026-05"] == (1, [0, 1])
    assert rows["2026-06"] == (1, [0])
    assert rows["2025-07"] == (0, [0] * 12)
    assert sum(size for size, _active in rows.values()) == 3  # "old" is before the window


def test_engagement_score_distribution(workspace):
    busy = contact(workspace, "busy")
    for name, times in (
        ("message_opened", 2),
        ("message_clicked", 1),
        ("page", 2),
        ("screen", 1),
        ("purchase", 1),
    ):
        for n in range(times):
            event(busy, name, days_ago(1 + n))
    buyer = contact(workspace, "buyer")
    for n in range(12):
        event(buyer, "purchase", days_ago(n + 1))
    quiet = contact(workspace, "quiet")
    event(quiet, "message_opened", days_ago(40))  # too long ago
    event(quiet, "message_delivered", days_ago(1))  # not engagement
    contact(workspace, "new")
    engagement = insight.compute_insight(workspace, NOW)["engagement"]
    assert insight.engagement_score(opens=2, clicks=1, visits=3, purchases=1) == 18
    assert insight.engagement_score(opens=0, clicks=0, visits=0, purchases=12) == 100
    bins = {(b["from"], b["to"]): b["contacts"] for b in engagement["bins"]}
    assert bins[(0, 0)] == 2 and bins[(10, 19)] == 1 and bins[(90, 100)] == 1
    assert sum(bins.values()) == 4
    assert (engagement["engaged"], engagement["mean"]) == (2, (18 + 100) / 4)


def test_opens_by_weekday_and_hour_in_the_contacts_own_time(workspace):
    new_yorker = contact(workspace, "ny", timezone="America/New_York")
    # Monday 8 June 13:00 UTC is 09:00 in New York.
    event(new_yorker, "message_opened", dt.datetime(2026, 6, 8, 13, tzinfo=dt.UTC), channel="email")
    no_zone = contact(workspace, "nozone", timezone="")
    # Sunday 22:30 UTC is Monday 00:30 in Copenhagen, the workspace's zone.
    event(no_zone, "message_opened", dt.datetime(2026, 6, 7, 22, 30, tzinfo=dt.UTC), channel="push")
    unknown = contact(workspace, "mars")
    Contact.objects.filter(pk=unknown.pk).update(timezone="Mars/Olympus")
    event(unknown, "message_opened", dt.datetime(2026, 6, 12, 7, 15, tzinfo=dt.UTC))
    event(new_yorker, "message_clicked", dt.datetime(2026, 6, 8, 13, tzinfo=dt.UTC))
    event(new_yorker, "message_opened", NOW + dt.timedelta(hours=1))  # not yet
    send_hour = insight.compute_insight(workspace, NOW)["send_hour"]
    opens = send_hour["opens"]
    assert opens[0][9] == 1 and opens[0][0] == 1
    assert opens[4][9] == 1  # Friday 07:15 UTC, 09:15 in Copenhagen
    assert sum(map(sum, opens)) == 3
    assert sorted(send_hour["channels"]) == ["email", "push"]
    assert (
        send_hour["channels"]["email"][0][9] == 1
        and sum(map(sum, send_hour["channels"]["push"])) == 1
    )


def test_channel_reach_and_overlap(workspace):
    people = [contact(workspace, name) for name in ("both", "email", "push", "none")]
    for person, consents in zip(
        people,
        (
            {"email": "subscribed", "sms": "subscribed"},
            {"email": "subscribed", "sms": "unsubscribed"},
            {"push": "subscribed"},
            {"email": "unknown"},
        ),
        strict=True,
    ):
        for channel, status in consents.items():
            Consent.objects.create(
                workspace=workspace, contact=person, channel=channel, status=status
            )
    reach = insight.compute_insight(workspace, NOW)["reach"]
    assert reach["contacts"] == 4
    assert reach["unreachable"] == 1 and reach["reachable"] == 3
    assert reach["channels"] == {"email": 2, "sms": 1, "push": 1}
    assert sorted((c["channels"], c["contacts"]) for c in reach["combinations"]) == [
        (["email"], 1),
        (["email", "sms"], 1),
        (["push"], 1),
    ]


def test_another_workspace_sees_nothing_of_this_one(customers, workspace, other_workspace):
    data = insight.compute_insight(other_workspace, NOW)
    assert cells(data) == {(5, 1): (1, 999.0)}  # the stranger only
    assert data["contacts"] == 1
    assert CustomerRfm.objects.filter(workspace=other_workspace).count() == 1


def test_refresh_stores_a_snapshot_and_keeps_the_latest_few(customers, workspace):
    for n in range(insight.SNAPSHOTS_KEPT + 2):
        snapshot = insight.refresh_insight(workspace.pk, NOW + dt.timedelta(minutes=n))
    assert InsightSnapshot.objects.filter(workspace=workspace).count() == insight.SNAPSHOTS_KEPT
    latest = insight.latest_snapshot(workspace)
    assert latest == snapshot
    assert latest.data["rfm"]["customers"] == 8
    assert latest.computed_at == NOW + dt.timedelta(minutes=insight.SNAPSHOTS_KEPT + 1)


def test_the_beat_task_refreshes_every_workspace(customers, workspace, other_workspace):
    from apps.reporting.tasks import refresh_insight_task

    refresh_insight_task.delay()
    assert InsightSnapshot.objects.filter(workspace=workspace).count() == 1
    assert InsightSnapshot.objects.filter(workspace=other_workspace).count() == 1


# Saving cells as segments ---------------------------------------------------------------


@pytest.fixture
def live_customers(workspace):
    """The customers fixture's RFM cells, around the real clock (segments evaluate their
    rules now); purchases half a day away from every boundary."""
    now = timezone.now()
    history = {
        "ann": [1, 5, 10, 20, 25],
        "bob": [2],
        "cy": [40, 60],
        "dee": [100, 200, 300],
        "eve": list(range(400, 410)),
        "fay": [200],
        "hal": [300, 5],
        "kim": [3, 8, 12, 15, 18, 22, 26, 28, 29, 29.4, 1.5],
    }
    people = {name: contact(workspace, name) for name in [*history, "gus"]}
    for name, days in history.items():
        for day in days:
            event(people[name], "purchase", days_ago(day + 0.5, now), revenue=10)
    return people


def test_each_cell_saved_as_a_segment_selects_exactly_its_contacts(live_customers, workspace):
    insight.refresh_insight(workspace.pk)
    counted = {}
    for row in CustomerRfm.objects.filter(workspace=workspace):
        counted.setdefault(insight.cell_key(row.recency, row.frequency), set()).add(row.contact_id)
    assert counted.keys() == {"r5f4", "r5f1", "r4f2", "r3f3", "r1f5", "r2f1", "r5f2", "r5f5"}
    everyone = Contact.objects.filter(workspace=workspace).values_list("pk", flat=True)
    for recency in insight.SCORES:
        for frequency in insight.SCORES:
            key = insight.cell_key(recency, frequency)
            saved = insight.save_rfm_selection(workspace, insight.rfm_selection(key))
            members = segments.matching_contacts(workspace, saved.segment.rule, everyone)
            assert members == counted.get(key, set()), key
    assert insight.save_rfm_selection(workspace, insight.rfm_selection("r5f4")).created is False


def test_a_group_saved_as_a_segment_selects_all_its_cells(live_customers, workspace):
    insight.refresh_insight(workspace.pk)
    saved = insight.save_rfm_selection(workspace, insight.rfm_selection("potential_loyalists"))
    assert saved.segment.name == "RFM Potential loyalists"
    assert len(saved.segment.rule["any"]) == 4
    everyone = Contact.objects.filter(workspace=workspace).values_list("pk", flat=True)
    members = segments.matching_contacts(workspace, saved.segment.rule, everyone)
    assert members == {live_customers["cy"].pk, live_customers["hal"].pk}


def test_cell_rule_reads_like_the_definition():
    assert insight.rfm_cell_rule(4, 3, "purchase") == {
        "all": [
            {"event": "purchase", "within_days": 90},
            {"not": {"event": "purchase", "within_days": 30}},
            {"event": "purchase", "count": {"gte": 3, "lte": 4}},
        ]
    }
    assert insight.rfm_cell_rule(5, 1, "order")["all"] == [
        {"event": "order", "within_days": 30},
        {"event": "order", "count": {"eq": 1}},
    ]
    assert insight.rfm_cell_rule(1, 5, "order")["all"] == [
        {"not": {"event": "order", "within_days": 365}},
        {"event": "order", "count": {"gte": 10}},
    ]
    assert insight.rfm_selection("r6f1") is None and insight.rfm_selection("vips") is None


def test_several_purchase_events_save_a_static_list_instead(live_customers, workspace):
    AttributionSettings.objects.create(
        workspace=workspace, conversion_events=["purchase", "renewal"]
    )
    event(live_customers["gus"], "renewal", timezone.now() - dt.timedelta(days=2))
    insight.refresh_insight(workspace.pk)
    saved = insight.save_rfm_selection(workspace, insight.rfm_selection("r5f1"))
    assert saved.segment is None
    members = set(saved.contact_list.memberships.values_list("contact__external_id", flat=True))
    assert members == {"bob", "gus"}
    assert saved.contact_list.name.startswith("RFM R5 F1: New customers (")
