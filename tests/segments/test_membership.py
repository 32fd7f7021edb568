"""Membership kept current: in real time as contacts change, and by the periodic refresh."""

import datetime as dt

import pytest
from django.db.models import Q
from django.urls import reverse

from apps.contacts.models import Event
from apps.contacts.services.consent import set_consent
from apps.contacts.services.events import record_events
from apps.contacts.services.lists import add_to_list, create_list, remove_from_list
from apps.contacts.services.profiles import update_contact, upsert_contacts
from apps.segments import services
from apps.segments.models import Segment, SegmentMembership, SegmentSize
from apps.segments.tasks import refresh_segments_task
from orchestra import redis_client
from tests.contacts.factories import ContactFactory

BIG_SPENDERS = {
    "event": "purchase",
    "count": {"gte": 2},
    "within_days": 30,
    "where": [{"prop": "amount", "op": "gt", "value": 100}],
}


@pytest.fixture
def realtime(django_capture_on_commit_callbacks):
    """Run what commits enqueue (the re-evaluation task runs eagerly in tests)."""

    def run(operation, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return operation(*args, **kwargs)

    return run


def members(segment):
    return set(
        SegmentMembership.objects.filter(segment=segment).values_list("contact_id", flat=True)
    )


def segment_events(contact):
    return list(
        Event.objects.filter(contact=contact, name__startswith="segment_")
        .order_by("id")
        .values_list("name", "properties__segment")
    )


def test_contact_enters_segment_when_second_purchase_arrives(workspace, realtime):
    segment = realtime(services.create_segment, workspace, "Big spenders", BIG_SPENDERS)
    purchase = {"external_id": "ann", "name": "purchase", "properties": {"amount": 150}}
    realtime(record_events, workspace, [purchase], "api")
    assert members(segment) == set()
    realtime(record_events, workspace, [purchase | {"message_id": "2"}], "api")
    contact = Event.objects.filter(name="purchase").first().contact
    assert members(segment) == {contact.pk}
    assert segment_events(contact) == [("segment_entered", "big-spenders")]
    segment.refresh_from_db()
    assert segment.member_count == 1


def test_attribute_consent_and_list_changes_move_contacts_in_and_out(workspace, realtime):
    blocked = create_list(workspace, "Blocked")
    contact = ContactFactory(workspace=workspace, attributes={"plan": "free"})
    segment = realtime(
        services.create_segment,
        workspace,
        "Pro with email",
        {
            "all": [
                {"attr": "plan", "op": "eq", "value": "pro"},
                {"consent": "email"},
                {"not": {"list": "blocked"}},
            ]
        },
    )
    realtime(update_contact, contact, {"attributes": {"plan": "pro"}})
    assert members(segment) == set()
    realtime(set_consent, contact, "email", "subscribed", "test")
    assert members(segment) == {contact.pk}
    realtime(add_to_list, blocked, [contact.pk], "ui")
    assert members(segment) == set()
    realtime(remove_from_list, blocked, [contact.pk])
    assert members(segment) == {contact.pk}
    assert [name for name, _slug in segment_events(contact)] == [
        "segment_entered",
        "segment_exited",
        "segment_entered",
    ]


def test_bulk_upsert_reevaluates_the_changed_contacts(workspace, realtime):
    segment = realtime(
        services.create_segment, workspace, "Danes", {"attr": "country", "op": "eq", "value": "DK"}
    )
    realtime(
        upsert_contacts,
        workspace,
        [
            {"external_id": f"u{i}", "attributes": {"country": "DK" if i % 2 else "SE"}}
            for i in range(10)
        ],
    )
    assert len(members(segment)) == 5


def test_nested_segments_follow_their_inner_segment(workspace, realtime):
    realtime(
        services.create_segment, workspace, "Pros", {"attr": "plan", "op": "eq", "value": "pro"}
    )
    outer = realtime(services.create_segment, workspace, "Not pro", {"not": {"segment": "pros"}})
    contact = realtime(upsert_contacts, workspace, [{"external_id": "x"}]).contact_ids[0]
    assert members(outer) == {contact}


def test_a_new_segment_is_built_without_announcing_everyone(workspace, realtime):
    contacts = ContactFactory.create_batch(3, workspace=workspace, attributes={"plan": "pro"})
    segment = realtime(
        services.create_segment, workspace, "Pros", {"attr": "plan", "op": "eq", "value": "pro"}
    )
    assert members(segment) == {c.pk for c in contacts}
    assert Event.objects.filter(name="segment_entered").count() == 0
    segment.refresh_from_db()
    assert (segment.member_count, segment.refreshed_at is not None) == (3, True)
    assert SegmentSize.objects.get(segment=segment).size == 3


def test_time_windows_age_out_with_the_periodic_refresh(workspace, realtime):
    segment = realtime(
        services.create_segment,
        workspace,
        "Recent buyers",
        {"event": "purchase", "within_days": 30},
    )
    static = realtime(services.create_segment, workspace, "Everyone", {"all": []})
    contact = ContactFactory(workspace=workspace)
    realtime(
        record_events,
        workspace,
        [
            {
                "external_id": contact.external_id,
                "name": "purchase",
                "occurred_at": (
                    dt.datetime.now(dt.UTC) - dt.timedelta(days=29, hours=23, minutes=59)
                ).isoformat(),
            }
        ],
        "api",
    )
    assert members(segment) == {contact.pk}
    # A minute later the purchase is 30 days old, without any new event.
    Event.objects.filter(name="purchase").update(
        occurred_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=30, minutes=1)
    )
    assert members(segment) == {contact.pk}
    assert realtime(refresh_segments_task) == 1  # only the segment with a time window
    assert members(segment) == set()
    assert segment_events(contact)[-1] == ("segment_exited", "recent-buyers")
    assert contact.pk in members(static)


def test_reevaluation_is_idempotent(workspace, realtime):
    contact = ContactFactory(workspace=workspace, attributes={"plan": "pro"})
    segment = realtime(
        services.create_segment, workspace, "Pros", {"attr": "plan", "op": "eq", "value": "pro"}
    )
    for _ in range(3):
        changes = services.reevaluate_contacts(workspace, [contact.pk])
        assert (changes.entered, changes.exited) == ([], [])
    assert members(segment) == {contact.pk}


def test_preview_counts_and_samples_without_saving(workspace):
    ContactFactory.create_batch(12, workspace=workspace, attributes={"plan": "pro"})
    ContactFactory(workspace=workspace, attributes={"plan": "free"})
    count, sample = services.preview(workspace, {"attr": "plan", "op": "eq", "value": "pro"})
    assert count == 12
    assert len(sample) == services.PREVIEW_SAMPLE_SIZE
    assert Segment.objects.count() == 0


def test_invalid_rules_are_refused_with_every_problem(workspace):
    with pytest.raises(services.InvalidRule) as caught:
        services.create_segment(
            workspace, "Bad", {"all": [{"attr": "x", "op": "nope"}, {"list": "missing"}]}
        )
    assert len(caught.value.problems) == 2
    assert Segment.objects.count() == 0


def test_a_segment_used_by_another_cannot_be_deleted(workspace, realtime):
    inner = realtime(services.create_segment, workspace, "Inner", {"all": []})
    realtime(services.create_segment, workspace, "Outer", {"segment": "inner"})
    with pytest.raises(services.InvalidRule, match="Outer"):
        services.delete_segment(inner)


def test_other_workspaces_contacts_never_join(workspace, other_workspace, realtime):
    segment = realtime(services.create_segment, workspace, "All", {"all": []})
    ContactFactory(workspace=other_workspace)
    mine = ContactFactory(workspace=workspace)
    services.refresh_segment(Segment.objects.get(pk=segment.pk))
    assert members(segment) == {mine.pk}
    assert not SegmentMembership.objects.filter(~Q(workspace=workspace)).exists()


def test_members_endpoint_answers_about_one_contact(workspace, realtime, api_key_for):
    contact = ContactFactory(workspace=workspace)
    other = ContactFactory(workspace=workspace, attributes={"x": 1})
    segment = realtime(
        services.create_segment, workspace, "No x", {"attr": "x", "op": "not_exists"}
    )
    api = api_key_for(workspace, ["read"])
    url = reverse("api:segment-members", args=[segment.pk])
    assert [c["id"] for c in api.get(url).json()["results"]] == [contact.pk]
    assert api.get(url, {"contact": other.pk}).json()["results"] == []


def test_changes_gather_and_one_task_drains_them(workspace, realtime, settings):
    segment = realtime(
        services.create_segment, workspace, "Pros", {"attr": "plan", "op": "eq", "value": "pro"}
    )
    contacts = ContactFactory.create_batch(3, workspace=workspace, attributes={"plan": "pro"})
    # As if a worker had died after the changes were recorded: the sweeper finds them.
    redis = redis_client.client()
    for workspace_id in services.dirty_workspaces():  # left by live-server tests' threads
        redis.delete(services._dirty_key(workspace_id))
    redis.sadd(services._dirty_key(workspace.pk), *[c.pk for c in contacts])
    assert workspace.pk in services.dirty_workspaces()
    from apps.segments.tasks import sweep_dirty_contacts_task

    assert sweep_dirty_contacts_task() == 3
    assert members(segment) == {c.pk for c in contacts}
    assert workspace.pk not in services.dirty_workspaces()


def test_first_build_keeps_real_time_members_and_drops_stale_ones(workspace):
    """Members added in real time before the first build: the build takes them into account
    (no duplicate, no stale member, no entered event for the first population)."""
    pro, free = ContactFactory.create_batch(2, workspace=workspace, attributes={"plan": "pro"})
    segment = Segment.objects.create(
        workspace=workspace, name="Pros", slug="pros",
        rule={"attr": "plan", "op": "eq", "value": "pro"},
    )  # fmt: skip
    # As if real-time evaluation had added both, and then free's plan changed.
    for contact in (pro, free):
        SegmentMembership.objects.create(workspace=workspace, segment=segment, contact=contact)
    free.attributes = {"plan": "free"}
    free.save(update_fields=["attributes"])
    new = ContactFactory(workspace=workspace, attributes={"plan": "pro"})

    assert services.refresh_segment(segment) == (1, 1)
    segment.refresh_from_db()
    assert members(segment) == {pro.pk, new.pk}
    assert segment.member_count == 2
    assert segment_events(new) == []


def test_first_build_of_a_new_segment_stores_every_member_once(workspace):
    contacts = ContactFactory.create_batch(3, workspace=workspace, attributes={"plan": "pro"})
    ContactFactory(workspace=workspace, attributes={"plan": "free"})
    segment = Segment.objects.create(
        workspace=workspace, name="Pros", slug="pros",
        rule={"attr": "plan", "op": "eq", "value": "pro"},
    )  # fmt: skip
    assert services.refresh_segment(segment) == (3, 0)
    segment.refresh_from_db()
    assert members(segment) == {c.pk for c in contacts}
    assert (segment.member_count, segment.sizes.get().size) == (3, 3)
    assert not Event.objects.filter(name__startswith="segment_").exists()
    assert services.refresh_segment(segment) == (0, 0)  # a refresh with nothing new
