"""Each operator's meaning, pinned: SQL and Python give exactly the expected contacts."""

import datetime as dt

import pytest
from django.db import connection

from apps.contacts.models import Consent, Contact, ContactList, Event, ListMembership
from apps.segments.rules import ContactFacts, compile_rule, evaluate_rule, validate_rule

NOW = dt.datetime(2026, 6, 15, 12, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)

PEOPLE = {
    "ann": {
        "email": "ann@shop.test",
        "first_name": "Ann",
        "attributes": {
            "plan": "pro",
            "score": 2,
            "beta": True,
            "tags": ["vip", "b"],
            "renewal": "2026-06-20",
        },
        "events": [
            ("purchase", {"amount": 150}, NOW - 2 * DAY),
            ("purchase", {"amount": 90}, NOW - 3 * DAY),
            ("purchase", {"amount": 120}, NOW - 40 * DAY),
        ],
        "consents": {"email": "subscribed"},
        "lists": {"vip"},
    },
    "bo": {
        "email": "bo@x.test",
        "first_name": "Bo",
        "attributes": {"plan": "Free", "score": 2.5, "beta": "true", "renewal": "soon"},
        "events": [("purchase", {"amount": 200}, NOW - 1 * DAY)],
        "consents": {"email": "unsubscribed"},
        "lists": set(),
    },
    "cy": {
        "email": None,
        "first_name": "",
        "attributes": {"score": "2", "tags": "vip-list", "renewal": "2026-06-01T10:00:00Z"},
        "events": [("page", {"path": "/"}, NOW)],
        "consents": {},
        "lists": set(),
    },
}

CASES = [
    ({"attr": "plan", "op": "eq", "value": "pro"}, {"ann"}),
    ({"attr": "plan", "op": "neq", "value": "pro"}, {"bo"}),
    ({"not": {"attr": "plan", "op": "eq", "value": "pro"}}, {"bo", "cy"}),
    ({"attr": "plan", "op": "in", "value": ["pro", "Free"]}, {"ann", "bo"}),
    ({"attr": "plan", "op": "not_in", "value": ["pro"]}, {"bo"}),
    ({"attr": "plan", "op": "starts_with", "value": "fr"}, {"bo"}),
    ({"attr": "plan", "op": "exists"}, {"ann", "bo"}),
    ({"attr": "plan", "op": "not_exists"}, {"cy"}),
    ({"attr": "score", "op": "eq", "value": 2}, {"ann"}),
    ({"attr": "score", "op": "eq", "value": "2"}, {"cy"}),
    ({"attr": "score", "op": "gt", "value": 2}, {"bo"}),
    ({"attr": "score", "op": "gte", "value": 2}, {"ann", "bo"}),
    ({"attr": "score", "op": "lt", "value": 2.5}, {"ann"}),
    ({"attr": "score", "op": "lte", "value": 2.5}, {"ann", "bo"}),
    ({"attr": "beta", "op": "eq", "value": True}, {"ann"}),
    ({"attr": "tags", "op": "contains", "value": "VIP"}, {"cy"}),
    ({"attr": "tags", "op": "contains", "value": "vip"}, {"ann", "cy"}),
    ({"attr": "renewal", "op": "after", "value": "2026-06-15"}, {"ann"}),
    ({"attr": "renewal", "op": "before", "value": "2026-06-20"}, {"cy"}),
    ({"attr": "renewal", "op": "within_last_days", "value": 30}, {"cy"}),
    ({"attr": "email", "op": "contains", "value": "SHOP"}, {"ann"}),
    ({"attr": "email", "op": "not_exists"}, {"cy"}),
    ({"attr": "first_name", "op": "eq", "value": "Bo"}, {"bo"}),
    ({"attr": "first_name", "op": "exists"}, {"ann", "bo"}),
    ({"event": "purchase"}, {"ann", "bo"}),
    ({"event": "purchase", "count": {"gte": 2}, "within_days": 30}, {"ann"}),
    ({"event": "purchase", "count": {"gte": 3}, "within_days": 30}, set()),
    ({"event": "purchase", "count": {"gte": 2}}, {"ann"}),
    (
        {
            "event": "purchase",
            "count": {"gte": 2},
            "within_days": 30,
            "where": [{"prop": "amount", "op": "gt", "value": 80}],
        },
        {"ann"},
    ),
    (
        {
            "event": "purchase",
            "within_days": 30,
            "where": [{"prop": "amount", "op": "gt", "value": 100}],
        },
        {"ann", "bo"},
    ),
    ({"event": "purchase", "count": {"eq": 0}}, {"cy"}),
    ({"event": "purchase", "count": {"lt": 2}}, {"bo", "cy"}),
    ({"event": "purchase", "count": {"gt": 1, "lte": 3}}, {"ann"}),
    ({"consent": "email"}, {"ann"}),
    ({"consent": "email", "status": "unsubscribed"}, {"bo"}),
    ({"consent": "email", "status": "unknown"}, {"cy"}),
    ({"list": "vip"}, {"ann"}),
    ({"not": {"list": "vip"}}, {"bo", "cy"}),
    ({"all": []}, {"ann", "bo", "cy"}),
    ({"any": []}, set()),
    ({"any": [{"consent": "email"}, {"attr": "score", "op": "gt", "value": 2}]}, {"ann", "bo"}),
    ({"all": [{"event": "purchase"}, {"not": {"segment": "pros"}}]}, {"bo"}),
]


@pytest.fixture
def people(workspace):
    vip = ContactList.objects.create(workspace=workspace, name="VIP", slug="vip")
    facts = {}
    for key, person in PEOPLE.items():
        contact = Contact.objects.create(
            workspace=workspace,
            email=person["email"],
            first_name=person["first_name"],
            attributes=person["attributes"],
            created_at=NOW - 100 * DAY,
        )
        for name, properties, occurred_at in person["events"]:
            Event.objects.create(
                workspace=workspace,
                contact=contact,
                name=name,
                properties=properties,
                occurred_at=occurred_at,
            )
        for channel, status in person["consents"].items():
            Consent.objects.create(
                workspace=workspace, contact=contact, channel=channel, status=status
            )
        if "vip" in person["lists"]:
            ListMembership.objects.create(
                workspace=workspace, contact=contact, contact_list=vip, source="api"
            )
        facts[key] = (
            contact.pk,
            ContactFacts(
                fields={
                    "email": person["email"],
                    "first_name": person["first_name"],
                    "created_at": NOW - 100 * DAY,
                },
                attributes=person["attributes"],
                events=person["events"],
                consents=person["consents"],
                lists=person["lists"],
            ),
        )
    return facts


NESTED = {"pros": {"attr": "plan", "op": "eq", "value": "pro"}}


@pytest.mark.parametrize(("rule", "expected"), CASES)
def test_operator_meaning_in_sql_and_python(rule, expected, people, workspace):
    assert validate_rule(rule, segment_rule=NESTED.get) == []
    sql, params = compile_rule(rule, workspace_id=workspace.pk, now=NOW, segment_rule=NESTED.get)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT c.id FROM contacts_contact c WHERE c.workspace_id = %(ws)s AND {sql}",  # noqa: S608
            params | {"ws": workspace.pk},
        )
        from_sql = {row[0] for row in cursor.fetchall()}
    names = {pk: key for key, (pk, _facts) in people.items()}
    assert {names[pk] for pk in from_sql} == expected
    from_python = {
        key for key, (_pk, facts) in people.items() if evaluate_rule(rule, facts, NOW, NESTED.get)
    }
    assert from_python == expected


@pytest.mark.parametrize(
    ("rule", "fragment"),
    [
        ({"attr": "plan", "op": "bigger", "value": 1}, "unknown op 'bigger'"),
        ({"attr": "score", "op": "gt", "value": "2"}, "gt needs a number"),
        ({"attr": "email", "op": "gt", "value": 2}, "does not apply to the text field"),
        ({"attr": "created_at", "op": "eq", "value": "x"}, "created_at is a date"),
        ({"attr": "renewal", "op": "before", "value": "next week"}, "ISO 8601"),
        ({"attr": "plan", "op": "in", "value": []}, "list of values"),
        ({"event": "purchase", "count": {"most": 2}}, "unknown op 'most'"),
        ({"event": "purchase", "within_days": -1}, "within_days"),
        ({"event": "purchase", "where": [{"prop": "amount", "op": "gt"}]}, "gt needs a number"),
        ({"consent": "fax"}, "unknown channel"),
        ({"list": "nope"}, "there is no list 'nope'"),
        ({"segment": "ghost"}, "there is no segment 'ghost'"),
        ({"all": {"attr": "plan"}}, "must be a list"),
        ({"colour": "red"}, "unknown condition"),
        ({"all": [], "any": []}, "a group has one key"),
    ],
)
def test_validation_names_the_problem_and_where(rule, fragment):
    problems = validate_rule(
        {"all": [{"attr": "plan", "op": "exists"}, rule]},
        segment_rule=NESTED.get,
        list_exists={"vip"}.__contains__,
    )
    assert len(problems) == 1, problems
    assert problems[0].startswith("rule.all[1]")
    assert fragment in problems[0]


def test_every_problem_is_listed_at_once():
    problems = validate_rule(
        {"any": [{"attr": "x", "op": "nope"}, {"consent": "fax"}, {"event": ""}]}
    )
    assert len(problems) == 3


def test_a_cycle_of_nested_segments_is_refused():
    rules = {"a": {"segment": "b"}, "b": {"any": [{"segment": "a"}]}}
    problems = validate_rule({"segment": "b"}, segment_rule=rules.get, own_slug="a")
    assert len(problems) == 1
    assert "a cycle of segments: a → b → a" in problems[0]
