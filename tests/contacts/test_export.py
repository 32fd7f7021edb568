"""CSV export of the contact list's filtered contacts, streamed."""

import csv
import io
import json

import pytest
from django.urls import reverse

from apps.contacts.models import ListMembership
from apps.contacts.views.exports import EXPORT_COLUMNS
from tests.contacts.factories import ContactFactory, ContactListFactory

HEADER = ["id", "external_id", "email", "phone", "first_name", "last_name", "timezone",
          "locale", "created_at", "updated_at", "attributes"]  # fmt: skip


@pytest.fixture
def acme_contacts(workspace):
    ann = ContactFactory(workspace=workspace, external_id="a-1", email="ann@acme.test",
                         phone="+4520123456", first_name="Ann", last_name="Ås", locale="da",
                         attributes={"plan": "pro", "seats": 3})  # fmt: skip
    bo = ContactFactory(workspace=workspace, external_id="b-2", email="bo@acme.test",
                        first_name="Bo", last_name="Berg",
                        attributes={"plan": "basic"})  # fmt: skip
    cy = ContactFactory(workspace=workspace, external_id=None, email="cy@acme.test",
                        first_name="=HYPERLINK(\"http://evil.test\")", last_name="Cole",
                        attributes={"seats": 3})  # fmt: skip
    vip = ContactListFactory(workspace=workspace, name="VIP", slug="vip")
    for contact in (ann, cy):
        ListMembership.objects.create(
            workspace=workspace, contact_list=vip, contact=contact, source="ui"
        )
    return {"ann": ann, "bo": bo, "cy": cy}


@pytest.fixture
def other_contact(other_workspace):
    return ContactFactory(workspace=other_workspace, email="ann@other.test", first_name="Ann",
                          attributes={"plan": "pro"})  # fmt: skip


def exported(client, **params) -> list[list[str]]:
    response = client.get(reverse("contacts:export"), params)
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="contacts-')
    text = b"".join(response.streaming_content).decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:])))


def emails(rows) -> list[str]:
    return [row[2] for row in rows[1:]]


def test_export_has_every_field_and_the_attributes_as_json(acme_contacts, analyst, client_for):
    rows = exported(client_for(analyst), q="ann")
    ann = acme_contacts["ann"]
    assert EXPORT_COLUMNS == HEADER
    assert rows == [
        HEADER,
        [str(ann.pk), "a-1", "ann@acme.test", "+4520123456", "Ann", "Ås", "Europe/Copenhagen",
         "da", ann.created_at.isoformat(), ann.updated_at.isoformat(),
         '{"plan": "pro", "seats": 3}'],
    ]  # fmt: skip
    assert json.loads(rows[1][10]) == {"plan": "pro", "seats": 3}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, ["ann@acme.test", "bo@acme.test", "cy@acme.test"]),
        ({"q": "b"}, ["bo@acme.test"]),
        ({"q": "ann@"}, ["ann@acme.test"]),
        ({"list": "vip"}, ["ann@acme.test", "cy@acme.test"]),
        ({"attribute": "plan", "value": "pro"}, ["ann@acme.test"]),
        ({"attribute": "seats", "value": "3"}, ["ann@acme.test", "cy@acme.test"]),
        ({"attribute": "plan"}, ["ann@acme.test", "bo@acme.test"]),
        ({"list": "vip", "attribute": "plan", "value": "pro"}, ["ann@acme.test"]),
        ({"list": "nope"}, []),
        # The contact list page's own parameters (empty filters, paging) are harmless.
        ({"q": "", "list": "", "after": "5"}, ["ann@acme.test", "bo@acme.test", "cy@acme.test"]),
    ],
)
def test_filtered_export_streams_exactly_the_matching_contacts(
    params, expected, acme_contacts, other_contact, marketer, client_for
):
    assert emails(exported(client_for(marketer), **params)) == expected


def test_export_reads_in_chunks_without_loading_every_contact(
    workspace, owner, client_for, django_assert_num_queries
):
    ContactFactory.create_batch(2100, workspace=workspace)
    client = client_for(owner)
    response = client.get(reverse("contacts:export"))
    # Nothing is read until the download is consumed, and then by one query whose rows
    # arrive in chunks from a server-side cursor.
    with django_assert_num_queries(1):
        lines = sum(chunk.count(b"\n") for chunk in response.streaming_content)
    assert lines == 2101


def test_cells_that_a_spreadsheet_would_run_as_formulas_are_quoted(
    acme_contacts, owner, client_for
):
    rows = exported(client_for(owner), q="cy@")
    assert rows[1][4] == '\'=HYPERLINK("http://evil.test")'
    rows = exported(client_for(owner), q="ann@")
    assert rows[1][3] == "+4520123456"


def test_an_invalid_filter_is_refused_rather_than_exporting_everything(
    acme_contacts, owner, client_for
):
    response = client_for(owner).get(reverse("contacts:export"), {"created_after": "yesterday"})
    assert response.status_code == 400
    assert "ann@acme.test" not in response.content.decode()


def test_outsider_never_exports_acmes_contacts(acme_contacts, other_contact, outsider, client_for):
    client = client_for(outsider)
    assert emails(exported(client)) == ["ann@other.test"]
    assert emails(exported(client, list="vip")) == []
    assert emails(exported(client, q="ann")) == ["ann@other.test"]


def test_anonymous_visitor_is_sent_to_sign_in(client, db):
    response = client.get(reverse("contacts:export"))
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))
