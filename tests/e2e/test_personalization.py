"""The personalization demo in a real browser: orchestra-personalize.js fills two slots
from the live server, the content follows the chosen contact, clicks are reported, and
a page whose key is refused keeps its own content."""

import time

import pytest
from playwright.sync_api import expect

from apps.contacts.models import Event
from apps.personalization import services
from apps.personalization.models import ContentSlot
from tests.contacts.factories import ContactFactory
from tests.e2e.test_sign_in_and_keys import sign_in
from tests.personalization.factories import ContentSlotFactory, VariantFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def slots(workspace):
    services.forget_slots()
    hero = ContentSlotFactory(
        workspace=workspace, key="home-hero", name="A hero",
        default_content={"html": "<h2 id='hero'>Hello, visitor</h2>"},
    )  # fmt: skip
    VariantFactory(slot=hero, name="pro", priority=10,
                   rule={"attr": "plan", "op": "eq", "value": "pro"},
                   content={"html": "<h2 id='hero'>Welcome back, pro</h2>"})  # fmt: skip
    banner = ContentSlotFactory(
        workspace=workspace, key="side-banner", name="B banner",
        default_content={"html": "<p id='banner'>Try Orchestra</p>"},
    )  # fmt: skip
    VariantFactory(slot=banner, name="danes", priority=5,
                   rule={"attr": "country", "op": "eq", "value": "DK"},
                   content={"html": "<p id='banner'>Hej fra København</p>"})  # fmt: skip
    ContactFactory(workspace=workspace, external_id="ann", first_name="Ann",
                   attributes={"plan": "pro", "country": "DK"})  # fmt: skip
    ContactFactory(workspace=workspace, external_id="bo", first_name="Bo",
                   attributes={"plan": "free", "country": "SE"})  # fmt: skip
    yield
    services.forget_slots()


def test_demo_fills_slots_per_contact_and_reports_clicks(page, live_server, owner, slots):
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    sign_in(page, live_server, "owner@acme.test")
    page.goto(f"{live_server.url}/personalize/demo/")
    page.click("#demo-create-key")
    hero = page.locator("#demo-slot-home-hero")
    banner = page.locator("#demo-slot-side-banner")
    expect(hero).to_have_text("Hello, visitor")
    expect(banner).to_have_text("Try Orchestra")

    page.select_option("#demo-contact", "ann")
    expect(hero).to_have_text("Welcome back, pro")
    expect(banner).to_have_text("Hej fra København")
    expect(page.locator('[data-demo-variant="home-hero"]')).to_have_text("pro")

    page.select_option("#demo-contact", "bo")
    expect(hero).to_have_text("Hello, visitor")
    expect(banner).to_have_text("Try Orchestra")
    expect(hero).to_have_attribute("data-orchestra-variant", "default")

    hero.click()
    deadline = time.monotonic() + 10
    while not Event.objects.filter(name="slot_clicked").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    clicked = Event.objects.get(name="slot_clicked")
    assert (clicked.contact.external_id, clicked.properties["slot"]) == ("bo", "home-hero")
    assert clicked.properties["variant"] == "default"
    assert Event.objects.filter(name="slot_impression").count() == 4  # twice each for ann and bo
    assert errors == []


def test_a_refused_key_leaves_the_pages_own_content(page, live_server, owner, slots):
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    sign_in(page, live_server, "owner@acme.test")
    page.goto(f"{live_server.url}/personalize/demo/?writeKey=orc_not-a-key")
    page.wait_for_selector("body[data-demo-filled]")
    expect(page.locator("#demo-slot-home-hero")).to_contain_text("The page's own content")
    assert Event.objects.filter(name="slot_impression").count() == 0
    assert errors == []


def test_variant_form_uses_the_segment_rule_builder(page, live_server, owner, workspace, slots):
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    hero = ContentSlot.objects.get(key="home-hero")
    sign_in(page, live_server, "owner@acme.test")
    page.goto(f"{live_server.url}/personalize/{hero.pk}/variants/new/")
    expect(page.locator("#segment-builder select, #segment-builder button").first).to_be_visible()
    expect(page.locator("#segment-preview [data-count]")).to_have_attribute("data-count", "2")
    page.fill("input[name=name]", "everyone")
    page.fill("input[name=priority]", "1")
    page.fill("input[name=title]", "For all")
    page.click("#variant-form button[type=submit]")
    expect(page.locator("#variant-table")).to_contain_text("everyone")
    variant = hero.variants.get(name="everyone")
    assert (variant.rule, variant.content) == ({}, {"title": "For all"})
    assert errors == []
