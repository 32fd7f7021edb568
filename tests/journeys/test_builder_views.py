"""The builder's pages: the list, the canvas page and its #journey-data, the node and
settings panels (htmx), the test panel, the forecast endpoint, and who may reach them."""

import json
import re

import pytest
from django.conf import settings
from django.urls import reverse

from apps.journeys.choices import JourneyStatus
from apps.journeys.graph import NODE_BRANCHES
from apps.journeys.models import Journey
from apps.journeys.services import gallery, journeys
from apps.journeys.services.canvas_labels import CANVAS_TEXTS
from tests.contacts.factories import ContactFactory, EventFactory


@pytest.fixture
def welcome(workspace, owner):
    """The gallery's welcome series as a draft of Acme (its templates created)."""
    return gallery.create_from_starter(workspace, "welcome", owner)


def data_of(response) -> dict:
    """The #journey-data the canvas script starts from."""
    content = response.content.decode()
    start = content.index('<script id="journey-data" type="application/json">')
    start = content.index(">", start) + 1
    return json.loads(content[start : content.index("</script>", start)])


def node(graph, node_id):
    return next(n for n in graph["nodes"] if n["id"] == node_id)


def htmx(client, url, data):
    return client.post(url, data, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="journey-panel")


# The list -----------------------------------------------------------------------------------


def test_list_shows_each_journey_with_status_version_and_enrolled(
    workspace, owner, welcome, client_for
):
    journeys.publish(welcome, owner)
    other = gallery.create_from_starter(workspace, "abandoned_cart", owner)

    response = client_for(owner).get(reverse("journeys:list"))

    content = response.content.decode()
    assert response.status_code == 200
    assert reverse("journeys:builder", args=[welcome.pk]) in content
    assert reverse("journeys:builder", args=[other.pk]) in content
    assert "Version 1" in content
    assert 'class="badge badge-live"' in content and 'class="badge badge-draft"' in content
    assert reverse("journeys:new") in content
    assert 'aria-current="page"' in content


def test_list_filters_by_status(workspace, owner, welcome, client_for):
    draft = gallery.create_from_starter(workspace, "birthday", owner)
    journeys.publish(welcome, owner)

    content = client_for(owner).get(reverse("journeys:list"), {"status": "live"}).content.decode()

    assert reverse("journeys:builder", args=[welcome.pk]) in content
    assert reverse("journeys:builder", args=[draft.pk]) not in content


def test_list_counts_enrolled_contacts_from_the_counters(workspace, owner, client_for, api_key_for):
    journey = journeys.create_journey(
        workspace,
        {
            "name": "API entry",
            "entry": {"type": "api"},
            "start": "done",
            "nodes": [{"id": "done", "type": "exit"}],
        },
    )
    journeys.publish(journey)
    journey.refresh_from_db()
    for contact in ContactFactory.create_batch(3, workspace=workspace):
        journeys.enroll_contact(journey, contact)

    content = client_for(owner).get(reverse("journeys:list")).content.decode()

    row = content[content.index(f'id="journey-{journey.pk}"') :]
    assert '<td class="numeric">3</td>' in row[: row.index("</tr>")]


def test_empty_list_leads_to_the_gallery(workspace, marketer, client_for):
    content = client_for(marketer).get(reverse("journeys:list")).content.decode()
    assert "No journeys yet" in content
    assert reverse("journeys:new") in content


def test_list_query_count_is_bounded(workspace, owner, client_for, django_assert_max_num_queries):
    for key in ("welcome", "abandoned_cart", "birthday", "win_back"):
        journeys.publish(gallery.create_from_starter(workspace, key, owner), owner)
    client = client_for(owner)
    with django_assert_max_num_queries(10):
        response = client.get(reverse("journeys:list"))
    assert response.content.decode().count('class="badge badge-live"') == 4


# The builder page ----------------------------------------------------------------------------


def test_builder_page_holds_the_contract_ids_and_data(workspace, owner, welcome, client_for):
    response = client_for(owner).get(reverse("journeys:builder", args=[welcome.pk]))

    content = response.content.decode()
    assert response.status_code == 200
    for element in (
        'id="journey-save"',
        'id="journey-publish"',
        'id="journey-archive"',
        'id="journey-toolbar"',
        'id="journey-palette"',
        'id="journey-canvas"',
        'id="journey-panel"',
        'id="journey-message"',
    ):
        assert element in content, element
    assert 'id="journey-pause"' not in content and 'id="journey-resume"' not in content
    for asset in (
        "vendor/drawflow/drawflow.min.css",
        "css/journey_builder.css",
        "vendor/drawflow/drawflow.min.js",
        "js/journey_builder.js",
    ):
        assert f"/static/{asset}" in content
    assert content.count('class="palette-item" draggable="true"') == len(NODE_BRANCHES)
    assert 'data-node-type="send" title="Send an email' in content
    assert ">Send message</button>" in content
    assert reverse("journeys:versions", args=[welcome.pk]) in content
    assert reverse("journeys:steps", args=[welcome.pk]) in content

    data = data_of(response)
    assert data["id"] == welcome.pk and data["status"] == "draft"
    assert data["readonly"] is False and data["diff"] is None and data["removed_nodes"] == []
    assert data["graph"] == welcome.draft
    assert data["branches"]["wait_purchase"] == ["event", "timeout"]
    assert data["branches"]["welcome"] is None and data["branches"]["done"] == []
    types = {t["type"]: t for t in data["node_types"]}
    assert set(types) == set(NODE_BRANCHES)
    assert types["wait"]["defaults"] == {"duration": "P1D"}
    assert types["condition"]["branches"] == ["yes", "no"]
    assert types["random_split"]["branches"] == ["a", "b"]
    assert data["urls"] == {
        "api": f"/api/v1/journeys/{welcome.pk}/",
        "publish": f"/api/v1/journeys/{welcome.pk}/publish/",
        "pause": f"/api/v1/journeys/{welcome.pk}/pause/",
        "resume": f"/api/v1/journeys/{welcome.pk}/resume/",
        "archive": f"/api/v1/journeys/{welcome.pk}/archive/",
        "stats": f"/api/v1/journeys/{welcome.pk}/stats/",
        "node_form": f"/journeys/{welcome.pk}/node/",
        "settings_form": f"/journeys/{welcome.pk}/settings/",
        "test": f"/journeys/{welcome.pk}/test/",
        "forecast": f"/journeys/{welcome.pk}/forecast/",
        "versions": f"/journeys/{welcome.pk}/versions/",
    }


@pytest.mark.parametrize(
    ("status", "buttons"),
    [
        ("live", {"save", "publish", "pause", "archive"}),
        ("paused", {"save", "publish", "resume", "archive"}),
        ("archived", set()),
    ],
)
def test_builder_offers_the_actions_of_the_status(status, buttons, owner, welcome, client_for):
    journeys.publish(welcome, owner)
    welcome.refresh_from_db()
    if status == "paused":
        journeys.pause(welcome)
    if status == "archived":
        journeys.archive(welcome)

    response = client_for(owner).get(reverse("journeys:builder", args=[welcome.pk]))

    content = response.content.decode()
    shown = {
        a
        for a in ("save", "publish", "pause", "resume", "archive")
        if f'id="journey-{a}"' in content
    }
    assert shown == buttons
    assert data_of(response)["readonly"] is (status == "archived")


def test_analyst_sees_the_builder_read_only(analyst, welcome, client_for):
    response = client_for(analyst).get(reverse("journeys:builder", args=[welcome.pk]))
    assert response.status_code == 200
    assert data_of(response)["readonly"] is True
    assert 'id="journey-save"' not in response.content.decode()


def test_builder_query_count_is_bounded(owner, welcome, client_for, django_assert_max_num_queries):
    client = client_for(owner)
    with django_assert_max_num_queries(8):
        client.get(reverse("journeys:builder", args=[welcome.pk]))


# The node panel ------------------------------------------------------------------------------


def test_node_panel_opens_the_form_of_the_node(owner, welcome, client_for):
    send = node(welcome.draft, "welcome")

    response = htmx(
        client_for(owner),
        reverse("journeys:node_form", args=[welcome.pk]),
        {"node": json.dumps(send), "node_ids": json.dumps(["welcome", "tips"])},
    )

    content = response.content.decode()
    assert response.status_code == 200
    assert 'id="journey-node-form"' in content
    assert 'hx-trigger="change' in content and 'hx-target="#journey-panel"' in content
    assert '<option value="welcome-1" selected>' in content
    assert "HX-Trigger" not in response
    # the preview of the chosen template, and a way to make another one
    template = welcome.workspace.template_set.get(slug="welcome-1")
    assert f"{reverse('templates:preview')}?template={template.pk}" in content
    # the preview loads into itself, not into the panel it inherits as a target
    assert 'hx-trigger="load" hx-target="this"' in content
    assert reverse("templates:create") in content


def test_valid_node_answers_the_node_in_hx_trigger(owner, welcome, client_for):
    wait = node(welcome.draft, "wait_2_days")

    response = htmx(
        client_for(owner),
        reverse("journeys:node_form", args=[welcome.pk]),
        {
            "node": json.dumps(wait),
            "validate": "1",
            "mode": "until_event",
            "until_event": "purchase",
            "timeout_0": "6",
            "timeout_1": "hours",
        },
    )

    trigger = json.loads(response["HX-Trigger"])
    assert trigger == {
        "journeyNodeChanged": {
            "node": {
                "id": "wait_2_days",
                "type": "wait",
                "until_event": "purchase",
                "timeout": "PT6H",
            },
            "branches": ["event", "timeout"],
        }
    }


def test_durations_are_entered_as_number_and_unit(owner, welcome, client_for):
    wait = node(welcome.draft, "wait_2_days")
    url = reverse("journeys:node_form", args=[welcome.pk])
    client = client_for(owner)

    opened = htmx(client, url, {"node": json.dumps(wait)}).content.decode()
    assert 'name="duration_0" value="2"' in opened
    assert '<option value="days" selected>' in opened
    for number, unit, iso in (
        ("90", "minutes", "PT90M"),
        ("3", "weeks", "P3W"),
        ("1", "days", "P1D"),
    ):
        data = {
            "node": json.dumps(wait),
            "validate": "1",
            "mode": "duration",
            "duration_0": number,
            "duration_1": unit,
        }
        response = htmx(client, url, data)
        assert json.loads(response["HX-Trigger"])["journeyNodeChanged"]["node"]["duration"] == iso


def test_invalid_node_shows_the_graphs_own_message_and_no_trigger(owner, welcome, client_for):
    send = node(welcome.draft, "welcome")

    response = htmx(
        client_for(owner),
        reverse("journeys:node_form", args=[welcome.pk]),
        {"node": json.dumps(send), "validate": "1", "channel": "sms", "template": ""},
    )

    assert "HX-Trigger" not in response
    content = response.content.decode()
    assert "Name the template for sms." in content
    # the templates offered are the chosen channel's (the workspace has no SMS template)
    assert "welcome-1" not in content.split('name="template"')[1].split("</select>")[0]


def test_send_node_with_a_second_channel(workspace, owner, client_for):
    journey = gallery.create_from_starter(workspace, "abandoned_cart", owner)
    last_call = node(journey.draft, "last_call")
    url = reverse("journeys:node_form", args=[journey.pk])
    client = client_for(owner)

    opened = htmx(client, url, {"node": json.dumps(last_call)}).content.decode()
    assert '<option value="cart-reminder-sms" selected>' in opened
    assert '<option value="cart-last-chance" selected>' in opened

    data = {
        "node": json.dumps(last_call),
        "validate": "1",
        "channel": "email",
        "template": "cart-reminder",
        "fallback_channel": "",
    }
    changed = json.loads(htmx(client, url, data)["HX-Trigger"])["journeyNodeChanged"]["node"]
    assert changed == {
        "id": "last_call",
        "type": "send",
        "channel": "email",
        "template": "cart-reminder",
    }


def test_condition_panel_reuses_the_segment_rule_builder(owner, welcome, client_for):
    condition = {"id": "condition_1", "type": "condition", "rule": {"all": []}}
    url = reverse("journeys:node_form", args=[welcome.pk])
    client = client_for(owner)

    content = htmx(client, url, {"node": json.dumps(condition)}).content.decode()
    assert 'id="segment-builder"' in content
    assert 'id="segment-builder-config"' in content
    assert "/static/js/segment_builder.js?panel=" in content
    assert 'name="rule"' in content and 'id="id_rule"' in content

    rule = {"attr": "plan", "op": "eq", "value": "pro"}
    data = {
        "node": json.dumps(condition),
        "validate": "1",
        "rule": json.dumps(rule),
        "part": "rule",
    }
    response = htmx(client, url, data)
    assert 'hx-swap-oob="true"' in response.content.decode()
    trigger = json.loads(response["HX-Trigger"])["journeyNodeChanged"]
    assert trigger == {"node": {**condition, "rule": rule}, "branches": ["yes", "no"]}

    bad = {**data, "rule": json.dumps({"attr": "plan", "op": "teleport"})}
    refused = htmx(client, url, bad)
    assert "HX-Trigger" not in refused
    assert "rule" in refused.content.decode() and "teleport" in refused.content.decode()


def test_split_and_random_split_panels_answer_their_branches(owner, welcome, client_for):
    url = reverse("journeys:node_form", args=[welcome.pk])
    client = client_for(owner)
    ab = {"id": "random_split_1", "type": "random_split", "weights": {"a": 50, "b": 50}}
    data = {
        "node": json.dumps(ab),
        "validate": "1",
        "name_0": "a",
        "weight_0": "70",
        "name_1": "b",
        "weight_1": "20",
        "name_2": "c",
        "weight_2": "10",
    }
    trigger = json.loads(htmx(client, url, data)["HX-Trigger"])["journeyNodeChanged"]
    assert trigger["node"]["weights"] == {"a": 70, "b": 20, "c": 10}
    assert trigger["branches"] == ["a", "b", "c"]

    split = {"id": "split_1", "type": "split", "branches": []}
    data = {
        "node": json.dumps(split),
        "validate": "1",
        "name_0": "vip",
        "rule_0": json.dumps({"attr": "plan", "op": "eq", "value": "vip"}),
    }
    trigger = json.loads(htmx(client, url, data)["HX-Trigger"])["journeyNodeChanged"]
    assert trigger["branches"] == ["vip", "else"]

    data = {"node": json.dumps(split), "validate": "1", "name_0": "else", "rule_0": "{}"}
    refused = htmx(client, url, data)
    assert "HX-Trigger" not in refused
    assert "Each branch has its own name (not &quot;else&quot;)." in refused.content.decode()


def test_other_node_panels_validate(workspace, owner, welcome, client_for):
    workspace.contactlist_set.create(name="VIP", slug="vip")
    url = reverse("journeys:node_form", args=[welcome.pk])
    client = client_for(owner)
    cases = [
        (
            {"id": "u", "type": "update_attribute"},
            {"attribute": "stage", "value_type": "number", "value": "3"},
            {"attribute": "stage", "value": 3},
        ),
        (
            {"id": "u", "type": "update_attribute"},
            {"attribute": "stage", "value_type": "remove"},
            {"attribute": "stage", "value": None},
        ),
        ({"id": "l", "type": "add_to_list"}, {"list": "vip"}, {"list": "vip"}),
        (
            {"id": "w", "type": "webhook"},
            {"url": "https://crm.example.com/hook"},
            {"url": "https://crm.example.com/hook"},
        ),
        ({"id": "g", "type": "goal"}, {"event": "purchase"}, {"event": "purchase"}),
        ({"id": "x", "type": "exit"}, {}, {}),
    ]
    for original, fields, expected in cases:
        response = htmx(client, url, {"node": json.dumps(original), "validate": "1", **fields})
        assert json.loads(response["HX-Trigger"])["journeyNodeChanged"]["node"] == {
            **original,
            **expected,
        }, original

    refused = htmx(
        client,
        url,
        {"node": json.dumps({"id": "w", "type": "webhook"}), "validate": "1", "url": "ftp://x"},
    )
    assert "A webhook needs an http(s) URL." in refused.content.decode()
    refused = htmx(
        client,
        url,
        {"node": json.dumps({"id": "l", "type": "add_to_list"}), "validate": "1", "list": "nope"},
    )
    assert "HX-Trigger" not in refused


def test_node_panel_refuses_a_missing_node(owner, welcome, client_for):
    response = htmx(client_for(owner), reverse("journeys:node_form", args=[welcome.pk]), {})
    assert response.status_code == 400


# The settings panel ---------------------------------------------------------------------------


def test_settings_panel_validates_and_answers_the_settings(workspace, owner, welcome, client_for):
    url = reverse("journeys:settings_form", args=[welcome.pk])
    client = client_for(owner)
    settings = {key: welcome.draft[key] for key in ("name", "entry", "reentry", "exit_when")}

    opened = htmx(client, url, {"settings": json.dumps(settings)}).content.decode()
    assert 'value="signed_up"' in opened and 'value="Welcome series"' in opened

    data = {
        "settings": json.dumps(settings),
        "validate": "1",
        "name": "Hello",
        "entry_type": "date_attribute",
        "date_attribute": "renewal_date",
        "offset_days": "-7",
        "at": "08:30",
        "reentry": "after",
        "reentry_days": "30",
        "exit_event": "",
        "holdout_percent": "10",
        "priority": "2",
    }
    trigger = json.loads(htmx(client, url, data)["HX-Trigger"])
    assert trigger == {
        "journeySettingsChanged": {
            "settings": {
                "name": "Hello",
                "entry": {
                    "type": "date_attribute",
                    "attribute": "renewal_date",
                    "offset_days": -7,
                    "at": "08:30",
                },
                "reentry": {"after_days": 30},
                "holdout_percent": 10,
                "priority": 2,
            }
        }
    }

    refused = htmx(client, url, {**data, "entry_type": "segment_entered", "segment": ""})
    assert "HX-Trigger" not in refused
    assert "A segment entry names its segment." in refused.content.decode()


# The test panel ----------------------------------------------------------------------------------


def test_test_panel_finds_contacts_and_simulates_the_canvas_graph(
    workspace, owner, welcome, client_for, subscribed
):
    ann = subscribed(first_name="Ann", email="ann@acme.test")
    ContactFactory(workspace=workspace, first_name="Bob", email="bob@acme.test")
    EventFactory(contact=ann, name="signed_up")
    client = client_for(owner)
    url = reverse("journeys:test", args=[welcome.pk])

    panel = client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert "ann@acme.test" in panel and "bob@acme.test" in panel
    found = client.get(
        url, {"q": "ann"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="journey-test-contacts"
    ).content.decode()
    assert "ann@acme.test" in found and "bob@acme.test" not in found
    assert 'id="journey-test-panel"' not in found

    response = client.post(url, {"contact": ann.pk, "graph": json.dumps(welcome.draft)})

    trigger = json.loads(response["HX-Trigger"])["journeyPathSimulated"]
    assert trigger["path"][:3] == ["welcome", "welcome", "wait_2_days"]
    assert [m["template"] for m in trigger["messages"]] == ["welcome-1", "welcome-2", "welcome-3"]
    assert "Welcome 1: hello" not in response.content.decode()  # nothing was sent
    assert workspace.message_set.count() == 0


def test_test_panel_names_problems_of_a_broken_canvas(workspace, owner, welcome, client_for):
    ann = ContactFactory(workspace=workspace)
    broken = {**welcome.draft, "start": "nowhere"}
    response = client_for(owner).post(
        reverse("journeys:test", args=[welcome.pk]),
        {"contact": ann.pk, "graph": json.dumps(broken)},
    )
    assert "HX-Trigger" not in response
    assert "start must name one of the nodes" in response.content.decode()


# The forecast endpoint ------------------------------------------------------------------------


def test_forecast_answers_json_for_the_posted_graph(workspace, owner, welcome, client_for):
    for contact in ContactFactory.create_batch(2, workspace=workspace):
        EventFactory(contact=contact, name="signed_up")
    response = client_for(owner).post(
        reverse("journeys:forecast", args=[welcome.pk]),
        json.dumps(welcome.draft),
        content_type="application/json",
    )
    answer = response.json()
    assert answer["entries"] == 2
    assert answer["nodes"]["welcome"] == 2 and answer["edges"]["welcome:"] == 2
    assert "signed_up" in answer["basis"]

    bad = client_for(owner).post(
        reverse("journeys:forecast", args=[welcome.pk]), "[1]", content_type="application/json"
    )
    assert bad.status_code == 400


# Who may reach what -----------------------------------------------------------------------------

JOURNEY_GETS = ["journeys:builder", "journeys:versions", "journeys:steps", "journeys:test"]
JOURNEY_POSTS = {
    "journeys:node_form": {"node": json.dumps({"id": "x", "type": "exit"})},
    "journeys:settings_form": {"settings": "{}"},
    "journeys:test": {"contact": "1"},
    "journeys:forecast": {},
    "journeys:steps": {"action": "save"},
}


@pytest.fixture
def published(welcome, owner):
    journeys.publish(welcome, owner)
    welcome.refresh_from_db()
    return welcome


@pytest.mark.parametrize("name", JOURNEY_GETS)
def test_outsider_gets_404_from_every_journey_page(name, published, outsider, client_for):
    response = client_for(outsider).get(reverse(name, args=[published.pk]))
    assert response.status_code == 404


def test_outsider_gets_404_from_versions(published, outsider, client_for):
    client = client_for(outsider)
    assert client.get(reverse("journeys:version", args=[published.pk, 1])).status_code == 404
    restore = reverse("journeys:restore", args=[published.pk, 1])
    assert client.get(restore).status_code == 404
    assert client.post(restore).status_code == 404
    assert Journey.objects.get(pk=published.pk).draft == published.draft


@pytest.mark.parametrize("name", sorted(JOURNEY_POSTS))
def test_outsider_gets_404_from_every_journey_post(name, published, outsider, client_for):
    before = Journey.objects.get(pk=published.pk).draft
    response = client_for(outsider).post(reverse(name, args=[published.pk]), JOURNEY_POSTS[name])
    assert response.status_code == 404
    assert Journey.objects.get(pk=published.pk).draft == before


def test_outsider_sees_only_their_own_journeys(workspace, published, outsider, client_for):
    client = client_for(outsider)
    content = client.get(reverse("journeys:list")).content.decode()
    assert "Welcome series" not in content and "Other Brand" in content
    assert client.post(reverse("journeys:new"), {"starter": "welcome"}).status_code == 302
    assert Journey.objects.filter(workspace=workspace).count() == 1
    assert Journey.objects.exclude(workspace=workspace).get().name == "Welcome series"


@pytest.mark.parametrize("name", sorted(JOURNEY_POSTS))
def test_analyst_changes_nothing(name, published, analyst, client_for):
    before = Journey.objects.get(pk=published.pk).draft
    response = client_for(analyst).post(reverse(name, args=[published.pk]), JOURNEY_POSTS[name])
    assert response.status_code == 403
    assert Journey.objects.get(pk=published.pk).draft == before


def test_analyst_cannot_create_or_restore(workspace, published, analyst, client_for):
    client = client_for(analyst)
    assert client.post(reverse("journeys:new"), {"starter": "welcome"}).status_code == 403
    assert client.post(reverse("journeys:restore", args=[published.pk, 1])).status_code == 403
    assert Journey.objects.filter(workspace=workspace).count() == 1


def test_anonymous_visitor_is_sent_to_sign_in(published, client):
    for name in JOURNEY_GETS:
        response = client.get(reverse(name, args=[published.pk]))
        assert response.status_code == 302 and response.url.startswith(reverse("login"))


# The API's refusal, sorted by node --------------------------------------------------------------


def test_api_refusal_lists_problems_by_node_and_for_the_journey(
    workspace, owner, welcome, api_key_for
):
    api = api_key_for(workspace)
    broken = json.loads(json.dumps(welcome.draft))
    broken["name"] = ""
    node(broken, "welcome")["template"] = "no-such"
    broken["layout"] = {"welcome": [10, 20], "entry": [0, "x"]}

    response = api.put(reverse("api:journey-detail", args=[welcome.pk]), broken, format="json")

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert errors["nodes"] == {"welcome": ["Unknown email template 'no-such'."]}
    assert errors["journey"] == [
        "Give the journey a name.",
        'layout must be {"<node id>": [x, y], …} with numbers for x and y.',
    ]
    assert "welcome: Unknown email template 'no-such'." in errors["graph"]
    assert Journey.objects.get(pk=welcome.pk).draft == welcome.draft


def test_api_keeps_a_layout_and_refuses_changes_to_an_archived_journey(
    workspace, owner, welcome, api_key_for
):
    api = api_key_for(workspace)
    graph = {**welcome.draft, "layout": {"welcome": [120, 40.5], "entry": [0, 0]}}
    url = reverse("api:journey-detail", args=[welcome.pk])
    assert api.put(url, graph, format="json").status_code == 200
    assert Journey.objects.get(pk=welcome.pk).draft["layout"]["welcome"] == [120, 40.5]

    journeys.archive(welcome)
    refused = api.put(url, graph, format="json").json()["errors"]
    assert refused["nodes"] == {}
    assert refused["journey"] == ["An archived journey cannot be changed."]
    assert Journey.objects.get(pk=welcome.pk).status == JourneyStatus.ARCHIVED


def test_every_word_of_the_canvas_script_is_translated_by_the_page(owner, welcome, client_for):
    script = (settings.BASE_DIR / "static" / "js" / "journey_builder.js").read_text()
    words = {
        json.loads(f'"{text}"') for text in re.findall(r'gettext\(\s*"((?:[^"\\]|\\.)*)"', script)
    }
    assert words, "the script names its words with gettext(...)"
    assert words - set(CANVAS_TEXTS) == set(), "add them to apps/journeys/services/canvas_labels.py"

    response = client_for(owner).get(
        reverse("journeys:builder", args=[welcome.pk]), HTTP_ACCEPT_LANGUAGE="da"
    )
    labels = data_of(response)["labels"]
    assert set(labels) == set(CANVAS_TEXTS)


def test_condition_panel_shows_a_rule_that_is_no_json(owner, welcome, client_for):
    condition = {"id": "condition_1", "type": "condition", "rule": {"all": []}}
    response = htmx(
        client_for(owner),
        reverse("journeys:node_form", args=[welcome.pk]),
        {"node": json.dumps(condition), "validate": "1", "rule": "{oops", "part": "rule"},
    )
    assert "HX-Trigger" not in response
    assert "Rule: Enter a valid JSON." in response.content.decode()
