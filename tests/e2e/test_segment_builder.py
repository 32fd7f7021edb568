"""A marketer in a real browser builds "plan equals pro AND purchased at least once" by
clicking, watches the live count follow each change (debounced htmx), saves, and lands
on the segment page with the right member count."""

import datetime as dt

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from apps.segments.models import Segment, SegmentMembership, SegmentSize
from tests.contacts.factories import ContactFactory, EventFactory
from tests.e2e.test_sign_in_and_keys import sign_in

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# Where reviewers look for pictures of the builder and the segment page after a run.
BUILDER_SCREENSHOT = "/tmp/segment_builder.png"  # noqa: S108
SEGMENT_SCREENSHOT = "/tmp/segment_page.png"  # noqa: S108


@pytest.fixture
def customers(workspace):
    """Six customers: three on the pro plan, of whom Ann and Eve have bought."""
    people = {
        "ann": {"plan": "pro", "seats": 12, "renews_on": "2026-01-31"},
        "bo": {"plan": "pro", "seats": 2},
        "eve": {"plan": "pro", "seats": 40, "beta": True},
        "cy": {"plan": "free"},
        "dan": {},
        "fay": {"plan": "free", "seats": 1},
    }
    contacts = {
        name: ContactFactory(workspace=workspace, first_name=name.title(),
                             email=f"{name}@acme.test", attributes=attributes)
        for name, attributes in people.items()
    }  # fmt: skip
    for name, amount in (("ann", 120), ("eve", 80), ("cy", 35), ("ann", 60)):
        EventFactory(contact=contacts[name], name="purchase", properties={"amount": amount})
    EventFactory(contact=contacts["bo"], name="page_viewed", properties={"path": "/pricing"})
    EventFactory(contact=contacts["dan"], name="signed_up")
    return contacts


def test_marketer_builds_a_segment_by_clicking(page, live_server, marketer, customers):
    sign_in(page, live_server, "marketer@acme.test")
    page.click("nav >> text=Segments")
    expect(page.locator("h1")).to_have_text("Segments")
    page.click("text=Build your first segment")
    expect(page.locator("h1")).to_have_text("New segment")

    count = page.locator("#segment-preview [data-count]")
    expect(count).to_have_text("6")  # no conditions yet: everyone
    page.fill("input[name=name]", "Pros who bought")
    page.fill("textarea[name=description]", "Paying customers on the pro plan.")

    page.click("button:has-text('Add condition')")
    condition = page.locator(".rule-condition").nth(0)
    condition.locator("select.rule-field").select_option("plan")
    expect(condition.locator(".rule-type")).to_have_text("text")  # the type seen on contacts
    condition.locator("select.rule-op").select_option("eq")
    condition.locator("input.rule-value").fill("pro")
    expect(count).to_have_text("3")

    page.click(".rule-root > .rule-group-actions >> text=Add condition")
    bought = page.locator(".rule-condition").nth(1)
    bought.locator("select.rule-kind").select_option("event")
    bought.locator("select.rule-event").select_option("purchase")
    expect(bought.locator("select.rule-count-op")).to_have_value("gte")
    expect(bought.locator("input.rule-number").first).to_have_value("1")
    expect(count).to_have_text("2")
    expect(page.locator("#segment-preview .preview-sample")).to_contain_text("Ann")
    expect(page.locator("#segment-preview .preview-sample")).to_contain_text("Eve")

    # A condition that cannot be counted yet is marked, and the count comes back with it.
    bought.locator("input.rule-number").first.fill("")
    expect(page.locator("#segment-preview [data-problem]")).to_contain_text("rule.all[1].count")
    expect(bought).to_have_class("rule-condition has-problem")
    bought.locator("input.rule-number").first.fill("1")
    expect(count).to_have_text("2")
    expect(bought).to_have_class("rule-condition")
    page.screenshot(path=BUILDER_SCREENSHOT, full_page=True)

    page.click("button:has-text('Save segment')")
    expect(page.locator("h1")).to_have_text("Pros who bought")
    expect(page.locator(".messages")).to_contain_text("The segment Pros who bought was saved.")
    expect(page.locator("#member-count")).to_have_text("2")
    expect(page.locator(".rule-words")).to_have_text("plan equals pro AND purchase at least once")
    expect(page.locator("#segment-members tbody tr")).to_have_count(2)
    expect(page.locator("#segment-journeys")).to_contain_text("No journey uses this segment.")

    segment = Segment.objects.get()
    assert segment.rule == {"all": [{"attr": "plan", "op": "eq", "value": "pro"},
                                    {"event": "purchase", "count": {"gte": 1}}]}  # fmt: skip
    members = SegmentMembership.objects.filter(segment=segment).values_list("contact", flat=True)
    assert set(members) == {customers["ann"].pk, customers["eve"].pk}

    # The refreshes of the past week, so the picture of the page shows a line.
    now = timezone.now()
    for days_ago, size in ((7, 1), (6, 1), (5, 2), (4, 1), (3, 2), (2, 3), (1, 2)):
        SegmentSize.objects.create(segment=segment, size=size,
                                   measured_at=now - dt.timedelta(days=days_ago))  # fmt: skip
    page.reload()
    expect(page.locator("#segment-size-chart .main-svg").first).to_be_visible()
    page.screenshot(path=SEGMENT_SCREENSHOT, full_page=True)
