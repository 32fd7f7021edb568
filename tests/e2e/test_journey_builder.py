"""A marketer in a real browser draws a journey on the canvas: drags five steps from the
palette, connects them port to port, sets each one up in the side panel, saves, sees the
step that is not ready marked on the canvas, fixes it, publishes; then another system
enrolls contacts through the API and the numbers appear on the steps. And: the welcome
series from the gallery, tested on a contact (its path lit up), then published."""

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from apps.accounts import services as accounts
from apps.channels.models import Template
from apps.contacts.choices import ConsentStatus
from apps.contacts.services.consent import set_consent
from apps.journeys.choices import JourneyStatus
from apps.journeys.models import OPEN_STATES, Enrollment, Journey
from tests.channels.factories import email_template
from tests.contacts.factories import ContactFactory, EventFactory
from tests.e2e.test_sign_in_and_keys import sign_in

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# Reviewers look at these after a run; the README's docs/images/journey_builder.png is a
# copy of journey_live.png.
SCREENSHOTS = Path("/tmp")  # noqa: S108
STATS_TIMEOUT = 15_000  # the canvas asks for numbers every 5 s


@pytest.fixture
def welcome_templates(workspace):
    return [email_template(workspace, slug) for slug in ("welcome-1", "welcome-2")]


@pytest.fixture
def subscribers(workspace):
    """Three contacts who consent to email."""
    people = []
    for name in ("Ann", "Bo", "Cy"):
        contact = ContactFactory(
            workspace=workspace, first_name=name, email=f"{name.lower()}@acme.test"
        )
        set_consent(contact, "email", ConsentStatus.SUBSCRIBED, "test")
        people.append(contact)
    return people


def node(page, node_id):
    return page.locator(f'#journey-canvas .drawflow-node[data-node-id="{node_id}"]')


def canvas_graph(page) -> dict:
    return page.evaluate("window.journeyBuilder.graph()")


def drop(page, node_type, x, y):
    """Drag a step from the palette onto the canvas at (x, y) of the canvas's box."""
    page.locator(f'#journey-palette .palette-item[data-node-type="{node_type}"]').drag_to(
        page.locator("#journey-canvas"), target_position={"x": x, "y": y}
    )


def connect(page, source, target, output=1):
    """Drag from the source's output port onto the target step."""
    node(page, source).locator(f".outputs .output_{output}").drag_to(node(page, target))


def open_panel(page, node_id):
    node(page, node_id).click()
    expect(page.locator(f'#journey-node-form[data-node-id="{node_id}"]')).to_be_visible()
    return page.locator("#journey-node-form")


def step_is_set_up(page):
    expect(page.locator("#node-form-problems")).to_contain_text("The step is set up.")


def test_marketer_draws_saves_fixes_publishes_and_watches_a_journey(
    page, live_server, marketer, workspace, welcome_templates, subscribers
):
    sign_in(page, live_server, "marketer@acme.test")
    page.goto(f"{live_server.url}/journeys/new/")
    page.click("#starter-blank button")
    expect(page.locator("#journey-canvas")).to_have_attribute("data-ready", "true")
    journey = Journey.objects.get()
    assert journey.status == JourneyStatus.DRAFT
    # A blank journey: the Entry and one exit.
    expect(page.locator("#journey-canvas .drawflow-node")).to_have_count(2)

    # Who enters: contacts enrolled through the API.
    page.locator("#journey-canvas .drawflow-node[data-entry]").click()
    page.locator("#journey-settings-form input[name=name]").fill("Onboarding")
    page.locator("#journey-settings-form input[name=entry_type][value=api]").check()
    expect(page.locator("#journey-canvas [data-entry] .jb-summary")).to_have_text(
        "enrolled through the API"
    )

    # Five steps dragged from the palette; the first is joined to the Entry by itself.
    # (The canvas shows the Entry and the exit along its top.)
    drop(page, "send", 130, 200)
    drop(page, "wait", 380, 200)
    drop(page, "goal", 620, 130)
    drop(page, "send", 620, 260)
    drop(page, "exit", 620, 380)
    graph = canvas_graph(page)
    assert [n["id"] for n in graph["nodes"]] == [
        "exit_1", "send_2", "wait_3", "goal_4", "send_5", "exit_6"
    ]  # fmt: skip
    expect(page.locator("#journey-canvas .drawflow-node")).to_have_count(7)

    # The blank journey's exit goes (selected, Delete key), and the Entry now starts at send_2.
    node(page, "exit_1").click()
    page.keyboard.press("Delete")
    expect(node(page, "exit_1")).to_have_count(0)
    page.locator("#journey-canvas [data-entry] .output_1").drag_to(node(page, "send_2"))
    assert canvas_graph(page)["start"] == "send_2"

    # Set up the steps in the side panel.
    form = open_panel(page, "send_2")
    form.locator("select[name=template]").select_option("welcome-1")
    step_is_set_up(page)
    expect(node(page, "send_2").locator(".jb-summary")).to_have_text("email · welcome-1")

    form = open_panel(page, "wait_3")
    form.locator("input[name=mode][value=until_event]").check()
    expect(form.locator("input[name=until_event]")).to_be_visible()
    form.locator("input[name=until_event]").fill("purchase")
    form.locator("input[name=timeout_0]").fill("3")
    form.locator("select[name=timeout_1]").select_option("days")
    step_is_set_up(page)
    # Waiting for an event gives the step two outputs: event and timeout.
    expect(node(page, "wait_3").locator(".outputs .output")).to_have_count(2)
    expect(node(page, "wait_3").locator(".jb-summary")).to_contain_text("until purchase")

    # Edges, port to port.
    connect(page, "send_2", "wait_3")
    connect(page, "wait_3", "goal_4", output=1)  # event
    connect(page, "wait_3", "send_5", output=2)  # timeout
    connect(page, "send_5", "exit_6")
    graph = canvas_graph(page)
    assert graph["edges"] == [
        {"from": "send_2", "to": "wait_3"},
        {"from": "wait_3", "to": "goal_4", "branch": "event"},
        {"from": "wait_3", "to": "send_5", "branch": "timeout"},
        {"from": "send_5", "to": "exit_6"},
    ]
    labels = page.locator("#journey-canvas text.jb-edge-label")
    expect(labels).to_have_text(["event", "timeout"])

    # Arranged automatically: layers left to right by distance from the Entry.
    page.click("#journey-toolbar [data-action=layout]")
    layout = canvas_graph(page)["layout"]
    columns = [layout[i][0] for i in ("entry", "send_2", "wait_3", "goal_4", "exit_6")]
    assert columns == sorted(set(columns))
    assert layout["goal_4"][0] == layout["send_5"][0]
    assert layout["goal_4"][1] < layout["send_5"][1]  # the event branch above the timeout

    # Saved with the second message not chosen: the problem is marked on that step.
    page.click("#journey-save")
    expect(node(page, "send_5")).to_have_class(re.compile(r"\bhas-problems\b"))
    expect(node(page, "send_5").locator(".jb-problems")).to_contain_text(
        "Name the template for email."
    )
    expect(page.locator("#journey-message")).to_contain_text("Not saved")
    journey.refresh_from_db()
    assert journey.draft["nodes"] == [{"id": "exit_1", "type": "exit"}]  # nothing saved
    page.screenshot(path=SCREENSHOTS / "journey_problem.png")

    # Fixed in the panel, saved.
    form = open_panel(page, "send_5")
    form.locator("select[name=template]").select_option("welcome-2")
    step_is_set_up(page)
    expect(node(page, "send_5")).not_to_have_class(re.compile(r"\bhas-problems\b"))
    page.keyboard.press("Escape")
    page.locator("#journey-canvas").click(position={"x": 5, "y": 5})
    page.keyboard.press("Control+s")
    expect(page.locator("#journey-message")).to_contain_text("Saved")
    journey.refresh_from_db()
    assert journey.draft["name"] == "Onboarding"
    assert journey.draft["entry"] == {"type": "api"}
    assert journey.draft["start"] == "send_2"
    assert {n["id"]: n for n in journey.draft["nodes"]}["send_5"]["template"] == "welcome-2"
    assert set(journey.draft["layout"]) == {"entry", "send_2", "wait_3", "goal_4", "send_5",
                                            "exit_6"}  # fmt: skip

    # Published (the page reloads as live).
    page.click("#journey-publish")
    expect(page.locator("#journey-status")).to_have_text("Live")
    journey.refresh_from_db()
    assert journey.status == JourneyStatus.LIVE
    assert journey.live_version.number == 1

    # Another system enrolls the three subscribers with an API key.
    _key, raw_key = accounts.create_api_key(workspace, "Shop", ["ingest"])
    for contact in subscribers:
        response = page.request.post(
            f"{live_server.url}/api/v1/journeys/{journey.pk}/enroll/",
            headers={"Authorization": f"Bearer {raw_key}"},
            data={"external_id": contact.external_id},
        )
        assert response.status == 201, response.text()
    assert Enrollment.objects.filter(journey=journey).count() == 3

    # The numbers come to the canvas by themselves.
    entered = node(page, "send_2").locator("[data-stat=entered] strong")
    expect(entered).to_have_text("3", timeout=STATS_TIMEOUT)
    expect(node(page, "wait_3").locator("[data-stat=waiting] strong")).to_have_text("3")
    expect(page.locator("#journey-canvas [data-entry] [data-stat=enrolled] strong")).to_have_text(
        "3"
    )
    expect(node(page, "goal_4").locator("[data-stat=rate]")).to_contain_text("0%")
    page.screenshot(path=SCREENSHOTS / "journey_live.png", full_page=True)

    # Paused, resumed, archived from the page (archiving asks first).
    page.click("#journey-pause")
    expect(page.locator("#journey-status")).to_have_text("Paused")
    expect(entered).to_have_text("3", timeout=STATS_TIMEOUT)  # a paused journey still counts
    page.click("#journey-resume")
    expect(page.locator("#journey-status")).to_have_text("Live")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#journey-archive")
    expect(page.locator("#journey-status")).to_have_text("Archived")
    journey.refresh_from_db()
    assert journey.status == JourneyStatus.ARCHIVED
    expect(page.locator("#journey-palette")).to_be_hidden()
    assert not Enrollment.objects.filter(journey=journey, state__in=OPEN_STATES).exists()


def test_marketer_tests_the_welcome_series_on_a_contact_and_publishes_it(
    page, live_server, marketer, workspace
):
    dana = ContactFactory(workspace=workspace, first_name="Dana", email="dana@acme.test")
    set_consent(dana, "email", ConsentStatus.SUBSCRIBED, "test")
    EventFactory(contact=dana, name="signed_up")

    sign_in(page, live_server, "marketer@acme.test")
    page.goto(f"{live_server.url}/journeys/new/")
    page.click("#starter-welcome button")
    expect(page.locator("#journey-canvas")).to_have_attribute("data-ready", "true")
    journey = Journey.objects.get()
    assert journey.name == "Welcome series"
    assert Template.objects.filter(workspace=workspace).count() >= 3  # placeholders made
    # Laid out by the canvas: every step drawn, every edge drawn.
    steps = len(journey.draft["nodes"])
    expect(page.locator("#journey-canvas .drawflow-node:not([data-entry])")).to_have_count(steps)
    edges = len(journey.draft["edges"]) + 1  # and the Entry's
    expect(page.locator("#journey-canvas svg.connection")).to_have_count(edges)

    # The forecast of the first week: Dana signed up in the last 7 days, so one enters.
    page.click("#journey-toolbar [data-action=forecast]")
    expect(page.locator("#journey-canvas [data-entry] .jb-forecast")).to_have_text(
        "≈ 1 in the first week"
    )
    expect(node(page, "welcome").locator(".jb-forecast")).to_have_text("≈ 1 in the first week")
    expect(page.locator("#journey-toolbar .jb-forecast-basis")).not_to_be_empty()

    page.click("#journey-toolbar [data-action=test]")
    page.locator("#journey-test-panel input[name=q]").fill("dana")
    page.click("#journey-test-contacts button:has-text('Dana')")
    expect(page.locator("#journey-test-result .test-path li").first).to_be_visible()
    path = page.locator("#journey-test-result .test-path li")
    path_ids = [path.nth(i).get_attribute("data-node") for i in range(path.count())]
    assert path_ids[0] == journey.draft["start"]
    lit = page.locator("#journey-canvas .drawflow-node.on-path:not([data-entry])")
    expect(lit).to_have_count(len(set(path_ids)))
    for node_id in path_ids:
        expect(node(page, node_id)).to_have_class(re.compile(r"\bon-path\b"))
    expect(page.locator("#journey-canvas svg.connection.on-path").first).to_be_visible()
    page.screenshot(path=SCREENSHOTS / "journey_test_path.png")

    page.click("#journey-publish")
    expect(page.locator("#journey-status")).to_have_text("Live")
    journey.refresh_from_db()
    assert journey.status == JourneyStatus.LIVE

    # A change published as version 2 shows, compared with version 1, on a read-only canvas.
    form = open_panel(page, "wait_2_days")
    form.locator("input[name=duration_0]").fill("3")
    step_is_set_up(page)
    expect(node(page, "wait_2_days").locator(".jb-summary")).to_have_text("for 3 d")
    page.click("#journey-publish")
    expect(page.locator(".journey-header")).to_contain_text("Version 2 is published.")
    journey.refresh_from_db()
    assert journey.live_version.number == 2
    assert {n["id"]: n for n in journey.live_version.graph["nodes"]}["wait_2_days"] == {
        "id": "wait_2_days", "type": "wait", "duration": "P3D"
    }  # fmt: skip
    page.goto(f"{live_server.url}/journeys/{journey.pk}/versions/2/?compare=1")
    expect(page.locator("#journey-canvas")).to_have_attribute("data-ready", "true")
    expect(page.locator("#journey-palette")).to_be_hidden()
    expect(page.locator("#journey-save")).to_have_count(0)
    expect(node(page, "wait_2_days")).to_have_class(re.compile(r"\bjb-diff-changed\b"))
    expect(page.locator("#journey-canvas .jb-diff-changed")).to_have_count(1)
    node(page, "wait_2_days").click()  # read-only: the step's settings, not a form
    expect(page.locator("#journey-panel .jb-details")).to_contain_text("P3D")
    expect(page.locator("#journey-panel form")).to_have_count(0)
    page.screenshot(path=SCREENSHOTS / "journey_compare.png", full_page=True)


def test_the_abandoned_cart_journey_opens_drawn_and_publishes(page, live_server, marketer):
    sign_in(page, live_server, "marketer@acme.test")
    page.goto(f"{live_server.url}/journeys/new/")
    page.click("#starter-abandoned_cart button")
    expect(page.locator("#journey-canvas")).to_have_attribute("data-ready", "true")
    journey = Journey.objects.get()
    steps = len(journey.draft["nodes"])
    expect(page.locator("#journey-canvas .drawflow-node:not([data-entry])")).to_have_count(steps)
    expect(page.locator("#journey-canvas [data-entry] .jb-summary")).to_have_text(
        f"when {journey.draft['entry']['event']} happens"
    )
    page.click("#journey-publish")
    expect(page.locator("#journey-status")).to_have_text("Live")
    journey.refresh_from_db()
    assert journey.status == JourneyStatus.LIVE
    page.screenshot(path=SCREENSHOTS / "journey_abandoned_cart.png", full_page=True)
