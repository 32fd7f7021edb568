"""The slot pages: list with last month's numbers, create and edit with variants, the
preview for a contact, the demo page; analysts read only, outsiders see nothing."""

import datetime as dt
import json

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.accounts.models import ApiKey
from apps.personalization.models import ContentSlot, Variant
from apps.reporting.models import EventDaily
from tests.contacts.factories import ContactFactory
from tests.personalization.factories import ContentSlotFactory, VariantFactory

PRO = {"attr": "plan", "op": "eq", "value": "pro"}


@pytest.fixture
def hero(workspace):
    slot = ContentSlotFactory(workspace=workspace, key="home-hero", name="Home hero")
    VariantFactory(slot=slot, name="pro", rule=PRO, priority=10)
    VariantFactory(slot=slot, name="pricing", context_match={"page": "/pricing*"}, priority=20)
    return slot


def test_list_shows_slots_and_the_rollups_numbers(
    workspace, hero, owner, client_for, django_assert_max_num_queries
):
    today = timezone.localdate()
    EventDaily.objects.create(workspace=workspace, day=today, name="slot_impression", count=40)
    EventDaily.objects.create(
        workspace=workspace, day=today - dt.timedelta(days=3), name="slot_impression", count=2
    )
    EventDaily.objects.create(
        workspace=workspace, day=today - dt.timedelta(days=40), name="slot_impression", count=1000
    )
    EventDaily.objects.create(workspace=workspace, day=today, name="slot_clicked", count=5)
    client = client_for(owner)
    with django_assert_max_num_queries(12):
        response = client.get(reverse("personalization:list"))
    content = response.content.decode()
    assert response.status_code == 200
    assert "Home hero" in content and "home-hero" in content
    assert '<div class="value" id="slot-impressions">42</div>' in content
    assert '<div class="value" id="slot-clicks">5</div>' in content


def test_marketer_creates_a_slot_and_a_variant(workspace, marketer, client_for):
    client = client_for(marketer)
    response = client.post(
        reverse("personalization:create"),
        {"name": "Footer", "key": "footer", "is_active": "on", "html": "<p>Hi</p>"},
    )
    slot = ContentSlot.objects.get(workspace=workspace, key="footer")
    assert response.url == reverse("personalization:detail", args=[slot.pk])
    assert slot.default_content == {"html": "<p>Hi</p>"}
    response = client.post(
        reverse("personalization:variant_create", args=[slot.pk]),
        {
            "name": "pros",
            "priority": "5",
            "is_active": "on",
            "title": "For pros",
            "rule": json.dumps(PRO),
            "context_match": '{"page": "/blog*"}',
        },
    )
    assert response.status_code == 302
    variant = Variant.objects.get(slot=slot)
    assert (
        variant.name,
        variant.priority,
        variant.rule,
        variant.context_match,
        variant.content,
    ) == ("pros", 5, PRO, {"page": "/blog*"}, {"title": "For pros"})
    page = client.get(reverse("personalization:detail", args=[slot.pk])).content.decode()
    assert "plan equals pro" in page


def test_invalid_rule_is_refused_with_the_segment_validators_words(
    workspace, hero, marketer, client_for
):
    client = client_for(marketer)
    response = client.post(
        reverse("personalization:variant_create", args=[hero.pk]),
        {
            "name": "vips",
            "priority": "1",
            "rule": '{"segment": "nope"}',
            "context_match": '{"path": "/x"}',
        },
    )
    assert response.status_code == 200
    content = response.content.decode()
    assert "there is no segment" in content
    assert "Unknown context key" in content
    assert not hero.variants.filter(name="vips").exists()
    duplicate = client.post(
        reverse("personalization:variant_create", args=[hero.pk]), {"name": "pro", "priority": "1"}
    )
    assert "another variant of that name" in duplicate.content.decode()
    assert hero.variants.filter(name="pro").count() == 1


def test_duplicate_key_is_refused(workspace, hero, owner, client_for):
    response = client_for(owner).post(
        reverse("personalization:create"), {"name": "Again", "key": "home-hero"}
    )
    assert response.status_code == 200
    assert ContentSlot.objects.filter(workspace=workspace).count() == 1


def test_preview_shows_the_variant_and_why(workspace, hero, analyst, client_for):
    ContactFactory(
        workspace=workspace, external_id="ann", email="ann@acme.test", attributes={"plan": "pro"}
    )
    url = reverse("personalization:preview", args=[hero.pk])
    content = client_for(analyst).get(url, {"contact": "ann@acme.test", "page": "/"}).content
    content = content.decode()
    assert 'data-variant="pro"' in content
    assert "matches: chosen" in content
    assert "the page context does not match (page)" in content
    pricing = client_for(analyst).get(url, {"contact": "ann", "page": "/pricing"}).content
    assert 'data-variant="pricing"' in pricing.decode()
    unknown = client_for(analyst).get(url, {"contact": "ghost"}).content.decode()
    assert "No contact of this workspace" in unknown


def test_preview_does_not_find_another_workspaces_contact(
    workspace, hero, other_workspace, owner, client_for
):
    ContactFactory(workspace=other_workspace, external_id="theirs", email="x@other.test")
    url = reverse("personalization:preview", args=[hero.pk])
    content = client_for(owner).get(url, {"contact": "x@other.test"}).content.decode()
    assert "No contact of this workspace" in content


def test_analyst_reads_but_cannot_change(workspace, hero, analyst, client_for):
    client = client_for(analyst)
    assert client.get(reverse("personalization:detail", args=[hero.pk])).status_code == 200
    variant = hero.variants.get(name="pro")
    posts = [
        (reverse("personalization:create"), {"name": "X", "key": "x"}),
        (reverse("personalization:edit", args=[hero.pk]), {"name": "Hacked", "key": "h"}),
        (reverse("personalization:delete", args=[hero.pk]), {}),
        (reverse("personalization:variant_create", args=[hero.pk]), {"name": "x", "priority": 1}),
        (
            reverse("personalization:variant_edit", args=[hero.pk, variant.pk]),
            {"name": "hacked", "priority": 1},
        ),
        (reverse("personalization:variant_delete", args=[hero.pk, variant.pk]), {}),
        (reverse("personalization:demo"), {}),
    ]
    for url, data in posts:
        assert client.post(url, data).status_code == 403, url
    hero.refresh_from_db()
    assert hero.name == "Home hero"
    assert sorted(hero.variants.values_list("name", flat=True)) == ["pricing", "pro"]
    assert ContentSlot.objects.count() == 1
    assert ApiKey.objects.count() == 0
    page = client.get(reverse("personalization:detail", args=[hero.pk])).content.decode()
    assert reverse("personalization:variant_create", args=[hero.pk]) not in page


def test_outsider_sees_no_slots(workspace, hero, outsider, client_for):
    client = client_for(outsider)
    content = client.get(reverse("personalization:list")).content.decode()
    assert "Home hero" not in content
    assert f'id="slot-{hero.pk}"' not in content
    assert "No content slots yet" in content
    assert client.get(reverse("personalization:detail", args=[hero.pk])).status_code == 404
    demo = client.get(reverse("personalization:demo")).content.decode()
    assert 'id="demo-slot-home-hero"' not in demo


def test_owner_creates_a_demo_key_shown_once(workspace, hero, owner, marketer, client_for):
    ContactFactory(workspace=workspace, external_id="ann")
    response = client_for(owner).post(reverse("personalization:demo"))
    key = ApiKey.objects.get(workspace=workspace)
    assert key.scopes == ["ingest"]
    content = response.content.decode()
    assert f'value="{key.prefix}' in content
    assert 'data-orchestra-slot="home-hero"' in content
    assert '<option value="ann">' in content
    assert client_for(marketer).post(reverse("personalization:demo")).status_code == 403


def test_edit_form_shows_the_variant_as_saved(workspace, hero, marketer, client_for):
    variant = hero.variants.get(name="pro")
    url = reverse("personalization:variant_edit", args=[hero.pk, variant.pk])
    content = client_for(marketer).get(url).content.decode()
    assert 'id="segment-builder-config"' in content
    assert "&quot;plan&quot;" in content  # the rule, for the builder
    assert ">null</textarea>" not in content  # an empty context match reads empty
    response = client_for(marketer).post(
        url, {"name": "pro", "priority": "11", "rule": json.dumps(PRO), "context_match": ""}
    )
    assert response.status_code == 302
    variant.refresh_from_db()
    assert (variant.priority, variant.rule, variant.context_match) == (11, PRO, {})
