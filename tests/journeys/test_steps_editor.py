"""The steps editor: the journey as an ordered list of steps, edited with plain forms (no
JavaScript): the page is submitted here as a browser without scripts would submit it."""

import json
import re
from html.parser import HTMLParser

import pytest
from django.urls import reverse

from apps.journeys.models import Journey
from apps.journeys.services import gallery
from apps.journeys.services.steps import ordered_ids


class FormReader(HTMLParser):
    """What a browser submits from the page's POST form (without the buttons), and which
    controls have no label."""

    def __init__(self):
        super().__init__()
        self.values: list[tuple[str, str]] = []
        self.labels: set[str] = set()
        self.controls: list[tuple[str, str]] = []  # (id, name) of the visible controls
        self.in_form = False
        self.select: dict | None = None
        self.option: str | None = None
        self.textarea: dict | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form" and attrs.get("method") == "post":
            self.in_form = True
        if not self.in_form:
            return
        if tag == "label" and attrs.get("for"):
            self.labels.add(attrs["for"])
        if tag == "input":
            kind = attrs.get("type", "text")
            if kind != "hidden":
                self.controls.append((attrs.get("id", ""), attrs.get("name", "")))
            if kind in ("radio", "checkbox"):
                if "checked" in attrs:
                    self.values.append((attrs["name"], attrs.get("value", "on")))
            elif kind != "submit":
                self.values.append((attrs["name"], attrs.get("value", "")))
        if tag == "select":
            self.select = {"name": attrs["name"], "chosen": None, "first": None}
            if not attrs.get("aria-label"):
                self.controls.append((attrs.get("id", ""), attrs["name"]))
        if tag == "option" and self.select is not None:
            value = attrs.get("value", "")
            if self.select["first"] is None:
                self.select["first"] = value
            if "selected" in attrs:
                self.select["chosen"] = value
        if tag == "textarea":
            self.textarea = {"name": attrs["name"], "text": ""}
            self.controls.append((attrs.get("id", ""), attrs["name"]))

    def handle_data(self, data):
        if self.textarea is not None:
            self.textarea["text"] += data

    def handle_endtag(self, tag):
        if tag == "form":
            self.in_form = False
        if tag == "select" and self.select is not None:
            chosen = self.select["chosen"]
            self.values.append(
                (self.select["name"], chosen if chosen is not None else self.select["first"] or "")
            )
            self.select = None
        if tag == "textarea" and self.textarea is not None:
            self.values.append((self.textarea["name"], self.textarea["text"].lstrip("\n")))
            self.textarea = None


def read_form(content: str) -> FormReader:
    reader = FormReader()
    reader.feed(content)
    return reader


def submit(client, url, page, action="save", **changes):
    """Post the page's form as shown, with some fields changed, pressing the button."""
    data = dict(read_form(page).values)
    data.update(changes)
    data["action"] = action
    return client.post(url, data)


@pytest.fixture
def welcome(workspace, owner):
    return gallery.create_from_starter(workspace, "welcome", owner)


@pytest.fixture
def editor(welcome, marketer, client_for):
    client = client_for(marketer)
    url = reverse("journeys:steps", args=[welcome.pk])
    return client, url


def step_of(page: str, node_id: str) -> str:
    start = page.index(f'id="step-{node_id}"')
    return page[start : page.index("</article>", start)]


def test_steps_are_listed_breadth_first_from_the_entry(welcome, editor):
    client, url = editor

    page = client.get(url).content.decode()

    order = ["welcome", "wait_2_days", "tips", "wait_purchase", "bought", "offer", "done"]
    positions = [page.index(f'id="step-{node_id}"') for node_id in order]
    assert positions == sorted(positions)
    assert "Step 1: Send message" in page and "Step 4: Wait" in page
    wait = step_of(page, "wait_purchase")
    assert "When the event happens, go to" in wait
    assert "If it does not happen in time, go to" in wait
    assert "until purchase, at most 5 days" in wait
    assert '<option value="bought" selected>5. Goal: purchase</option>' in wait


def test_every_control_has_a_label_and_save_comes_first(welcome, editor):
    client, url = editor
    page = client.get(url).content.decode()
    reader = read_form(page)
    unlabelled = [(id_, name) for id_, name in reader.controls if id_ not in reader.labels]
    assert unlabelled == []
    form = page[page.index('<form method="post" class="steps-editor"') :]
    assert form.index('value="save"') < form.index('name="action" value="add:')


def test_editing_a_step_and_saving_updates_the_draft(welcome, editor):
    client, url = editor
    page = client.get(url).content.decode()

    response = submit(
        client,
        url,
        page,
        **{"s2-duration_0": "3", "s2-duration_1": "hours", "journey-name": "Hello"},
    )

    assert response.status_code == 302 and response.url == url
    draft = Journey.objects.get(pk=welcome.pk).draft
    assert draft["name"] == "Hello"
    assert next(n for n in draft["nodes"] if n["id"] == "wait_2_days")["duration"] == "PT3H"
    assert draft["edges"] and len(draft["edges"]) == len(welcome.draft["edges"])
    assert {json.dumps(e, sort_keys=True) for e in draft["edges"]} == {
        json.dumps(e, sort_keys=True) for e in welcome.draft["edges"]
    }


def test_a_field_error_saves_nothing(welcome, editor):
    client, url = editor
    page = client.get(url).content.decode()

    response = submit(client, url, page, **{"s2-duration_0": "soon"})

    assert response.status_code == 200
    assert "Enter a whole number." in step_of(response.content.decode(), "wait_2_days")
    assert Journey.objects.get(pk=welcome.pk).draft == welcome.draft


def test_a_broken_graph_is_refused_with_each_problem_at_its_step(welcome, editor):
    client, url = editor
    page = client.get(url).content.decode()

    # the timeout path of the wait leads nowhere: it is missing, and offer is cut off
    response = submit(client, url, page, **{"s4-next_1": ""})

    content = response.content.decode()
    assert response.status_code == 200
    assert "Nothing was saved" in content
    assert "Missing the &#x27;timeout&#x27; branch." in step_of(content, "wait_purchase")
    assert "No path from the start reaches this node." in step_of(content, "offer")
    assert "No path from the start reaches this node." in step_of(content, "done")
    assert "No path" not in step_of(content, "tips")
    assert Journey.objects.get(pk=welcome.pk).draft == welcome.draft


def test_adding_a_step_on_a_path_then_saving(welcome, editor):
    client, url = editor
    page = client.get(url).content.decode()

    # a wait after the first email, before the two days' wait
    added = submit(client, url, page, action="add:1:0", **{"s1-add_0": "update_attribute"})

    content = added.content.decode()
    assert added.status_code == 200
    assert "A step was added: Update attribute" in content
    assert 'href="#step-update_attribute_1"' in content
    assert Journey.objects.get(pk=welcome.pk).draft == welcome.draft  # not saved yet
    assert "Name the attribute to update." in step_of(content, "update_attribute_1")
    assert content.index('id="step-update_attribute_1"') < content.index('id="step-wait_2_days"')

    saved = submit(
        client,
        url,
        content,
        **{"s2-attribute": "stage", "s2-value_type": "text", "s2-value": "new"},
    )

    assert saved.status_code == 302
    draft = Journey.objects.get(pk=welcome.pk).draft
    assert {
        "id": "update_attribute_1",
        "type": "update_attribute",
        "attribute": "stage",
        "value": "new",
    } in draft["nodes"]
    assert {"from": "welcome", "to": "update_attribute_1"} in draft["edges"]
    assert {"from": "update_attribute_1", "to": "wait_2_days"} in draft["edges"]
    assert ordered_ids(draft)[:3] == ["welcome", "update_attribute_1", "wait_2_days"]


def test_adding_a_step_at_the_beginning(welcome, editor):
    client, url = editor
    page = client.get(url).content.decode()
    added = submit(client, url, page, action="add:start", **{"journey-add_start": "wait"})
    saved = submit(client, url, added.content.decode())
    assert saved.status_code == 302
    draft = Journey.objects.get(pk=welcome.pk).draft
    assert draft["start"] == "wait_1"
    assert {"from": "wait_1", "to": "welcome"} in draft["edges"]


def test_removing_a_step_joins_its_neighbours(welcome, editor):
    client, url = editor
    page = client.get(url).content.decode()

    removed = submit(client, url, page, action="remove:3")

    content = removed.content.decode()
    assert 'id="step-tips"' not in content
    saved = submit(client, url, content)
    assert saved.status_code == 302
    draft = Journey.objects.get(pk=welcome.pk).draft
    assert "tips" not in {n["id"] for n in draft["nodes"]}
    assert {"from": "wait_2_days", "to": "wait_purchase"} in draft["edges"]


def test_moving_a_step_before_the_one_leading_to_it(welcome, editor):
    client, url = editor
    page = client.get(url).content.decode()
    assert "Move before 2. Wait: 2 days" in step_of(page, "tips")

    moved = submit(client, url, page, action="up:3")

    saved = submit(client, url, moved.content.decode())
    assert saved.status_code == 302
    draft = Journey.objects.get(pk=welcome.pk).draft
    assert ordered_ids(draft)[:4] == ["welcome", "tips", "wait_2_days", "wait_purchase"]


def test_changing_a_wait_to_wait_for_an_event_keeps_its_way_on(welcome, editor):
    client, url = editor
    page = client.get(url).content.decode()

    response = submit(
        client,
        url,
        page,
        **{
            "s2-mode": "until_event",
            "s2-until_event": "opened",
            "s2-timeout_0": "1",
            "s2-timeout_1": "days",
        },
    )

    # the way on became the "event" path; the new "timeout" path leads nowhere yet
    content = response.content.decode()
    assert "Missing the &#x27;timeout&#x27; branch." in step_of(content, "wait_2_days")
    fixed = submit(client, url, content, **{"s2-next_1": "tips"})
    assert fixed.status_code == 302
    edges = Journey.objects.get(pk=welcome.pk).draft["edges"]
    assert {"from": "wait_2_days", "to": "tips", "branch": "event"} in edges
    assert {"from": "wait_2_days", "to": "tips", "branch": "timeout"} in edges


def test_condition_steps_take_a_segment_or_a_rule(workspace, welcome, editor):
    workspace.segment_set.create(name="VIP", slug="vip", rule={"all": []})
    client, url = editor
    page = client.get(url).content.decode()
    added = submit(
        client, url, page, action="add:3:0", **{"s3-add_0": "condition"}
    ).content.decode()
    number = re.search(r"Step (\d+): Yes/no split", added).group(1)
    field = f"s{number}-"

    saved = submit(client, url, added, **{f"{field}segment": "vip", f"{field}next_1": "offer"})

    assert saved.status_code == 302
    draft = Journey.objects.get(pk=welcome.pk).draft
    assert {"id": "condition_1", "type": "condition", "rule": {"segment": "vip"}} in draft["nodes"]
    assert {"from": "condition_1", "to": "wait_purchase", "branch": "yes"} in draft["edges"]
    assert {"from": "condition_1", "to": "offer", "branch": "no"} in draft["edges"]


def test_analyst_reads_the_steps_without_changing_them(welcome, analyst, client_for):
    client = client_for(analyst)
    url = reverse("journeys:steps", args=[welcome.pk])
    page = client.get(url).content.decode()
    assert "Step 1: Send message" in page
    assert '<fieldset disabled class="steps-editor-body">' in page
    assert 'value="save"' not in page
    assert submit(client, url, page).status_code == 403
