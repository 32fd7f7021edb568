"""The gallery of starters: each creates a draft that validates and publishes, with the
placeholder templates (and segment) it needs, without touching what the workspace has."""

import json

import pytest
from django.urls import reverse
from django.utils.html import escape

from apps.channels.models import Template
from apps.channels.services.templates import create_template
from apps.journeys.choices import JourneyStatus
from apps.journeys.models import Journey
from apps.journeys.services import gallery, journeys
from apps.journeys.services.builder import node_types
from apps.segments.models import Segment

STARTER_KEYS = [starter.key for starter in gallery.STARTERS]


def test_the_gallery_has_the_journeys_marketers_ask_for():
    assert STARTER_KEYS == [
        "welcome",
        "abandoned_cart",
        "browse_abandonment",
        "win_back",
        "review_referral",
        "birthday",
        "renewal",
    ]
    for starter in gallery.STARTERS:
        assert str(starter.summary).endswith(".") and "\n" not in str(starter.summary)
        sends = [n for n in starter.graph["nodes"] if n["type"] == "send"]
        named = set()
        for send in sends:
            template = send["template"]
            named |= set(template.values()) if isinstance(template, dict) else {template}
        assert named == set(starter.templates), starter.key


@pytest.mark.parametrize("key", STARTER_KEYS)
def test_each_starter_creates_a_valid_draft_that_publishes(key, workspace, owner):
    journey = gallery.create_from_starter(workspace, key, owner)

    assert journey.status == JourneyStatus.DRAFT
    assert journeys.check(workspace, journey.draft).as_list() == []
    starter = gallery.STARTERS_BY_KEY[key]
    templates = Template.objects.for_workspace(workspace)
    assert set(templates.values_list("slug", "channel")) >= {
        (slug, data["channel"]) for slug, data in starter.templates.items()
    }
    version = journeys.publish(journey, owner)
    assert version.number == 1
    assert Journey.objects.get(pk=journey.pk).status == JourneyStatus.LIVE


@pytest.mark.parametrize("key", STARTER_KEYS)
def test_placeholder_templates_are_english_and_personalised(key, workspace, owner):
    gallery.create_from_starter(workspace, key, owner)
    for slug, data in gallery.STARTERS_BY_KEY[key].templates.items():
        template = Template.objects.for_workspace(workspace).get(slug=slug)
        assert template.version == 1
        if data["channel"] == "email":
            assert template.subject and template.html and template.text
            assert '{{ contact.first_name | default: "there" }}' in template.html
            assert '{{ contact.first_name | default: "there" }}' in template.text
            assert "{{ unsubscribe_url }}" in template.html
        else:
            assert '{{ contact.first_name | default: "there" }}' in template.body


def test_abandoned_cart_follows_each_cart(workspace, owner):
    journey = gallery.create_from_starter(workspace, "abandoned_cart", owner)
    graph = journey.draft
    assert graph["entry"] == {"type": "event", "event": "cart_updated", "key": "cart_id"}
    first = next(n for n in graph["nodes"] if n["id"] == graph["start"])
    assert first == {
        "id": "wait_purchase",
        "type": "wait",
        "until_event": "purchase",
        "timeout": "PT4H",
    }
    assert {"id": "bought", "type": "goal", "event": "purchase"} in graph["nodes"]


def test_templates_the_workspace_has_are_kept(workspace, owner):
    mine, problems = create_template(
        workspace,
        {
            "name": "Mine",
            "slug": "welcome-1",
            "channel": "email",
            "subject": "My own",
            "text": "Hello",
        },
    )
    assert not problems
    gallery.create_from_starter(workspace, "welcome", owner)
    mine.refresh_from_db()
    assert (mine.subject, mine.version) == ("My own", 1)
    assert (
        Template.objects.for_workspace(workspace).filter(slug__startswith="welcome-").count() == 3
    )


def test_a_slug_taken_by_another_channel_gets_a_fresh_one(workspace, owner):
    create_template(
        workspace, {"name": "SMS", "slug": "cart-reminder", "channel": "sms", "body": "Hi"}
    )
    journey = gallery.create_from_starter(workspace, "abandoned_cart", owner)
    reminder = next(n for n in journey.draft["nodes"] if n["id"] == "reminder")
    assert reminder["template"] == "cart-reminder-email"
    assert Template.objects.for_workspace(workspace).get(slug="cart-reminder-email").channel == (
        "email"
    )
    assert journeys.check(workspace, journey.draft).as_list() == []


def test_win_back_creates_its_segment_once(workspace, owner):
    first = gallery.create_from_starter(workspace, "win_back", owner)
    second = gallery.create_from_starter(workspace, "win_back", owner)
    assert Segment.objects.for_workspace(workspace).filter(slug="lapsed-customers").count() == 1
    assert first.draft["entry"] == {"type": "segment_entered", "segment": "lapsed-customers"}
    assert (first.name, second.name) == ("Win-back", "Win-back (2)")


def test_blank_journey_is_a_valid_draft(workspace, owner):
    journey = gallery.create_from_starter(workspace, gallery.BLANK, owner)
    assert journeys.check(workspace, journey.draft).as_list() == []
    assert Template.objects.for_workspace(workspace).count() == 0


def test_gallery_page_describes_each_starter_and_creates_the_draft(workspace, marketer, client_for):
    client = client_for(marketer)
    page = client.get(reverse("journeys:new")).content.decode()
    for starter in gallery.STARTERS:
        assert str(starter.name) in page
        assert escape(str(starter.summary)) in page
        assert f'name="starter" value="{starter.key}"' in page
    assert 'name="starter" value="blank"' in page

    response = client.post(reverse("journeys:new"), {"starter": "abandoned_cart"})

    journey = Journey.objects.for_workspace(workspace).get()
    assert response.status_code == 302
    assert response.url == reverse("journeys:builder", args=[journey.pk])
    assert journey.name == "Abandoned cart" and journey.created_by == marketer


def test_gallery_refuses_an_unknown_starter(workspace, marketer, client_for):
    response = client_for(marketer).post(reverse("journeys:new"), {"starter": "teleport"})
    assert response.status_code == 302 and response.url == reverse("journeys:new")
    assert not Journey.objects.exists()
    assert not Template.objects.exists()


def test_analyst_sees_the_gallery_without_buttons(workspace, analyst, client_for):
    page = client_for(analyst).get(reverse("journeys:new")).content.decode()
    assert "Welcome series" in page
    assert 'name="starter"' not in page


@pytest.mark.parametrize("key", [*STARTER_KEYS, gallery.BLANK])
def test_builder_page_renders_valid_journey_data_for_each_starter(
    key, workspace, owner, client_for
):
    journey = gallery.create_from_starter(workspace, key, owner)

    content = client_for(owner).get(reverse("journeys:builder", args=[journey.pk])).content
    content = content.decode()

    start = content.index('<script id="journey-data" type="application/json">')
    start = content.index(">", start) + 1
    data = json.loads(content[start : content.index("</script>", start)])
    assert data["graph"] == journey.draft
    assert set(data["branches"]) == {n["id"] for n in journey.draft["nodes"]}
    assert data["node_types"] == json.loads(json.dumps(node_types()))
