"""Which variant a contact gets: priority, context globs, rules on attributes, segments and
recent events, the default, and the one-query budget."""

import datetime as dt

import pytest
from django.utils import timezone

from apps.contacts.models import AnonymousId
from apps.personalization import services
from apps.segments.models import Segment
from tests.contacts.factories import ContactFactory, EventFactory
from tests.personalization.factories import ContentSlotFactory, VariantFactory

PRO = {"attr": "plan", "op": "eq", "value": "pro"}


@pytest.fixture
def hero(workspace):
    slot = ContentSlotFactory(workspace=workspace, key="home-hero",
                              default_content={"html": "<h2>Hello</h2>"})  # fmt: skip
    VariantFactory(slot=slot, name="pro", rule=PRO, priority=10)
    VariantFactory(slot=slot, name="pricing-page", context_match={"page": "/pricing*"},
                   priority=20)  # fmt: skip
    VariantFactory(slot=slot, name="vip", rule={"segment": "vip"}, priority=30)
    VariantFactory(
        slot=slot, name="recent-buyer", priority=5,
        rule={"event": "purchase", "within_days": 7, "count": {"gte": 2}},
    )  # fmt: skip
    VariantFactory(slot=slot, name="switched-off", priority=100, is_active=False)
    Segment.objects.create(
        workspace=workspace, name="VIP", slug="vip", rule={"attr": "vip", "op": "eq", "value": True}
    )
    return slot


def decide(workspace, external_id, **context):
    return services.decide(workspace, "home-hero", external_id=external_id, context=context,
                           record=False)  # fmt: skip


def test_rule_on_an_attribute_picks_the_variant(workspace, hero):
    ContactFactory(workspace=workspace, external_id="ann", attributes={"plan": "pro"})
    decision = decide(workspace, "ann", page="/")
    assert (decision.variant, decision.content) == ("pro", {"html": "<p>pro</p>"})


def test_default_when_nothing_matches(workspace, hero):
    ContactFactory(workspace=workspace, external_id="bo", attributes={"plan": "free"})
    decision = decide(workspace, "bo", page="/about")
    assert (decision.variant, decision.content) == ("default", {"html": "<h2>Hello</h2>"})


def test_higher_priority_wins_when_several_match(workspace, hero):
    ContactFactory(workspace=workspace, external_id="ann", attributes={"plan": "pro"})
    assert decide(workspace, "ann", page="/pricing/teams").variant == "pricing-page"
    assert decide(workspace, "ann", page="/pricing").variant == "pricing-page"
    assert decide(workspace, "ann", page="/about/pricing").variant == "pro"


def test_context_glob_needs_the_context_key(workspace, hero):
    ContactFactory(workspace=workspace, external_id="bo")
    assert decide(workspace, "bo").variant == "default"
    assert decide(workspace, "bo", page="/pricing").variant == "pricing-page"


def test_rule_on_a_segment_is_evaluated_now(workspace, hero):
    ContactFactory(workspace=workspace, external_id="cy", attributes={"vip": True, "plan": "pro"})
    assert decide(workspace, "cy", page="/pricing").variant == "vip"


def test_rule_on_recent_events(workspace, hero):
    buyer = ContactFactory(workspace=workspace, external_id="dee")
    EventFactory(contact=buyer, name="purchase")
    assert decide(workspace, "dee").variant == "default"
    EventFactory(contact=buyer, name="purchase")
    EventFactory(contact=buyer, name="purchase",
                 occurred_at=timezone.now() - dt.timedelta(days=30))  # fmt: skip
    assert decide(workspace, "dee").variant == "recent-buyer"


def test_anonymous_id_finds_the_contact(workspace, hero):
    contact = ContactFactory(workspace=workspace, external_id=None, attributes={"plan": "pro"})
    AnonymousId.objects.create(workspace=workspace, anonymous_id="anon-1", contact=contact)
    decision = services.decide(workspace, "home-hero", anonymous_id="anon-1", record=False)
    assert (decision.variant, decision.contact_id) == ("pro", contact.pk)


def test_unknown_contact_gets_the_default_and_nothing_is_recorded(workspace, hero):
    decision = services.decide(workspace, "home-hero", external_id="nobody")
    assert (decision.variant, decision.contact_id, decision.impression_id) == (
        "default", None, None,
    )  # fmt: skip


def test_unknown_or_inactive_slot_raises(workspace, hero):
    with pytest.raises(services.SlotNotFound):
        services.decide(workspace, "nope", external_id="ann")
    ContentSlotFactory(workspace=workspace, key="off", is_active=False)
    with pytest.raises(services.SlotNotFound):
        services.decide(workspace, "off", external_id="ann")


def test_contact_of_another_workspace_is_unknown(workspace, other_workspace, hero):
    ContactFactory(workspace=other_workspace, external_id="ann", attributes={"plan": "pro"})
    assert decide(workspace, "ann").contact_id is None


def test_a_decision_costs_one_query_once_the_slot_is_remembered(
    workspace, hero, django_assert_num_queries
):
    ContactFactory(workspace=workspace, external_id="ann", attributes={"plan": "pro"})
    decide(workspace, "ann")
    with django_assert_num_queries(1):
        assert decide(workspace, "ann", page="/").variant == "pro"


def test_preview_explains_every_variant(workspace, hero):
    contact = ContactFactory(workspace=workspace, external_id="ann", attributes={"plan": "pro"})
    decision = services.preview_decision(hero, contact, {"page": "/about"})
    checks = {c.name: (c.context_failed, c.rule_matched) for c in decision.checks}
    assert decision.variant == "pro"
    assert checks == {
        "vip": (None, False),
        "pricing-page": ("page", True),
        "pro": (None, True),
        "recent-buyer": (None, False),
    }


def test_variant_validation_uses_the_segment_rules(workspace, hero):
    errors = services.variant_problems(
        workspace, name="default", content="oops", rule={"segment": "missing"},
        context_match={"path": "/x"}, slot=hero,
    )  # fmt: skip
    assert set(errors) == {"name", "content", "rule", "context_match"}
    ok = services.variant_problems(
        workspace, name="spring", content={"html": "<p>x</p>"}, rule=PRO,
        context_match={"page": ["/", "/home*"]}, slot=hero,
    )  # fmt: skip
    assert ok == {}
