"""The marketer's contact pages: the list with search, filters and keyset pages, the lists
page, and the customer 360 page with its edits, consent, lists, timeline, export and erasure."""

import datetime as dt
import json
import re
from urllib.parse import unquote

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.contacts.choices import EventSource
from apps.contacts.models import (
    AnonymousId,
    Consent,
    ConsentChange,
    Contact,
    ContactList,
    ContactMerge,
    ErasureRecord,
    Event,
    ListMembership,
)
from apps.contacts.services.consent import set_consent
from apps.contacts.services.lists import add_to_list
from apps.contacts.services.timeline import TimelineCursor, contact_timeline
from tests.contacts.factories import ContactFactory, ContactListFactory, EventFactory

HTMX = {"HTTP_HX_REQUEST": "true"}


def shown_ids(response) -> list[int]:
    """The contacts in the table, in the order shown."""
    return [int(pk) for pk in re.findall(r'<tr id="contact-(\d+)"', response.content.decode())]


@pytest.fixture
def people(workspace):
    """Five Acme contacts with names, lists, consent and attributes to filter on."""
    vip = ContactListFactory(workspace=workspace, name="VIP", slug="vip")
    ann = ContactFactory(workspace=workspace, first_name="Ann", last_name="Berg",
                         email="ann@acme.test", external_id="ext-1",
                         attributes={"plan": "pro", "seats": 3})  # fmt: skip
    anna = ContactFactory(workspace=workspace, first_name="Anna", last_name="Dahl",
                          email="anna.d@acme.test", external_id="ext-2",
                          attributes={"plan": "free", "beta": True})  # fmt: skip
    bo = ContactFactory(workspace=workspace, first_name="Bo", last_name="Annersen",
                        email="bo@acme.test", external_id="ann",
                        attributes={"plan": "pro", "seats": 30})  # fmt: skip
    cy = ContactFactory(workspace=workspace, first_name="Cy", last_name="Eng",
                        email="cy@acme.test", external_id="ext-4", attributes={})  # fmt: skip
    anonymous = Contact.objects.create(workspace=workspace)
    add_to_list(vip, [ann.pk, bo.pk], EventSource.UI)
    set_consent(ann, "email", "subscribed", "test")
    set_consent(bo, "email", "unsubscribed", "test")
    set_consent(cy, "email", "unknown", "test")
    set_consent(cy, "sms", "subscribed", "test")
    return {"vip": vip, "ann": ann, "anna": anna, "bo": bo, "cy": cy, "anonymous": anonymous}


@pytest.fixture
def other_brand_contact(other_workspace):
    return ContactFactory(workspace=other_workspace, email="ann@other.test", first_name="Ann")


# The contact list ------------------------------------------------------------------------


def test_list_shows_the_workspaces_contacts_newest_first(
    people, other_brand_contact, marketer, client_for
):
    response = client_for(marketer).get(reverse("contacts:list"))
    assert response.status_code == 200
    p = people
    assert shown_ids(response) == [p[n].pk for n in ("anonymous", "cy", "bo", "anna", "ann")]
    content = response.content.decode()
    assert "ann@other.test" not in content
    assert 'hx-get="/contacts/"' in content and 'hx-push-url="true"' in content


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"q": "ann"}, {"ann", "anna", "bo"}),  # first name, email, last name, exact external id
        ({"q": "ANNA"}, {"anna"}),
        ({"q": "ann@"}, {"ann"}),  # an @ searches emails only
        ({"q": "ext-2"}, {"anna"}),
        ({"q": "ext"}, set()),  # external ids match exactly, not by their start
        ({"q": "berg"}, {"ann"}),
        ({"list": "vip"}, {"ann", "bo"}),
        ({"consent_channel": "email", "consent_status": "subscribed"}, {"ann"}),
        ({"consent_channel": "email", "consent_status": "unsubscribed"}, {"bo"}),
        ({"consent_channel": "email", "consent_status": "unknown"}, {"anna", "cy", "anonymous"}),
        ({"consent_channel": "sms", "consent_status": "subscribed"}, {"cy"}),
        ({"attribute": "plan", "value": "pro"}, {"ann", "bo"}),
        ({"attribute": "seats", "value": "3"}, {"ann"}),
        ({"attribute": "beta", "value": "true"}, {"anna"}),
        ({"attribute": "seats"}, {"ann", "bo"}),
        ({"q": "ann", "list": "vip", "attribute": "seats", "value": "30"}, {"bo"}),
    ],
)
def test_search_and_filters_find_exactly_the_right_contacts(
    query, expected, people, other_brand_contact, analyst, client_for
):
    response = client_for(analyst).get(reverse("contacts:list"), query)
    assert response.status_code == 200
    assert set(shown_ids(response)) == {people[name].pk for name in expected}


def test_htmx_filter_request_gets_the_table_partial_only(people, marketer, client_for):
    client = client_for(marketer)
    response = client.get(reverse("contacts:list"), {"list": "vip"}, **HTMX)
    content = response.content.decode()
    assert content.lstrip().startswith('<section id="contact-table"')
    assert "<html" not in content
    assert set(shown_ids(response)) == {people["ann"].pk, people["bo"].pk}
    assert response["Vary"].find("HX-Request") >= 0

    boosted = client.get(reverse("contacts:list"), **HTMX, HTTP_HX_BOOSTED="true")
    assert "<html" in boosted.content.decode()
    restore = client.get(reverse("contacts:list"), **HTMX, HTTP_HX_HISTORY_RESTORE_REQUEST="true")
    assert "<html" in restore.content.decode()


def test_keyset_pages_walk_through_120_contacts_without_overlap_or_gap(
    workspace, marketer, client_for, django_assert_max_num_queries
):
    contacts = ContactFactory.create_batch(120, workspace=workspace)
    expected = sorted((c.pk for c in contacts), reverse=True)
    client = client_for(marketer)
    seen, params, pages = [], {}, 0
    while True:
        with django_assert_max_num_queries(6) as captured:
            response = client.get(reverse("contacts:list"), params)
        assert not any("COUNT(" in q["sql"].upper() for q in captured.captured_queries)
        ids = shown_ids(response)
        seen.extend(ids)
        pages += 1
        match = re.search(r'after=(\d+)" rel="next"', response.content.decode())
        if not match:
            break
        assert int(match.group(1)) == ids[-1]
        params = {"after": match.group(1)}
        assert "First page" in client.get(reverse("contacts:list"), params).content.decode()
    assert pages == 3
    assert seen == expected  # newest first, every contact once


def test_next_page_link_keeps_the_filters(workspace, marketer, client_for):
    contacts = ContactFactory.create_batch(55, workspace=workspace, attributes={"plan": "pro"})
    ContactFactory.create_batch(3, workspace=workspace, attributes={"plan": "free"})
    client = client_for(marketer)
    first = client.get(reverse("contacts:list"), {"attribute": "plan", "value": "pro"})
    match = re.search(r'href="\?([^"]+)" rel="next"', first.content.decode())
    query = match.group(1).replace("&amp;", "&")
    assert query.startswith("attribute=plan&value=pro&after=")
    second = client.get(f"{reverse('contacts:list')}?{query}")
    pks = {c.pk for c in contacts}
    assert len(shown_ids(first)) == 50 and len(shown_ids(second)) == 5
    assert set(shown_ids(first)) | set(shown_ids(second)) == pks


def test_bulk_add_to_list_adds_the_ticked_contacts_and_says_how_many(
    people, other_brand_contact, marketer, client_for
):
    p = people
    client = client_for(marketer)
    response = client.post(
        reverse("contacts:bulk_add_to_list"),
        {"contact_list": p["vip"].pk, "contact": [p["ann"].pk, p["anna"].pk, p["cy"].pk,
                                                 other_brand_contact.pk],
         "next": "/contacts/?q=an"},
        follow=True,
    )  # fmt: skip
    assert response.redirect_chain == [("/contacts/?q=an", 302)]
    assert "2 contacts added to VIP." in response.content.decode()
    members = set(ListMembership.objects.filter(contact_list=p["vip"]).values_list("contact_id"))
    assert members == {(p["ann"].pk,), (p["anna"].pk,), (p["bo"].pk,), (p["cy"].pk,)}
    assert not ListMembership.objects.filter(contact=other_brand_contact).exists()


def test_bulk_add_without_ticked_contacts_adds_nothing(people, marketer, client_for):
    response = client_for(marketer).post(
        reverse("contacts:bulk_add_to_list"), {"contact_list": people["vip"].pk}, follow=True
    )
    assert "Tick the contacts to add first." in response.content.decode()
    assert ListMembership.objects.filter(contact_list=people["vip"]).count() == 2


def test_bulk_add_refuses_another_workspaces_list(people, other_workspace, marketer, client_for):
    foreign = ContactListFactory(workspace=other_workspace)
    response = client_for(marketer).post(
        reverse("contacts:bulk_add_to_list"),
        {"contact_list": foreign.pk, "contact": [people["ann"].pk]},
    )
    assert response.status_code == 404
    assert not ListMembership.objects.filter(contact_list=foreign).exists()


# Lists -----------------------------------------------------------------------------------


def test_lists_page_shows_member_counts_in_one_query(
    people, workspace, analyst, client_for, django_assert_max_num_queries
):
    ContactListFactory(workspace=workspace, name="Empty", slug="empty")
    client = client_for(analyst)
    client.get(reverse("contacts:lists"))  # session and workspace caches warm
    with django_assert_max_num_queries(5) as captured:
        response = client.get(reverse("contacts:lists"))
    list_queries = [q for q in captured.captured_queries if "contacts_contactlist" in q["sql"]]
    assert len(list_queries) == 1
    content = response.content.decode()
    assert re.search(r'\?list=vip">VIP</a></td>\s*<td></td>\s*<td class="numeric">2</td>', content)
    assert re.search(
        r'\?list=empty">Empty</a></td>\s*<td></td>\s*<td class="numeric">0</td>', content
    )
    assert "Create a list" not in content  # analysts read


def test_marketer_creates_a_list(workspace, marketer, client_for):
    response = client_for(marketer).post(
        reverse("contacts:lists"), {"name": "Spring sale", "description": "From the fair"}
    )
    assert response.status_code == 302
    created = ContactList.objects.for_workspace(workspace).get()
    assert (created.name, created.slug, created.description) == (
        "Spring sale",
        "spring-sale",
        "From the fair",
    )


# The contact page ------------------------------------------------------------------------


@pytest.fixture
def busy_contact(people, workspace):
    """Ann with 60 events (some at the same instant), anonymous ids and a merge."""
    ann = people["ann"]
    start = timezone.now() - dt.timedelta(days=10)
    for n in range(60):
        EventFactory(contact=ann, name=f"event_{n}", occurred_at=start + dt.timedelta(hours=n // 3),
                     properties={"n": n, "path": f"/p/{n}", "cart": {"items": 2}})  # fmt: skip
    AnonymousId.objects.create(workspace=workspace, contact=ann, anonymous_id="anon-7f3")
    ContactMerge.objects.create(workspace=workspace, contact=ann, merged_contact_id=999,
                                merged_anonymous_ids=["anon-7f3"], events_moved=4,
                                source=EventSource.SEGMENT)  # fmt: skip
    return ann


def test_contact_page_shows_the_whole_customer(
    busy_contact, marketer, client_for, django_assert_max_num_queries
):
    client = client_for(marketer)
    with django_assert_max_num_queries(13):  # one per timeline source (events, messages)
        response = client.get(reverse("contacts:detail", args=[busy_contact.pk]))
    assert response.status_code == 200
    content = response.content.decode()
    for text in ("Ann Berg", "ann@acme.test", "ext-1", "plan", "pro", "seats", "Number",
                 "Subscribed", "VIP", "anon-7f3", "#999 merged in", "4 events moved",
                 "Export data (JSON)", "Erase contact", "Edit"):  # fmt: skip
        assert text in content, text
    assert content.count('class="timeline-entry timeline-event"') == 25
    # newest first: three events per hour, the last hour holds 57, 58 and 59
    assert content.index(">event_59<") < content.index(">event_57<") < content.index(">event_35<")
    assert ">event_34<" not in content
    assert 'hx-trigger="revealed"' in content
    assert "{&quot;items&quot;: 2}" in content  # nested properties shown as JSON


def test_analyst_reads_the_contact_page_without_edit_controls(busy_contact, analyst, client_for):
    content = client_for(analyst).get(reverse("contacts:detail", args=[busy_contact.pk]))
    content = content.content.decode()
    assert "ann@acme.test" in content and "Export data (JSON)" in content
    for control in ("Erase contact", reverse("contacts:edit", args=[busy_contact.pk]),
                    'name="status"', 'name="action"'):  # fmt: skip
        assert control not in content


def test_timeline_pages_through_every_event_once_newest_first(busy_contact, marketer, client_for):
    client = client_for(marketer)
    url = reverse("contacts:timeline", args=[busy_contact.pk])
    names, before, pages = [], None, 0
    while True:
        response = client.get(url, {"before": before} if before else {}, **HTMX)
        content = response.content.decode()
        assert "<html" not in content
        names.extend(re.findall(r'class="timeline-title">([^<]+)<', content))
        pages += 1
        match = re.search(r'hx-get="[^"]+\?before=([^"]+)" hx-trigger="revealed"', content)
        if not match:
            break
        before = unquote(match.group(1))
    assert pages == 3
    expected = [e.name for e in busy_contact.events.order_by("-occurred_at", "-id")]
    assert names == expected
    assert len(set(names)) == 60


def test_timeline_without_htmx_is_a_page_and_a_bad_cursor_is_refused(
    busy_contact, marketer, client_for
):
    client = client_for(marketer)
    url = reverse("contacts:timeline", args=[busy_contact.pk])
    assert "<html" in client.get(url).content.decode()
    assert client.get(url, {"before": "yesterday"}).status_code == 400


def test_timeline_cursor_orders_entries_of_one_instant_by_kind_and_id(busy_contact):
    first = contact_timeline(busy_contact, limit=4)
    cursor = TimelineCursor.parse(str(first.next_cursor))
    assert cursor == first.next_cursor
    rest = contact_timeline(busy_contact, before=cursor, limit=100)
    together = [entry.id for entry in first.entries + rest.entries]
    assert together == list(
        busy_contact.events.order_by("-occurred_at", "-id").values_list("id", flat=True)
    )
    assert rest.next_cursor is None


def test_edit_stores_typed_attributes_and_profile(people, marketer, client_for):
    ann = people["ann"]
    client = client_for(marketer)
    form = client.get(reverse("contacts:edit", args=[ann.pk])).content.decode()
    assert 'value="seats"' in form and 'value="3"' in form
    data = {
        "first_name": "Annie", "last_name": "Berg", "email": "ANNIE@acme.test",
        "phone": "+45 20 12 34 56", "external_id": "ext-1", "timezone": "Europe/Stockholm",
        "locale": "sv-SE",
        "attributes-TOTAL_FORMS": "6", "attributes-INITIAL_FORMS": "2",
        "attributes-0-key": "plan", "attributes-0-value": "team", "attributes-0-type": "string",
        "attributes-1-key": "seats", "attributes-1-value": "3", "attributes-1-type": "number",
        "attributes-1-DELETE": "on",
        "attributes-2-key": "score", "attributes-2-value": "4,5", "attributes-2-type": "number",
        "attributes-3-key": "vip", "attributes-3-value": "ja", "attributes-3-type": "boolean",
        "attributes-4-key": "renews", "attributes-4-value": "2025-06-01",
        "attributes-4-type": "date",
        "attributes-5-key": "", "attributes-5-value": "", "attributes-5-type": "string",
    }  # fmt: skip
    response = client.post(reverse("contacts:edit", args=[ann.pk]), data)
    assert response.status_code == 302
    assert response.url == reverse("contacts:detail", args=[ann.pk])
    ann.refresh_from_db()
    assert ann.attributes == {"plan": "team", "score": 4.5, "vip": True, "renews": "2025-06-01"}
    assert (ann.first_name, ann.email, ann.phone, ann.timezone, ann.locale) == (
        "Annie",
        "annie@acme.test",
        "+4520123456",
        "Europe/Stockholm",
        "sv-SE",
    )


def edit_data(contact, **changes):
    data = {
        name: getattr(contact, name) or ""
        for name in (
            "first_name",
            "last_name",
            "email",
            "phone",
            "external_id",
            "timezone",
            "locale",
        )
    }
    data |= {
        "attributes-TOTAL_FORMS": "1",
        "attributes-INITIAL_FORMS": "1",
        "attributes-0-key": "plan",
        "attributes-0-value": "pro",
        "attributes-0-type": "string",
    }
    return data | changes  # fmt: skip


def test_edit_shows_the_services_errors_and_changes_nothing(people, marketer, client_for):
    ann = people["ann"]
    before = Contact.objects.filter(pk=ann.pk).values().get()
    client = client_for(marketer)
    url = reverse("contacts:edit", args=[ann.pk])

    response = client.post(url, edit_data(ann, email="not-an-email", first_name="Changed"))
    assert response.status_code == 200
    content = response.content.decode()
    assert "not-an-email is not a valid email address." in content
    assert 'aria-invalid="true"' in content

    taken = client.post(url, edit_data(ann, email="bo@acme.test"))
    assert "Another contact already has this email." in taken.content.decode()

    bad_number = client.post(url, edit_data(ann, **{"attributes-0-type": "number"}))
    assert "pro is not a number." in bad_number.content.decode()
    assert Contact.objects.filter(pk=ann.pk).values().get() == before


def test_edit_keeps_structured_attributes_it_cannot_show(workspace, marketer, client_for):
    attributes = {"plan": "pro", "address": {"city": "Aarhus"}}
    contact = ContactFactory(workspace=workspace, attributes=attributes)
    response = client_for(marketer).post(
        reverse("contacts:edit", args=[contact.pk]),
        edit_data(contact, **{"attributes-0-DELETE": "on"}),
    )
    assert response.status_code == 302
    contact.refresh_from_db()
    assert contact.attributes == {"address": {"city": "Aarhus"}}


def test_consent_change_appends_to_the_history(people, marketer, client_for):
    ann = people["ann"]
    client = client_for(marketer)
    url = reverse("contacts:consent", args=[ann.pk])
    response = client.post(url, {"channel": "email", "status": "unsubscribed"}, follow=True)
    assert "Email consent is now Unsubscribed." in response.content.decode()
    panel = client.post(url, {"channel": "sms", "status": "subscribed"}, **HTMX)
    content = panel.content.decode()
    assert content.lstrip().startswith('<article class="panel" id="consent-panel">')
    # two rows of history, and the source of each channel's current consent
    assert content.count("ui:marketer@acme.test") == 4
    history = list(
        ConsentChange.objects.filter(contact=ann)
        .order_by("id")
        .values_list("channel", "status", "source")
    )
    assert history == [
        ("email", "subscribed", "test"),
        ("email", "unsubscribed", "ui:marketer@acme.test"),
        ("sms", "subscribed", "ui:marketer@acme.test"),
    ]
    client.post(url, {"channel": "sms", "status": "subscribed"})  # the same again: no new row
    assert ConsentChange.objects.filter(contact=ann).count() == 3
    assert Consent.objects.get(contact=ann, channel="email").status == "unsubscribed"


def test_consent_change_refuses_unknown_values(people, marketer, client_for):
    ann = people["ann"]
    response = client_for(marketer).post(
        reverse("contacts:consent", args=[ann.pk]), {"channel": "fax", "status": "subscribed"}
    )
    assert response.status_code == 302
    assert ConsentChange.objects.filter(contact=ann).count() == 1


def test_list_membership_add_and_remove_on_the_contact_page(
    people, workspace, marketer, client_for
):
    anna, vip = people["anna"], people["vip"]
    newsletter = ContactListFactory(workspace=workspace, name="Newsletter", slug="newsletter")
    client = client_for(marketer)
    url = reverse("contacts:list_membership", args=[anna.pk])
    response = client.post(url, {"contact_list": vip.pk, "action": "add"}, follow=True)
    assert "Added to VIP." in response.content.decode()
    partial = client.post(url, {"contact_list": newsletter.pk, "action": "add"}, **HTMX)
    assert (
        partial.content.decode().lstrip().startswith('<article class="panel" id="contact-lists">')
    )
    slugs = ListMembership.objects.filter(contact=anna).values_list("contact_list__slug", flat=True)
    assert set(slugs) == {"vip", "newsletter"}
    client.post(url, {"contact_list": vip.pk, "action": "remove"})
    assert list(slugs.all()) == ["newsletter"]


def test_export_json_is_a_download_of_everything_held(busy_contact, marketer, client_for):
    response = client_for(marketer).get(reverse("contacts:export_json", args=[busy_contact.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Content-Disposition"] == (
        f'attachment; filename="contact-{busy_contact.pk}.json"'
    )
    data = json.loads(response.content)
    assert data["contact"]["email"] == "ann@acme.test"
    assert data["contact"]["attributes"] == {"plan": "pro", "seats": 3}
    assert data["anonymous_ids"] == ["anon-7f3"]
    assert data["lists"] == ["VIP"]
    assert [c["status"] for c in data["consent"]] == ["subscribed"]
    assert len(data["events"]) == 60
    assert data["events"][0]["name"] == "event_0"
    assert data["merges"][0]["merged_contact_id"] == 999


def test_erase_needs_the_email_or_id_typed(busy_contact, marketer, client_for):
    client = client_for(marketer)
    url = reverse("contacts:erase", args=[busy_contact.pk])
    assert "Type the contact" in client.get(url).content.decode()
    response = client.post(url, {"confirm": "someone@else.test"})
    assert response.status_code == 200
    assert "not this contact" in response.content.decode()
    assert Contact.objects.filter(pk=busy_contact.pk).exists()
    assert not ErasureRecord.objects.exists()


@pytest.mark.parametrize("typed", ["ANN@acme.test", "{pk}"])
def test_erase_deletes_the_contact_and_events_and_keeps_a_record_without_pii(
    typed, busy_contact, marketer, client_for
):
    pk = busy_contact.pk
    response = client_for(marketer).post(
        reverse("contacts:erase", args=[pk]), {"confirm": typed.format(pk=pk)}, follow=True
    )
    assert response.redirect_chain == [(reverse("contacts:list"), 302)]
    assert f"Contact #{pk} was erased" in response.content.decode()
    assert not Contact.objects.filter(pk=pk).exists()
    assert not Event.objects.filter(contact_id=pk).exists()
    assert not AnonymousId.objects.filter(anonymous_id="anon-7f3").exists()
    record = ErasureRecord.objects.get()
    assert (record.contact_id_erased, record.events_deleted, record.via) == (pk, 60, "ui")
    assert record.requested_by == marketer
    stored = json.dumps(list(ErasureRecord.objects.values()), default=str)
    for pii in ("ann@acme.test", "Ann", "Berg", "ext-1", "anon-7f3"):
        assert pii not in stored


# Access: outsiders get 404, analysts change nothing --------------------------------------

CONTACT_GETS = ["contacts:detail", "contacts:edit", "contacts:timeline", "contacts:export_json",
                "contacts:erase"]  # fmt: skip
CONTACT_POSTS = {
    "contacts:edit": {"first_name": "Hacked", "attributes-TOTAL_FORMS": "0",
                      "attributes-INITIAL_FORMS": "0"},
    "contacts:consent": {"channel": "email", "status": "unsubscribed"},
    "contacts:list_membership": {"action": "remove"},
    "contacts:erase": {"confirm": "ann@acme.test"},
}  # fmt: skip


def state_of(contact):
    return {
        "contact": Contact.objects.filter(pk=contact.pk).values().first(),
        "consent": list(ConsentChange.objects.filter(contact=contact).values_list("id")),
        "lists": list(ListMembership.objects.filter(contact=contact).values_list("id")),
        "events": Event.objects.filter(contact=contact).count(),
        "erased": ErasureRecord.objects.count(),
    }


@pytest.mark.parametrize("name", CONTACT_GETS)
def test_outsider_gets_404_reading_another_workspaces_contact(
    name, busy_contact, outsider, client_for
):
    response = client_for(outsider).get(reverse(name, args=[busy_contact.pk]))
    assert response.status_code == 404


@pytest.mark.parametrize("name", list(CONTACT_POSTS))
def test_outsider_gets_404_changing_another_workspaces_contact(
    name, busy_contact, people, outsider, client_for
):
    before = state_of(busy_contact)
    data = CONTACT_POSTS[name] | {"contact_list": people["vip"].pk}
    response = client_for(outsider).post(reverse(name, args=[busy_contact.pk]), data)
    assert response.status_code == 404
    assert state_of(busy_contact) == before


def test_outsider_cannot_add_to_another_workspaces_list(people, outsider, client_for):
    response = client_for(outsider).post(
        reverse("contacts:bulk_add_to_list"),
        {"contact_list": people["vip"].pk, "contact": [people["anna"].pk]},
    )
    assert response.status_code == 404
    assert ListMembership.objects.filter(contact_list=people["vip"]).count() == 2


@pytest.mark.parametrize("name", list(CONTACT_POSTS))
def test_analyst_gets_403_changing_a_contact(name, busy_contact, people, analyst, client_for):
    before = state_of(busy_contact)
    data = CONTACT_POSTS[name] | {"contact_list": people["vip"].pk}
    response = client_for(analyst).post(reverse(name, args=[busy_contact.pk]), data)
    assert response.status_code == 403
    assert state_of(busy_contact) == before


def test_analyst_gets_403_on_bulk_add_and_list_creation(people, analyst, client_for):
    client = client_for(analyst)
    bulk = client.post(
        reverse("contacts:bulk_add_to_list"),
        {"contact_list": people["vip"].pk, "contact": [people["anna"].pk]},
    )
    create = client.post(reverse("contacts:lists"), {"name": "Mine"})
    assert (bulk.status_code, create.status_code) == (403, 403)
    assert ListMembership.objects.filter(contact_list=people["vip"]).count() == 2
    assert ContactList.objects.count() == 1
