"""The marketer's segment pages: the list, the builder (a rule posted as JSON, checked as
the API checks it) with its live preview, and the segment page with the rule in words,
size over time, members, refresh, export and delete."""

import csv
import datetime as dt
import io
import json
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.contacts.models import Contact
from apps.segments import services
from apps.segments.forms import builder_config, describe_rule
from apps.segments.models import Segment, SegmentMembership, SegmentSize
from tests.contacts.factories import ContactFactory, ContactListFactory, EventFactory

HTMX = {"HTTP_HX_REQUEST": "true"}
PROS = {"attr": "plan", "op": "eq", "value": "pro"}
PRO_BUYERS = {"all": [PROS, {"event": "purchase", "count": {"gte": 1}}]}


def shown_member_ids(response) -> list[int]:
    return [int(pk) for pk in re.findall(r'<tr id="member-(\d+)"', response.content.decode())]


def json_script(response, element_id: str):
    """The value of a {{ …|json_script }} element of the page."""
    content = response.content.decode()
    found = re.search(rf'<script id="{element_id}" type="application/json">(.*?)</script>',
                      content, re.S)  # fmt: skip
    assert found, f"no #{element_id} on the page"
    return json.loads(found.group(1))


@pytest.fixture
def shop(workspace):
    """Acme's customers: two pros who bought, a pro who did not, a free plan who bought."""
    ann = ContactFactory(workspace=workspace, first_name="Ann", email="ann@acme.test",
                         attributes={"plan": "pro", "seats": 12, "beta": True,
                                     "renews_on": "2026-09-01", "tags": ["vip"]})  # fmt: skip
    bo = ContactFactory(workspace=workspace, first_name="Bo", email="bo@acme.test",
                        attributes={"plan": "pro", "seats": 3})  # fmt: skip
    cy = ContactFactory(workspace=workspace, first_name="Cy", email="cy@acme.test",
                        attributes={"plan": "pro"})  # fmt: skip
    dee = ContactFactory(workspace=workspace, first_name="Dee", email="dee@acme.test",
                         attributes={"plan": "free"})  # fmt: skip
    now = timezone.now()
    EventFactory(contact=ann, name="purchase", properties={"amount": 150}, occurred_at=now)
    EventFactory(contact=ann, name="purchase", properties={"amount": 120},
                 occurred_at=now - dt.timedelta(days=3))  # fmt: skip
    EventFactory(contact=bo, name="purchase", properties={"amount": 40}, occurred_at=now)
    EventFactory(contact=dee, name="purchase", properties={"amount": 500}, occurred_at=now)
    EventFactory(contact=cy, name="page_viewed")
    EventFactory(contact=cy, name="signed_up")
    return {"ann": ann, "bo": bo, "cy": cy, "dee": dee}


@pytest.fixture
def pro_buyers(workspace, shop, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        return services.create_segment(workspace, "Pro buyers", PRO_BUYERS)


# The builder ---------------------------------------------------------------------------


def test_marketer_creates_a_segment_from_the_rule_posted_as_json(
    workspace, shop, marketer, client_for, django_capture_on_commit_callbacks
):
    client = client_for(marketer)
    with django_capture_on_commit_callbacks(execute=True):
        data = {"name": "Pro buyers", "description": "Paying pros", "rule": json.dumps(PRO_BUYERS)}
        response = client.post(reverse("segments:create"), data)
    segment = Segment.objects.get()
    assert response.status_code == 302
    assert response.url == reverse("segments:detail", args=[segment.pk])
    assert (segment.name, segment.slug, segment.description) == (
        "Pro buyers", "pro-buyers", "Paying pros")  # fmt: skip
    assert segment.rule == PRO_BUYERS
    assert segment.created_by == marketer
    assert segment.member_count == 2  # the first refresh ran once the save committed
    members = SegmentMembership.objects.filter(segment=segment).values_list("contact_id", flat=True)
    assert set(members) == {shop["ann"].pk, shop["bo"].pk}
    page = client.get(response.url).content.decode()
    assert "The segment Pro buyers was saved." in page


def test_marketer_edits_the_name_and_the_rule(
    pro_buyers, shop, marketer, client_for, django_capture_on_commit_callbacks
):
    client = client_for(marketer)
    form = client.get(reverse("segments:edit", args=[pro_buyers.pk]))
    assert form.status_code == 200
    assert json.loads(form.context["form"]["rule"].value()) == PRO_BUYERS
    bought_big = {"event": "purchase", "where": [{"prop": "amount", "op": "gt", "value": 100}]}
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("segments:edit", args=[pro_buyers.pk]), {
            "name": "Big buyers", "rule": json.dumps(bought_big)})  # fmt: skip
    assert response.status_code == 302
    pro_buyers.refresh_from_db()
    assert (pro_buyers.name, pro_buyers.slug, pro_buyers.rule) == ("Big buyers", "pro-buyers",
                                                                   bought_big)  # fmt: skip
    assert pro_buyers.description == ""
    assert pro_buyers.member_count == 2  # Ann (150, 120) and Dee (500)


def test_a_bad_rule_shows_every_problem_and_saves_nothing(workspace, marketer, client_for):
    client = client_for(marketer)
    bad = {"any": [{"attr": "plan", "op": "like", "value": "p"},
                   {"event": "purchase", "count": {"gte": -1}}, {"list": "nope"}]}  # fmt: skip
    response = client.post(reverse("segments:create"), {"name": "Bad", "rule": json.dumps(bad)})
    assert response.status_code == 200
    problems = response.context["problems"]
    assert len(problems) == 3
    assert problems[0].startswith("rule.any[0].op: unknown op 'like'")
    assert problems[1] == "rule.any[1].count.gte: a whole number, 0 or more."
    assert problems[2] == "rule.any[2].list: there is no list 'nope'."
    content = response.content.decode()
    for problem in ("rule.any[0].op: unknown op", "rule.any[1].count.gte: a whole number",
                    "rule.any[2].list: there is no list"):  # fmt: skip
        assert problem in content.replace("&#x27;", "'")
    # The builder starts again from the rule as posted, so nothing typed is lost.
    assert json.loads(response.context["form"]["rule"].value()) == bad
    assert Segment.objects.count() == 0


def test_text_that_is_not_json_is_refused(workspace, marketer, client_for):
    response = client_for(marketer).post(reverse("segments:create"),
                                         {"name": "Broken", "rule": "{all: ["})  # fmt: skip
    assert response.status_code == 200
    assert response.context["problems"] == ["Enter a valid JSON."]
    assert Segment.objects.count() == 0


def test_a_bad_rule_leaves_a_saved_segment_as_it_was(pro_buyers, marketer, client_for):
    url = reverse("segments:edit", args=[pro_buyers.pk])
    cycle = {"segment": "pro-buyers"}
    response = client_for(marketer).post(url, {"name": "Renamed", "rule": json.dumps(cycle)})
    assert response.status_code == 200
    assert response.context["problems"] == [
        "rule.segment: a cycle of segments: pro-buyers → pro-buyers."
    ]
    pro_buyers.refresh_from_db()
    assert (pro_buyers.name, pro_buyers.rule) == ("Pro buyers", PRO_BUYERS)


def test_analyst_reads_segments_but_the_builder_is_for_editors(pro_buyers, analyst, client_for):
    client = client_for(analyst)
    page = client.get(reverse("segments:detail", args=[pro_buyers.pk]))
    assert page.status_code == 200
    content = page.content.decode()
    for action in ("segments:edit", "segments:refresh", "segments:delete"):
        assert reverse(action, args=[pro_buyers.pk]) not in content
    assert reverse("segments:create") not in client.get(reverse("segments:list")).content.decode()
    assert client.get(reverse("segments:create")).status_code == 403
    assert client.get(reverse("segments:edit", args=[pro_buyers.pk])).status_code == 403


# The live preview ----------------------------------------------------------------------


def preview(client, rule):
    return client.post(reverse("segments:preview"), {"rule": json.dumps(rule)}, **HTMX)


def test_preview_answers_the_count_and_the_newest_matches(workspace, shop, marketer, client_for):
    response = preview(client_for(marketer), PRO_BUYERS)
    assert response.status_code == 200
    assert [t.name for t in response.templates] == ["segments/partials/segment_preview.html"]
    content = response.content.decode()
    assert 'data-count="2"' in content
    links = re.findall(r'href="/contacts/(\d+)/"', content)
    assert links == [str(shop["bo"].pk), str(shop["ann"].pk)]
    assert Segment.objects.count() == 0  # nothing is saved by previewing


def test_preview_shows_ten_of_many(workspace, marketer, client_for):
    newest = ContactFactory.create_batch(12, workspace=workspace, attributes={"plan": "pro"})[::-1]
    content = preview(client_for(marketer), PROS).content.decode()
    assert 'data-count="12"' in content
    assert re.findall(r'href="/contacts/(\d+)/"', content) == [str(c.pk) for c in newest[:10]]


def test_preview_lists_the_problems_instead(workspace, marketer, client_for):
    client = client_for(marketer)
    content = preview(client, {"all": [{"attr": "seats", "op": "gt", "value": "ten"}]})
    content = content.content.decode()
    assert "data-count" not in content
    assert re.findall(r"<li data-problem>(.*?)</li>", content) == [
        "rule.all[0].value: gt needs a number."
    ]
    content = client.post(reverse("segments:preview"), {"rule": ""}, **HTMX).content.decode()
    assert re.findall(r"<li data-problem>(.*?)</li>", content) == ["Build a rule first."]


def test_an_empty_rule_matches_every_contact(workspace, shop, marketer, client_for):
    content = preview(client_for(marketer), {"all": []}).content.decode()
    assert f'data-count="{Contact.objects.count()}"' in content


# What the workspace has seen -------------------------------------------------------------


def test_known_attributes_are_the_newest_contacts_keys_with_their_usual_type(
    workspace, shop, other_workspace
):
    ContactFactory(workspace=other_workspace, attributes={"secret": 1})
    ContactFactory(workspace=workspace, attributes={"seats": "many"})  # one odd value
    known = {a.name: a.type for a in services.known_attributes(workspace)}
    assert known == {"plan": "text", "seats": "number", "beta": "boolean",
                     "renews_on": "date", "tags": "list"}  # fmt: skip


def test_known_attributes_sample_only_the_newest_contacts(workspace, shop, monkeypatch):
    monkeypatch.setattr(services, "ATTRIBUTE_SAMPLE_CONTACTS", 2)
    ContactFactory(workspace=workspace, attributes={"loyalty": 3})
    # The newest two: this one and Dee (plan); Ann's seats, beta and tags are older.
    assert {a.name for a in services.known_attributes(workspace)} == {"loyalty", "plan"}


def test_known_event_names_are_every_name_once_in_order(workspace, shop, other_workspace):
    EventFactory(contact=ContactFactory(workspace=other_workspace), name="secret_event")
    assert services.known_event_names(workspace) == ["page_viewed", "purchase", "signed_up"]
    assert services.known_event_names(workspace, limit=2) == ["page_viewed", "purchase"]
    assert services.known_event_names(other_workspace) == ["secret_event"]


def test_builder_offers_what_the_workspace_has_seen(pro_buyers, shop, marketer, client_for):
    ContactListFactory(workspace=pro_buyers.workspace, name="Newsletter", slug="newsletter")
    Segment.objects.create(workspace=pro_buyers.workspace, name="VIP", slug="vip", rule=PROS)
    ContactFactory(workspace=pro_buyers.workspace, attributes={"email": "shadowed@x.test"})
    response = client_for(marketer).get(reverse("segments:edit", args=[pro_buyers.pk]))
    config = json_script(response, "segment-builder-config")
    fields = {f["name"]: (f["type"], f["builtin"]) for f in config["fields"]}
    assert fields["plan"] == ("text", False)
    assert fields["seats"] == ("number", False)
    assert fields["email"] == ("text", True)  # the built-in field, not the attribute
    assert fields["created_at"] == ("date", True)
    assert config["events"] == ["page_viewed", "purchase", "signed_up"]
    assert config["lists"] == [{"slug": "newsletter", "name": "Newsletter"}]
    assert config["segments"] == [{"slug": "vip", "name": "VIP"}]  # never itself
    assert config["opsByType"]["date"][0] == "within_last_days"
    assert config["labels"]["addCondition"] == "Add condition"
    assert '<script type="module" src="/static/js/segment_builder.js">' in response.content.decode()


def test_every_op_the_builder_offers_is_one_the_rules_accept(workspace):
    """The builder never offers a comparison the server would refuse for that field."""
    config = builder_config(workspace)
    values = {"number": 1, "text": "x", "date": "2025-01-01", "list": ["x"], "boolean": True}
    for field in config["fields"]:
        for op in config["opsByType"][field["type"]]:
            rule = {"attr": field["name"], "op": op}
            if op not in ("exists", "not_exists"):
                kind = ("list" if op in ("in", "not_in") else "number"
                        if op in ("gt", "gte", "lt", "lte", "within_last_days") else "date"
                        if op in ("before", "after") else "text")  # fmt: skip
                rule["value"] = values[kind]
            assert services.problems_in(workspace, rule) == [], rule


# The segment page ----------------------------------------------------------------------


def test_the_rule_reads_as_words():
    rule = {"all": [
        PROS,
        {"event": "purchase", "count": {"gte": 2}, "within_days": 30,
         "where": [{"prop": "amount", "op": "gt", "value": 100}]},
    ]}  # fmt: skip
    assert describe_rule(rule) == (
        "plan equals pro AND purchase at least 2 times in the last 30 days where amount > 100"
    )
    assert describe_rule(PRO_BUYERS) == "plan equals pro AND purchase at least once"
    nested = {"all": [
        {"any": [{"attr": "country", "op": "in", "value": ["DK", "SE"]}, {"segment": "vip"}]},
        {"not": {"list": "optout"}},
        {"consent": "email"},
        {"attr": "created_at", "op": "within_last_days", "value": 7},
        {"attr": "phone", "op": "exists"},
    ]}  # fmt: skip
    assert describe_rule(nested, list_names={"optout": "Opted out"},
                         segment_names={"vip": "VIP"}) == (
        "(country is one of DK, SE OR in the segment VIP) AND NOT in the list Opted out "
        "AND Email consent is subscribed AND created is within the last 7 days "
        "AND phone is set"
    )  # fmt: skip
    assert describe_rule({"all": []}) == "every contact"


def test_segment_page_shows_the_rule_count_and_what_uses_it(
    pro_buyers, workspace, marketer, client_for
):
    vip = ContactListFactory(workspace=workspace, name="VIP customers", slug="vip")
    loyal_rule = {"all": [{"segment": "pro-buyers"}, {"list": vip.slug}]}
    user = Segment.objects.create(workspace=workspace, name="Loyal", slug="loyal", rule=loyal_rule)
    client = client_for(marketer)
    content = client.get(reverse("segments:detail", args=[pro_buyers.pk])).content.decode()
    assert "plan equals pro AND purchase at least once" in content
    assert '<div class="value" id="member-count">2</div>' in content
    assert f'href="{reverse("segments:detail", args=[user.pk])}">Loyal</a>' in content
    journeys = re.search(r'<div id="segment-journeys">(.*?)</div>', content, re.S).group(1)
    assert "No journey uses this segment." in journeys
    assert services.journeys_using(pro_buyers) == []
    assert 'aria-current="page">Segments<' in content
    loyal = client.get(reverse("segments:detail", args=[user.pk])).content.decode()
    assert "in the segment Pro buyers AND in the list VIP customers" in loyal


def test_size_over_time_is_charted_with_every_point_and_exported_as_csv(
    pro_buyers, marketer, client_for
):
    SegmentSize.objects.filter(segment=pro_buyers).delete()
    start = dt.datetime(2025, 3, 1, 6, 0, tzinfo=dt.UTC)
    for day, size in enumerate([3, 5, 4]):
        SegmentSize.objects.create(segment=pro_buyers, size=size,
                                   measured_at=start + dt.timedelta(days=day))  # fmt: skip
    client = client_for(marketer)
    response = client.get(reverse("segments:detail", args=[pro_buyers.pk]))
    figure = json_script(response, "segment-size-chart-data")
    (trace,) = figure["data"]
    assert trace["y"] == [3, 5, 4]
    # Times on the chart are the workspace's (Europe/Copenhagen: UTC+1 in March).
    assert trace["x"] == ["2025-03-01T07:00:00", "2025-03-02T07:00:00", "2025-03-03T07:00:00"]
    content = response.content.decode()
    assert '<script src="/static/vendor/plotly/plotly.min.js" defer></script>' in content
    assert reverse("segments:size_csv", args=[pro_buyers.pk]) in content

    export = client.get(reverse("segments:size_csv", args=[pro_buyers.pk]))
    assert export["Content-Type"] == "text/csv; charset=utf-8"
    assert 'filename="segment-pro-buyers-size.csv"' in export["Content-Disposition"]
    text = b"".join(export.streaming_content).decode().lstrip("\ufeff")
    assert list(csv.reader(io.StringIO(text))) == [
        ["measured_at", "size"],
        ["2025-03-01T06:00:00+00:00", "3"],
        ["2025-03-02T06:00:00+00:00", "5"],
        ["2025-03-03T06:00:00+00:00", "4"],
    ]


def test_a_segment_without_measurements_says_so(workspace, marketer, client_for):
    segment = Segment.objects.create(workspace=workspace, name="New", slug="new", rule=PROS)
    content = client_for(marketer).get(reverse("segments:detail", args=[segment.pk]))
    content = content.content.decode()
    assert "segment-size-chart-data" not in content
    assert "plotly.min.js" not in content
    assert "No measurements yet" in content
    assert "Counting for the first time" in content


def test_members_are_listed_newest_first_fifty_a_page(
    workspace, marketer, client_for, django_capture_on_commit_callbacks
):
    contacts = ContactFactory.create_batch(120, workspace=workspace, attributes={"plan": "pro"})
    newest_first = [c.pk for c in contacts[::-1]]
    with django_capture_on_commit_callbacks(execute=True):
        segment = services.create_segment(workspace, "Pros", PROS)
    client = client_for(marketer)
    url = reverse("segments:detail", args=[segment.pk])
    first = client.get(url)
    assert shown_member_ids(first) == newest_first[:50]
    assert f'href="{url}?after={newest_first[49]}"' in first.content.decode()
    second = client.get(url, {"after": newest_first[49]}, **HTMX)
    assert [t.name for t in second.templates] == ["segments/partials/segment_members.html"]
    assert shown_member_ids(second) == newest_first[50:100]
    third = client.get(url, {"after": newest_first[99]}, **HTMX)
    assert shown_member_ids(third) == newest_first[100:]
    assert "?after=" not in third.content.decode()
    assert "First page" in third.content.decode()


def test_export_members_links_to_the_contacts_export_filtered_by_segment(
    pro_buyers, shop, workspace, other_workspace, marketer, client_for, api_key_for
):
    client = client_for(marketer)
    content = client.get(reverse("segments:detail", args=[pro_buyers.pk])).content.decode()
    export_url = f"{reverse('contacts:export')}?segment=pro-buyers"
    assert f'href="{export_url}"' in content
    response = client.get(export_url)
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert sorted(row[2] for row in rows[1:]) == ["ann@acme.test", "bo@acme.test"]
    # The same filter in the API, and a segment of the same slug elsewhere adds nobody.
    Segment.objects.create(workspace=other_workspace, name="Pro buyers", slug="pro-buyers",
                           rule=PROS)  # fmt: skip
    api = api_key_for(workspace, ["read"])
    found = api.get(reverse("api:contact-list"), {"segment": "pro-buyers"}).json()["results"]
    assert sorted(c["email"] for c in found) == ["ann@acme.test", "bo@acme.test"]
    assert api.get(reverse("api:contact-list"), {"segment": "nope"}).json()["results"] == []


def test_refresh_now_recounts_the_members(
    pro_buyers, shop, marketer, client_for, django_capture_on_commit_callbacks
):
    # A purchase written straight to the table: no real-time update, so only a refresh sees it.
    EventFactory(contact=shop["cy"], name="purchase")
    url = reverse("segments:refresh", args=[pro_buyers.pk])
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client_for(marketer).post(url)
    assert response.status_code == 302
    pro_buyers.refresh_from_db()
    assert pro_buyers.member_count == 2  # queued, not run inside the request
    assert len(callbacks) == 1
    callbacks[0]()
    pro_buyers.refresh_from_db()
    assert pro_buyers.member_count == 3
    assert list(pro_buyers.sizes.values_list("size", flat=True)) == [2, 3]
    assert client_for(marketer).get(url).status_code == 405


def test_delete_is_refused_while_another_segment_uses_it(
    pro_buyers, workspace, marketer, client_for
):
    loyal = Segment.objects.create(workspace=workspace, name="Loyal", slug="loyal",
                                   rule={"segment": "pro-buyers"})  # fmt: skip
    client = client_for(marketer)
    url = reverse("segments:delete", args=[pro_buyers.pk])
    confirm = client.get(url).content.decode()
    assert "cannot be deleted" in confirm
    assert "Delete segment" not in confirm  # no button to press
    response = client.post(url, follow=True)
    assert response.redirect_chain == [(reverse("segments:detail", args=[pro_buyers.pk]), 302)]
    assert "Pro buyers was not deleted: the segment Loyal uses it." in response.content.decode()
    assert Segment.objects.filter(pk=pro_buyers.pk).exists()

    assert (
        "Delete segment" in client.get(reverse("segments:delete", args=[loyal.pk])).content.decode()
    )
    response = client.post(reverse("segments:delete", args=[loyal.pk]), follow=True)
    assert response.redirect_chain == [(reverse("segments:list"), 302)]
    assert "The segment Loyal was deleted." in response.content.decode()
    assert not Segment.objects.filter(pk=loyal.pk).exists()


# The list, and what pages cost --------------------------------------------------------------


def test_segment_list_shows_name_members_and_refresh(pro_buyers, workspace, marketer, client_for):
    Segment.objects.create(workspace=workspace, name="Awaiting", slug="awaiting", rule=PROS)
    content = client_for(marketer).get(reverse("segments:list")).content.decode()
    rows = re.findall(r'<tr id="segment-(\d+)">(.*?)</tr>', content, re.S)
    assert [Segment.objects.get(pk=pk).name for pk, _row in rows] == ["Awaiting", "Pro buyers"]
    awaiting, pros = (row for _pk, row in rows)
    assert "counting…" in awaiting
    assert '<td class="numeric">2</td>' in pros
    refreshed = Segment.objects.get(name="Pro buyers").refreshed_at.isoformat()
    assert f'<time datetime="{refreshed}">' in pros
    assert reverse("segments:create") in content


def test_segment_list_query_count_is_bounded(
    workspace, marketer, client_for, django_assert_max_num_queries
):
    for n in range(30):
        Segment.objects.create(workspace=workspace, name=f"S{n}", slug=f"s{n}", rule=PROS)
    client = client_for(marketer)
    with django_assert_max_num_queries(5):
        assert client.get(reverse("segments:list")).status_code == 200


def test_segment_page_query_count_is_bounded(
    workspace, marketer, client_for, django_assert_max_num_queries,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    ContactFactory.create_batch(80, workspace=workspace, attributes={"plan": "pro"})
    ContactListFactory(workspace=workspace, slug="vip")
    Segment.objects.create(workspace=workspace, name="Other", slug="other", rule=PROS)
    rule = {"all": [PROS, {"segment": "other"}, {"not": {"list": "vip"}}]}
    with django_capture_on_commit_callbacks(execute=True):
        segment = services.create_segment(workspace, "Pros", rule)
    for n in range(40):
        SegmentSize.objects.create(segment=segment, size=n)
    client = client_for(marketer)
    # 11: the page also lists the journeys using the segment (one query, however many).
    with django_assert_max_num_queries(11):
        response = client.get(reverse("segments:detail", args=[segment.pk]))
    assert len(shown_member_ids(response)) == 50
