"""CSV import through the real views: upload, column mapping, the Celery task (eager),
progress, failed rows, re-import, and who may do what."""

import csv
import io
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from apps.contacts.choices import ImportStatus
from apps.contacts.models import (
    Consent,
    ConsentChange,
    Contact,
    ContactImport,
    ContactList,
    ListMembership,
)
from apps.contacts.services import imports
from apps.contacts.services.consent import set_consent, set_consent_bulk
from tests.contacts.factories import ContactFactory, ContactListFactory

SIGNUPS = (
    b"Customer ID,E-mail,Fornavn,Efternavn,Mobil,Plan,Seats,Newsletter,Signed up\r\n"
    b"c-1,Ann@Example.com,Ann,Andersen,+45 20 12 34 56,pro,3,ja,2025-01-15\r\n"
    b"c-2,bo@example.com,Bo,Berg,,basic,1,nej,2025-02-01\r\n"
)


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def upload(client, content: bytes, name: str = "contacts.csv"):
    return client.post(
        reverse("contacts:import_start"), {"file": SimpleUploadedFile(name, content, "text/csv")}
    )


def uploaded(client, content: bytes, name: str = "contacts.csv") -> ContactImport:
    response = upload(client, content, name)
    contact_import = ContactImport.objects.latest("pk")
    assert response.status_code == 302
    assert response.url == reverse("contacts:import_mapping", args=[contact_import.pk])
    return contact_import


def suggested(client, contact_import: ContactImport) -> dict:
    """What the mapping page would submit untouched: every field at its shown value."""
    response = client.get(reverse("contacts:import_mapping", args=[contact_import.pk]))
    assert response.status_code == 200
    form = response.context["form"]
    return {name: form[name].value() or "" for name in form.fields}


def run(client, contact_import, data, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("contacts:import_mapping", args=[contact_import.pk]), data)
    assert response.status_code == 302, response.content.decode()
    assert response.url == reverse("contacts:import_detail", args=[contact_import.pk])
    contact_import.refresh_from_db()
    return contact_import


def import_file(client, content, django_capture_on_commit_callbacks, name="contacts.csv", **extra):
    contact_import = uploaded(client, content, name)
    data = suggested(client, contact_import) | extra
    return run(client, contact_import, data, django_capture_on_commit_callbacks)


def counts(contact_import) -> tuple:
    return (contact_import.status, contact_import.total_rows, contact_import.processed_rows,
            contact_import.created_count, contact_import.updated_count,
            contact_import.unchanged_count, contact_import.failed_count)  # fmt: skip


def test_marketer_imports_contacts_into_a_new_list_with_consent(
    workspace, marketer, client_for, django_capture_on_commit_callbacks
):
    existing = ContactFactory(
        workspace=workspace, external_id="c-1", email="ann@example.com", first_name="Annie",
        last_name="", phone=None, timezone="", attributes={"vip": True},
    )  # fmt: skip
    client = client_for(marketer)
    contact_import = uploaded(client, SIGNUPS, "signups.csv")
    assert (contact_import.status, contact_import.total_rows) == (ImportStatus.UPLOADED, 2)
    assert contact_import.original_name == "signups.csv"
    assert contact_import.created_by == marketer

    data = suggested(client, contact_import)
    assert {key: value for key, value in data.items() if key.startswith("column_")} == {
        "column_0": "external_id", "column_0_attribute": "customer_id", "column_0_type": "string",
        "column_1": "email", "column_1_attribute": "e_mail", "column_1_type": "string",
        "column_2": "first_name", "column_2_attribute": "fornavn", "column_2_type": "string",
        "column_3": "last_name", "column_3_attribute": "efternavn", "column_3_type": "string",
        "column_4": "phone", "column_4_attribute": "mobil", "column_4_type": "string",
        "column_5": "attribute", "column_5_attribute": "plan", "column_5_type": "string",
        "column_6": "attribute", "column_6_attribute": "seats", "column_6_type": "number",
        "column_7": "attribute", "column_7_attribute": "newsletter", "column_7_type": "boolean",
        "column_8": "attribute", "column_8_attribute": "signed_up", "column_8_type": "date",
    }  # fmt: skip
    data |= {
        "new_list_name": "Spring signups",
        "consent_channel": "email",
        "consent_status": "subscribed",
        "consent_source": "Signup form 2025",
    }
    contact_import = run(client, contact_import, data, django_capture_on_commit_callbacks)

    assert counts(contact_import) == (ImportStatus.DONE, 2, 2, 1, 1, 0, 0)
    assert contact_import.errors == []
    assert contact_import.started_at is not None
    assert contact_import.finished_at is not None
    rows = Contact.objects.for_workspace(workspace).order_by("external_id")
    assert list(
        rows.values_list("external_id", "email", "phone", "first_name", "last_name", "attributes")
    ) == [
        ("c-1", "ann@example.com", "+4520123456", "Ann", "Andersen",
         {"vip": True, "plan": "pro", "seats": 3, "newsletter": True, "signed_up": "2025-01-15"}),
        ("c-2", "bo@example.com", None, "Bo", "Berg",
         {"plan": "basic", "seats": 1, "newsletter": False, "signed_up": "2025-02-01"}),
    ]  # fmt: skip
    assert rows.get(external_id="c-1").pk == existing.pk
    spring = ContactList.objects.for_workspace(workspace).get()
    assert (spring.name, spring.slug) == ("Spring signups", "spring-signups")
    assert contact_import.contact_list == spring
    assert sorted(
        ListMembership.objects.filter(contact_list=spring).values_list("contact__email", "source")
    ) == [("ann@example.com", "import"), ("bo@example.com", "import")]
    assert sorted(
        Consent.objects.for_workspace(workspace).values_list(
            "contact__email", "channel", "status", "source", "updated_at"
        )
    ) == [
        ("ann@example.com", "email", "subscribed", "Signup form 2025", contact_import.started_at),
        ("bo@example.com", "email", "subscribed", "Signup form 2025", contact_import.started_at),
    ]
    assert sorted(
        ConsentChange.objects.for_workspace(workspace).values_list(
            "contact__email", "channel", "status", "source"
        )
    ) == [
        ("ann@example.com", "email", "subscribed", "Signup form 2025"),
        ("bo@example.com", "email", "subscribed", "Signup form 2025"),
    ]

    page = client.get(reverse("contacts:import_detail", args=[contact_import.pk]))
    content = page.content.decode()
    assert "Spring signups" in content
    assert "Every row was imported." in content
    assert 'hx-trigger="every 1s"' not in content


BROKEN = (
    b"Email,First name,Seats\n"  # 1
    b"ann@example.com,Ann,3\n"  # 2
    b"not-an-email,Bad,1\n"  # 3
    b"cy@example.com,Cy,many\n"  # 4
    b",NoId,2\n"  # 5
    b"dee@example.com,Dee\n"  # 6
    b'"eve@example.com","Eve\n'  # 7: a quoted cell over two lines
    b'Multi",4\n'  # 8
    b"\n"  # 9
    b"fay@example.com,Fay,5,extra\n"  # 10
    b"gus@example.com,Gus,6,\n"  # 11: a stray delimiter at the end is harmless
)


def test_failed_rows_are_reported_by_line_while_good_rows_import(
    workspace, marketer, client_for, django_capture_on_commit_callbacks
):
    client = client_for(marketer)
    # The preview's "many" makes Seats look like text; the marketer says it is a number.
    contact_import = import_file(
        client, BROKEN, django_capture_on_commit_callbacks, "broken.csv", column_2_type="number"
    )

    assert counts(contact_import) == (ImportStatus.DONE, 8, 8, 3, 0, 0, 5)
    assert contact_import.errors == [
        {"line": 3, "reason": "Email: not-an-email is not a valid email address.",
         "row": ["not-an-email", "Bad", "1"]},
        {"line": 4, "reason": "seats: many is not a number.",
         "row": ["cy@example.com", "Cy", "many"]},
        {"line": 5, "reason": "Give an external_id or an email to match on.",
         "row": ["", "NoId", "2"]},
        {"line": 6, "reason": "The row has 2 cells; the header has 3.",
         "row": ["dee@example.com", "Dee"]},
        {"line": 10, "reason": "The row has 4 cells; the header has 3.",
         "row": ["fay@example.com", "Fay", "5", "extra"]},
    ]  # fmt: skip
    assert sorted(
        Contact.objects.for_workspace(workspace).values_list("email", "first_name", "attributes")
    ) == [
        ("ann@example.com", "Ann", {"seats": 3}),
        ("eve@example.com", "Eve\nMulti", {"seats": 4}),
        ("gus@example.com", "Gus", {"seats": 6}),
    ]

    detail = client.get(reverse("contacts:import_detail", args=[contact_import.pk]))
    errors_url = reverse("contacts:import_errors", args=[contact_import.pk])
    assert errors_url in detail.content.decode()

    response = client.get(errors_url)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="broken-failed-rows.csv"'
    text = response.content.decode("utf-8")
    assert text.startswith("\ufeff")
    assert list(csv.reader(io.StringIO(text[1:]))) == [
        ["line", "reason", "Email", "First name", "Seats"],
        ["3", "Email: not-an-email is not a valid email address.", "not-an-email", "Bad", "1"],
        ["4", "seats: many is not a number.", "cy@example.com", "Cy", "many"],
        ["5", "Give an external_id or an email to match on.", "", "NoId", "2"],
        ["6", "The row has 2 cells; the header has 3.", "dee@example.com", "Dee"],
        ["10", "The row has 4 cells; the header has 3.", "fay@example.com", "Fay", "5", "extra"],
    ]


def test_importing_the_same_file_again_changes_nothing(
    workspace, marketer, client_for, django_capture_on_commit_callbacks
):
    client = client_for(marketer)
    consent = {"consent_channel": "email", "consent_status": "subscribed",
               "consent_source": "Signup form 2025"}  # fmt: skip
    first = import_file(client, SIGNUPS, django_capture_on_commit_callbacks,
                        new_list_name="Spring", **consent)  # fmt: skip
    assert counts(first) == (ImportStatus.DONE, 2, 2, 2, 0, 0, 0)

    def state():
        return (
            sorted(Contact.objects.for_workspace(workspace).values_list(
                "pk", "email", "phone", "attributes", "updated_at")),
            sorted(Consent.objects.for_workspace(workspace).values_list(
                "contact_id", "status", "source", "updated_at")),
            sorted(ConsentChange.objects.for_workspace(workspace).values_list("pk", flat=True)),
            sorted(ListMembership.objects.for_workspace(workspace).values_list(
                "pk", "contact_id", "added_at")),
            ContactList.objects.for_workspace(workspace).count(),
        )  # fmt: skip

    before = state()
    spring = ContactList.objects.for_workspace(workspace).get()
    second = import_file(client, SIGNUPS, django_capture_on_commit_callbacks,
                         contact_list=str(spring.pk), **consent)  # fmt: skip

    assert counts(second) == (ImportStatus.DONE, 2, 2, 0, 0, 2, 0)
    assert second.errors == []
    assert state() == before


def test_semicolon_utf8_bom_file_with_danish_letters_and_decimal_commas(
    workspace, owner, client_for, django_capture_on_commit_callbacks
):
    content = (
        "\ufeffE-post;Fornavn;Efternavn;Beløb;By\r\n"
        "soeren@eksempel.dk;Søren;Ærø;12,5;Århus\r\n"
        "aase@eksempel.dk;Åse;Øster;1000;Næstved\r\n"
    ).encode()
    client = client_for(owner)
    contact_import = uploaded(client, content, "kunder.csv")
    assert (contact_import.mapping["encoding"], contact_import.mapping["delimiter"]) == (
        "utf-8-sig",
        ";",
    )
    assert contact_import.mapping["header"] == ["E-post", "Fornavn", "Efternavn", "Beløb", "By"]
    mapping_page = client.get(reverse("contacts:import_mapping", args=[contact_import.pk]))
    preview = mapping_page.content.decode()
    assert "<td>Søren</td>" in preview
    assert "<td>12,5</td>" in preview

    data = suggested(client, contact_import)
    assert (data["column_3"], data["column_3_attribute"], data["column_3_type"]) == (
        "attribute",
        "beløb",
        "number",
    )
    contact_import = run(client, contact_import, data, django_capture_on_commit_callbacks)

    assert counts(contact_import) == (ImportStatus.DONE, 2, 2, 2, 0, 0, 0)
    assert sorted(
        Contact.objects.for_workspace(workspace).values_list(
            "email", "first_name", "last_name", "attributes"
        )
    ) == [
        ("aase@eksempel.dk", "Åse", "Øster", {"beløb": 1000, "by": "Næstved"}),
        ("soeren@eksempel.dk", "Søren", "Ærø", {"beløb": 12.5, "by": "Århus"}),
    ]


def test_windows_encoded_tab_separated_file(
    workspace, marketer, client_for, django_capture_on_commit_callbacks
):
    content = "Email\tFörnamn\r\njorgen@example.se\tJörgen\r\n".encode("cp1252")
    contact_import = import_file(client_for(marketer), content, django_capture_on_commit_callbacks)
    assert (contact_import.mapping["encoding"], contact_import.mapping["delimiter"]) == (
        "cp1252",
        "\t",
    )
    assert list(Contact.objects.for_workspace(workspace).values_list("email", "first_name")) == [
        ("jorgen@example.se", "Jörgen")
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"PK\x03\x04\x14\x00\x06\x00binary", "This is an Excel workbook, not a CSV file."),
        (b"", "The submitted file is empty."),
        (b"\n\n", "The file is empty."),
        (b"ann@example.com,Ann\nbo@example.com,Bo\n", "The first line must name the columns"),
        (b"Email,First name\n", "The file has a header line but no rows of contacts."),
        (b"Email,Name\x00\x01\x02\nann@example.com,Ann\n", "it contains binary data"),
    ],
)
def test_a_file_that_is_not_csv_or_has_no_header_is_refused(
    content, message, workspace, marketer, client_for
):
    response = upload(client_for(marketer), content)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not ContactImport.objects.exists()


def test_mapping_problems_are_all_listed_and_nothing_starts(
    workspace, marketer, client_for, django_capture_on_commit_callbacks
):
    client = client_for(marketer)
    contact_import = uploaded(client, SIGNUPS)
    data = suggested(client, contact_import) | {
        "column_0": "",  # no external id
        "column_1": "attribute",  # nor email
        "column_1_attribute": "plan",
        "column_3": "first_name",  # first name twice
        "column_6_attribute": "plan",  # and "plan" three times
        "column_7_attribute": "not a name",
        "consent_channel": "email",  # without a status
        "contact_list": str(ContactListFactory(workspace=workspace).pk),
        "new_list_name": "Also new",
    }
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post(reverse("contacts:import_mapping", args=[contact_import.pk]), data)

    assert response.status_code == 200
    assert response.context["form"].non_field_errors() == [
        "Choose a column for the external id or the email: contacts are matched on them.",
        "First name is chosen for more than one column (“Fornavn”, “Efternavn”).",
        "“not a name” (column “Newsletter”) is not a valid attribute name: use letters, digits "
        "and _ only, at most 100 characters, such as not_a_name.",
        "The attribute plan is named for more than one column (“E-mail”, “Plan”, “Seats”).",
        "Choose an existing list or name a new one, not both.",
        "To record consent, choose both the channel and the consent.",
    ]
    assert 'id="mapping-problems"' in response.content.decode()
    assert callbacks == []
    contact_import.refresh_from_db()
    assert contact_import.status == ImportStatus.UPLOADED
    assert "columns" not in contact_import.mapping
    assert not Contact.objects.exists()
    assert ContactList.objects.for_workspace(workspace).count() == 1


def test_choosing_attribute_shows_its_name_and_type(workspace, marketer, client_for):
    client = client_for(marketer)
    contact_import = uploaded(client, SIGNUPS)
    url = reverse("contacts:import_mapping", args=[contact_import.pk])
    page = client.get(url).content.decode()
    # The email column is a field: its attribute name rides along hidden.
    assert '<input type="hidden" name="column_1_attribute" value="e_mail"' in page
    assert f'hx-get="{url}"' in page

    response = client.get(
        url, {"column": "1", "column_1": "attribute", "column_1_attribute": "e_mail"},
        headers={"HX-Request": "true"},
    )  # fmt: skip
    row = response.content.decode()
    assert row.lstrip().startswith('<tr id="column-1">')
    assert '<input type="text" name="column_1_attribute" value="e_mail"' in row
    assert '<select name="column_1_type"' in row

    response = client.get(url, {"column": "1", "column_1": "email"}, headers={"HX-Request": "true"})
    assert '<input type="hidden" name="column_1_attribute"' in response.content.decode()
    response = client.get(url, {"column": "99"}, headers={"HX-Request": "true"})
    assert response.status_code == 404


def test_progress_partial_polls_while_the_import_runs(workspace, analyst, client_for):
    contact_import = ContactImport.objects.create(
        workspace=workspace, file="imports/x.csv", original_name="big.csv",
        status=ImportStatus.RUNNING, total_rows=3000, processed_rows=1000, created_count=900,
        updated_count=60, unchanged_count=30, failed_count=10,
    )  # fmt: skip
    client = client_for(analyst)
    url = reverse("contacts:import_progress", args=[contact_import.pk])
    content = client.get(url, headers={"HX-Request": "true"}).content.decode()
    assert content.lstrip().startswith('<article id="import-progress"')
    assert f'hx-get="{url}" hx-trigger="every 1s" hx-swap="outerHTML"' in content
    assert '<progress value="1000" max="3000">33%</progress>' in content
    assert "1000 of 3000 rows processed" in content
    for name, value in (("created", 900), ("updated", 60), ("unchanged", 30), ("failed", 10)):
        assert f'data-count="{name}">{value}<' in content
    assert "failed-rows.csv" not in content
    detail = client.get(reverse("contacts:import_detail", args=[contact_import.pk]))
    assert 'hx-trigger="every 1s"' in detail.content.decode()

    ContactImport.objects.filter(pk=contact_import.pk).update(
        status=ImportStatus.DONE, processed_rows=3000, finished_at=timezone.now()
    )
    content = client.get(url, headers={"HX-Request": "true"}).content.decode()
    assert "hx-trigger" not in content
    assert '<progress value="3000" max="3000">100%</progress>' in content
    assert reverse("contacts:import_errors", args=[contact_import.pk]) in content


def test_a_large_file_is_imported_in_chunks_and_resumes_after_an_interruption(
    workspace, marketer, client_for, monkeypatch
):
    rows = "".join(f"u-{n},person{n}@example.com,{n % 7}\n" for n in range(2500))
    contact_import = uploaded(client_for(marketer), f"id,Email,Score\n{rows}".encode())
    ContactImport.objects.filter(pk=contact_import.pk).update(
        status=ImportStatus.QUEUED,
        mapping={**contact_import.mapping, "columns": [
            {"column": 0, "field": "external_id"}, {"column": 1, "field": "email"},
            {"column": 2, "attribute": "score", "type": "number"}]},
    )  # fmt: skip
    # One chunk per task: as if each worker died after committing its chunk.
    monkeypatch.setattr(imports, "CHUNKS_PER_TASK", 1)

    progress = []
    while imports.run_import(contact_import.pk):
        contact_import.refresh_from_db()
        progress.append((contact_import.status, contact_import.processed_rows))
    contact_import.refresh_from_db()

    assert imports.CHUNK_ROWS == 1000
    assert progress == [(ImportStatus.RUNNING, 1000), (ImportStatus.RUNNING, 2000)]
    assert counts(contact_import) == (ImportStatus.DONE, 2500, 2500, 2500, 0, 0, 0)
    assert Contact.objects.for_workspace(workspace).count() == 2500
    assert Contact.objects.get(external_id="u-2498").attributes == {"score": 6}
    # A retry of a finished import (a redelivered task) does nothing.
    assert imports.run_import(contact_import.pk) is False
    contact_import.refresh_from_db()
    assert counts(contact_import) == (ImportStatus.DONE, 2500, 2500, 2500, 0, 0, 0)


def test_the_task_queues_itself_for_the_rest_of_a_large_file(
    workspace, marketer, client_for, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(imports, "CHUNKS_PER_TASK", 1)
    rows = "".join(f"person{n}@example.com\n" for n in range(2100))
    contact_import = import_file(
        client_for(marketer), f"Email\n{rows}".encode(), django_capture_on_commit_callbacks
    )
    assert counts(contact_import) == (ImportStatus.DONE, 2100, 2100, 2100, 0, 0, 0)


def test_import_history_lists_the_workspaces_imports(
    workspace, analyst, client_for, django_assert_max_num_queries
):
    for name in ("jan.csv", "feb.csv", "mar.csv"):
        ContactImport.objects.create(workspace=workspace, file=f"imports/{name}",
                                     original_name=name, total_rows=10)  # fmt: skip
    client = client_for(analyst)
    with django_assert_max_num_queries(8):
        response = client.get(reverse("contacts:import_list"))
    content = response.content.decode()
    assert content.index("mar.csv") < content.index("feb.csv") < content.index("jan.csv")
    assert reverse("contacts:import_start") not in content  # analysts do not import


# Access ---------------------------------------------------------------------------------


@pytest.fixture
def acme_import(workspace, owner, client_for):
    contact_import = uploaded(client_for(owner), SIGNUPS, "acme-customers.csv")
    contact_import.errors = [{"line": 2, "reason": "secret", "row": ["ann@acme.test"]}]
    contact_import.save(update_fields=["errors"])
    return contact_import


@pytest.mark.parametrize(
    "name", ["import_detail", "import_mapping", "import_progress", "import_errors"]
)
def test_outsider_gets_404_for_another_workspaces_import(name, acme_import, outsider, client_for):
    client = client_for(outsider)
    url = reverse(f"contacts:{name}", args=[acme_import.pk])
    assert client.get(url).status_code == 404
    assert client.get(url, {"column": "0"}, headers={"HX-Request": "true"}).status_code == 404


def test_outsider_cannot_map_or_start_another_workspaces_import(
    acme_import, outsider, client_for, django_capture_on_commit_callbacks
):
    data = {"column_1": "email", "new_list_name": "Stolen"}
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(outsider).post(
            reverse("contacts:import_mapping", args=[acme_import.pk]), data
        )
    assert response.status_code == 404
    acme_import.refresh_from_db()
    assert acme_import.status == ImportStatus.UPLOADED
    assert not Contact.objects.exists()
    assert not ContactList.objects.exists()


def test_outsider_never_sees_acmes_imports_in_the_history(acme_import, outsider, client_for):
    response = client_for(outsider).get(reverse("contacts:import_list"))
    content = response.content.decode()
    assert response.status_code == 200
    assert "acme-customers.csv" not in content
    assert "No imports yet." in content


def test_analyst_may_look_but_not_upload(workspace, analyst, client_for):
    client = client_for(analyst)
    page = client.get(reverse("contacts:import_start"))
    assert page.status_code == 200
    assert 'type="file"' not in page.content.decode()
    response = upload(client, SIGNUPS)
    assert response.status_code == 403
    assert not ContactImport.objects.exists()


def test_analyst_cannot_submit_a_mapping(
    acme_import, analyst, client_for, django_capture_on_commit_callbacks
):
    client = client_for(analyst)
    url = reverse("contacts:import_mapping", args=[acme_import.pk])
    data = suggested(client, acme_import) | {"new_list_name": "Analyst list"}
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post(url, data)
    assert response.status_code == 403
    assert callbacks == []
    acme_import.refresh_from_db()
    assert acme_import.status == ImportStatus.UPLOADED
    assert not Contact.objects.exists()
    assert not ContactList.objects.exists()
    for name in ("import_list", "import_detail", "import_progress", "import_errors"):
        args = [] if name == "import_list" else [acme_import.pk]
        assert client.get(reverse(f"contacts:{name}", args=args)).status_code == 200, name


def test_bulk_consent_keeps_newer_statements_and_records_only_changes(workspace, other_workspace):
    at = timezone.now()
    fresh, same, changed, newer = ContactFactory.create_batch(4, workspace=workspace)
    elsewhere = ContactFactory(workspace=other_workspace)
    set_consent(same, "email", "subscribed", "form", at - timedelta(days=1))
    set_consent(changed, "email", "unsubscribed", "form", at - timedelta(days=1))
    set_consent(newer, "email", "unsubscribed", "link", at + timedelta(minutes=1))
    history_before = ConsentChange.objects.count()

    ids = [fresh.pk, same.pk, changed.pk, newer.pk, elsewhere.pk]
    assert set_consent_bulk(workspace, ids, "email", "subscribed", "import", at) == 2

    assert dict(Consent.objects.filter(channel="email").values_list("contact_id", "status")) == {
        fresh.pk: "subscribed", same.pk: "subscribed", changed.pk: "subscribed",
        newer.pk: "unsubscribed",
    }  # fmt: skip
    assert sorted(
        ConsentChange.objects.order_by("pk")[history_before:].values_list(
            "contact_id", "status", "source", "changed_at"
        )
    ) == sorted([(fresh.pk, "subscribed", "import", at), (changed.pk, "subscribed", "import", at)])
    assert set_consent_bulk(workspace, ids, "email", "subscribed", "import", at) == 0
    with pytest.raises(ValueError, match="Unknown consent"):
        set_consent_bulk(workspace, ids, "fax", "subscribed", "import", at)
