"""The SQL compiler and the Python evaluator agree on random contacts, events and rules."""

import datetime as dt

from django.db import connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.contacts.models import Consent, Contact, ContactList, Event, ListMembership
from apps.segments.rules import ContactFacts, compile_rule, evaluate_rule, validate_rule

NOW = dt.datetime(2026, 6, 15, 12, 0, tzinfo=dt.UTC)

# Small pools shared by data and rules, so conditions often meet values they match
# exactly (and the boundaries of every comparison get exercised).
OFFSETS = [
    dt.timedelta(days=-35),
    dt.timedelta(days=-10),
    dt.timedelta(days=-1),
    dt.timedelta(hours=-1),
    dt.timedelta(0),
    dt.timedelta(hours=1),
]
MOMENTS = [NOW + offset for offset in OFFSETS]
moments = st.sampled_from(MOMENTS)
iso_texts = st.one_of(
    moments.map(lambda m: m.isoformat()),
    moments.map(lambda m: m.date().isoformat()),
    moments.map(lambda m: m.strftime("%Y-%m-%dT%H:%M")),
    st.sampled_from(["2026-02-30", "soon", "2026-13-01T00:00"]),
)
POOLS = {
    "plan": st.sampled_from(["free", "pro", "Pro", "", "team"]),
    "score": st.sampled_from([-1, 0, 1, 2, 2.0, 2.5, "2", True]),
    "beta": st.sampled_from([True, False, 1, "true"]),
    "tags": st.one_of(st.lists(st.sampled_from(["a", "pro", "b"]), max_size=2), st.just("pro")),
    "renewal": iso_texts,
    "amount": st.sampled_from([50, 100, 100.0, 150, "100"]),
    "category": st.sampled_from(["shoes", "Shoes", "hats", ""]),
}
attribute_names = ["plan", "score", "beta", "tags", "renewal"]
property_names = ["amount", "category"]


def value_pool(name):
    return st.one_of(st.none(), POOLS[name])


contacts = st.lists(
    st.fixed_dictionaries(
        {
            "email": st.sampled_from([None, "ann@shop.test", "bo@x.test"]),
            "first_name": st.sampled_from(["", "Ann", "anna", "Bo"]),
            "created_at": moments,
            "last_seen_at": st.one_of(st.none(), moments),
            "attributes": st.fixed_dictionaries(
                {}, optional={name: value_pool(name) for name in attribute_names}
            ),
            "events": st.lists(
                st.tuples(
                    st.sampled_from(["purchase", "page"]),
                    st.fixed_dictionaries(
                        {}, optional={name: POOLS[name] for name in property_names}
                    ),
                    moments,
                ),
                max_size=4,
            ),
            "consents": st.dictionaries(
                st.sampled_from(["email", "sms"]),
                st.sampled_from(["subscribed", "unsubscribed", "unknown"]),
                max_size=2,
            ),
            "lists": st.sets(st.sampled_from(["vip", "newsletter"])),
        }
    ),
    min_size=1,
    max_size=4,
)


def value_for(name, op):
    if op in ("exists", "not_exists"):
        return st.just(None)
    if op in ("gt", "gte", "lt", "lte"):
        return st.sampled_from([0, 1, 2, 2.5, 100])
    if op == "within_last_days":
        return st.sampled_from([0, 1, 10, 35])
    if op in ("before", "after"):
        return iso_texts.filter(
            lambda text: text[:2] == "20" and text not in ("2026-02-30", "2026-13-01T00:00")
        )
    if op in ("contains", "starts_with"):
        return st.sampled_from(["a", "pro", "P", "sho", "tr"])
    scalar = POOLS[name].filter(lambda v: not isinstance(v, list)) if name in POOLS else None
    if op in ("in", "not_in"):
        return st.lists(scalar, min_size=1, max_size=3)
    return scalar


def condition(name_key, names, ops):
    return st.tuples(st.sampled_from(names), st.sampled_from(ops)).flatmap(
        lambda pair: value_for(*pair).map(
            lambda value: (
                {name_key: pair[0], "op": pair[1]} | ({} if value is None else {"value": value})
            )
        )
    )


ALL_OPS = [
    "eq",
    "neq",
    "in",
    "not_in",
    "contains",
    "starts_with",
    "gt",
    "gte",
    "lt",
    "lte",
    "before",
    "after",
    "within_last_days",
    "exists",
    "not_exists",
]
TEXT_OPS = ["eq", "neq", "in", "not_in", "contains", "starts_with", "exists", "not_exists"]
DATE_OPS = ["before", "after", "within_last_days", "exists", "not_exists"]
POOLS["email"] = st.sampled_from(["ann@shop.test", "bo@x.test"])
POOLS["first_name"] = st.sampled_from(["Ann", "anna", "Bo"])

attribute_leaf = condition("attr", attribute_names, ALL_OPS)
text_field_leaf = condition("attr", ["email", "first_name"], TEXT_OPS)
date_field_leaf = condition("attr", ["created_at", "last_seen_at"], DATE_OPS)
event_leaf = st.fixed_dictionaries(
    {"event": st.sampled_from(["purchase", "page"])},
    optional={
        "count": st.dictionaries(
            st.sampled_from(["eq", "gte", "gt", "lt", "lte"]),
            st.integers(0, 3),
            min_size=1,
            max_size=2,
        ),
        "within_days": st.sampled_from([1, 10, 35]),
        "where": st.lists(condition("prop", property_names, ALL_OPS), max_size=2),
    },
)
other_leaf = st.one_of(
    st.fixed_dictionaries(
        {"consent": st.sampled_from(["email", "sms"])},
        optional={"status": st.sampled_from(["subscribed", "unsubscribed", "unknown"])},
    ),
    st.fixed_dictionaries({"list": st.sampled_from(["vip", "newsletter"])}),
)
leaves = st.one_of(
    attribute_leaf,
    attribute_leaf,
    text_field_leaf,
    date_field_leaf,
    event_leaf,
    event_leaf,
    other_leaf,
)
rules = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.fixed_dictionaries({"all": st.lists(children, max_size=3)}),
        st.fixed_dictionaries({"any": st.lists(children, max_size=3)}),
        st.fixed_dictionaries({"not": children}),
    ),
    max_leaves=6,
)
rules_with_nested = st.tuples(rules, rules).map(
    lambda pair: ({"any": [pair[0], {"segment": "nested"}]}, {"nested": pair[1]})
)


def store(workspace, people) -> dict[int, ContactFacts]:
    lists = {
        slug: ContactList.objects.create(workspace=workspace, name=slug, slug=slug)
        for slug in ("vip", "newsletter")
    }
    used_emails = set()
    for person in people:  # emails are unique per workspace
        if person["email"] in used_emails:
            person["email"] = None
        used_emails.add(person["email"])
    contacts = Contact.objects.bulk_create(
        Contact(
            workspace=workspace,
            email=person["email"],
            first_name=person["first_name"],
            created_at=person["created_at"],
            last_seen_at=person["last_seen_at"],
            attributes=person["attributes"],
        )
        for person in people
    )
    events, consents, memberships, facts = [], [], [], {}
    for contact, person in zip(contacts, people, strict=True):
        events += [
            Event(
                workspace=workspace,
                contact=contact,
                name=name,
                properties=properties,
                occurred_at=occurred_at,
            )
            for name, properties, occurred_at in person["events"]
        ]
        consents += [
            Consent(workspace=workspace, contact=contact, channel=channel, status=status)
            for channel, status in person["consents"].items()
        ]
        memberships += [
            ListMembership(
                workspace=workspace, contact=contact, contact_list=lists[slug], source="api"
            )
            for slug in person["lists"]
        ]
        facts[contact.pk] = ContactFacts(
            fields={
                "email": person["email"],
                "first_name": person["first_name"],
                "created_at": person["created_at"],
                "last_seen_at": person["last_seen_at"],
            },
            attributes={k: v for k, v in person["attributes"].items() if v is not None},
            events=person["events"],
            consents=person["consents"],
            lists=person["lists"],
        )
    Event.objects.bulk_create(events)
    Consent.objects.bulk_create(consents)
    ListMembership.objects.bulk_create(memberships)
    return facts


class Rollback(Exception):
    pass


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(people=contacts, rule_and_nested=rules_with_nested)
def test_sql_and_python_agree(workspace, people, rule_and_nested):
    rule, nested = rule_and_nested
    assert validate_rule(rule, segment_rule=nested.get) == []
    try:
        with transaction.atomic():
            facts = store(workspace, people)
            sql, params = compile_rule(
                rule, workspace_id=workspace.pk, now=NOW, segment_rule=nested.get
            )
            with connection.cursor() as cursor:
                cursor.execute(
                    f"SELECT c.id FROM contacts_contact c WHERE c.workspace_id = %(ws)s AND {sql}",  # noqa: S608
                    params | {"ws": workspace.pk},
                )
                from_sql = {row[0] for row in cursor.fetchall()}
            from_python = {
                pk for pk, fact in facts.items() if evaluate_rule(rule, fact, NOW, nested.get)
            }
            assert from_sql == from_python, (rule, nested)
            raise Rollback
    except Rollback:
        pass
