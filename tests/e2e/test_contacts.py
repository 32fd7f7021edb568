"""A marketer in a real browser: find a contact, open the customer 360 page, edit an
attribute, scroll the timeline until more loads (htmx), change consent (htmx)."""

import datetime as dt
import re

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from apps.contacts.choices import EventSource
from apps.contacts.models import AnonymousId, ConsentChange, Contact, ContactMerge
from apps.contacts.services.consent import set_consent
from apps.contacts.services.lists import add_to_list, create_list
from tests.contacts.factories import ContactFactory, EventFactory
from tests.e2e.test_sign_in_and_keys import sign_in

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# Where reviewers look for a picture of the contact page after a run.
SCREENSHOT = "/tmp/contact_page.png"  # noqa: S108


@pytest.fixture
def ann(workspace):
    """A customer with a history: 40 events, consent, lists, an anonymous id and a merge."""
    for n in range(12):
        ContactFactory(workspace=workspace, first_name=f"Person{n}")
    ann = ContactFactory(
        workspace=workspace, first_name="Ann", last_name="Berg", email="ann@acme.test",
        external_id="cus_1042", phone="+4520123456", locale="da-DK",
        attributes={"plan": "pro", "seats": 12, "newsletter": True, "renews_on": "2025-09-01"},
        last_seen_at=timezone.now() - dt.timedelta(hours=2),
    )  # fmt: skip
    start = timezone.now() - dt.timedelta(days=20)
    pages = ["/", "/pricing", "/features/journeys", "/blog/consent", "/checkout"]
    for n in range(40):
        at = start + dt.timedelta(hours=11 * n)
        if n % 8 == 7:
            purchase = {"order_id": f"A-{1000 + n}", "amount": 120 + n, "currency": "DKK"}
            EventFactory(contact=ann, name="purchase", occurred_at=at, properties=purchase)
        else:
            viewed = {"path": pages[n % 5], "referrer": "google"}
            EventFactory(contact=ann, name="page_viewed", occurred_at=at, properties=viewed,
                         source=EventSource.SEGMENT)  # fmt: skip
    set_consent(ann, "email", "subscribed", "import:spring-fair.csv")
    set_consent(ann, "push", "unsubscribed", "api")
    add_to_list(create_list(workspace, "VIP customers"), [ann.pk], EventSource.UI)
    create_list(workspace, "Newsletter")
    AnonymousId.objects.create(workspace=workspace, contact=ann, anonymous_id="a-9f2c41")
    ContactMerge.objects.create(workspace=workspace, contact=ann, merged_contact_id=17,
                                merged_anonymous_ids=["a-9f2c41"], events_moved=3,
                                source=EventSource.SEGMENT)  # fmt: skip
    return ann


def test_marketer_finds_edits_and_follows_a_contact(page, live_server, marketer, ann):
    sign_in(page, live_server, "marketer@acme.test")
    page.click("nav >> text=Contacts")
    expect(page.locator("h1")).to_have_text("Contacts")
    expect(page.locator("#contact-table tbody tr")).to_have_count(13)

    page.fill("input[name=q]", "ann")  # htmx filters as one types
    expect(page.locator("#contact-table tbody tr")).to_have_count(1)
    expect(page).to_have_url(re.compile(r"/contacts/\?q=ann&"))  # pushed: back works, links share
    page.click("#contact-table >> text=Ann Berg")

    expect(page.locator("h1")).to_have_text("Ann Berg")
    timeline = page.locator("#timeline .timeline-entry")
    expect(timeline).to_have_count(25)
    page.screenshot(path=SCREENSHOT, full_page=True)

    page.click("a:has-text('Edit')")
    row = page.locator("tr.attribute-row").filter(has=page.locator("input[value=seats]"))
    row.locator("input[name$='-value']").fill("15")
    page.fill("input[name=attributes-4-key]", "score")  # the first blank row
    page.fill("input[name=attributes-4-value]", "4,5")
    page.select_option("select[name=attributes-4-type]", "number")
    page.click("button:has-text('Save')")
    expect(page.locator(".messages")).to_contain_text("The contact was saved.")
    expect(page.locator("#attributes")).to_contain_text("4.5")
    ann.refresh_from_db()
    assert ann.attributes == {"plan": "pro", "seats": 15, "newsletter": True,
                              "renews_on": "2025-09-01", "score": 4.5}  # fmt: skip

    expect(timeline).to_have_count(25)
    page.locator(".timeline-more").scroll_into_view_if_needed()
    expect(timeline).to_have_count(40)
    expect(page.locator(".timeline-more")).to_have_count(0)

    sms = page.locator("#consent-sms")
    expect(sms.locator(".badge")).to_have_text("Unknown")
    sms.locator("select[name=status]").select_option("subscribed")
    sms.locator("button:has-text('Change')").click()
    expect(page.locator("#consent-sms .badge")).to_have_text("Subscribed")
    expect(page.locator(".consent-history")).to_contain_text("ui:marketer@acme.test")
    change = ConsentChange.objects.filter(contact=ann).latest("id")
    assert (change.channel, change.status, change.source) == (
        "sms",
        "subscribed",
        "ui:marketer@acme.test",
    )
    assert Contact.objects.get(pk=ann.pk).consents.get(channel="sms").status == "subscribed"
