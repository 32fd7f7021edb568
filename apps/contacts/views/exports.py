"""CSV export of the contacts a filter of the contact list matches."""

import csv
import json
import re
from collections.abc import Iterable, Iterator

from django.http import HttpResponseBadRequest, StreamingHttpResponse
from django.utils import timezone
from django.utils.http import content_disposition_header

from apps.accounts.access import workspace_view
from apps.contacts.filters import ContactFilterSet
from apps.contacts.models import Contact

EXPORT_COLUMNS = ["id", "external_id", "email", "phone", "first_name", "last_name", "timezone",
                  "locale", "created_at", "updated_at", "attributes"]  # fmt: skip
EXPORT_CHUNK_ROWS = 2000
# A cell a spreadsheet would run as a formula (=HYPERLINK(...) typed into a signup form).
FORMULA_START = re.compile(r"^[=@\t\r]|^[+-](?![\d\s().]*$)")


class _Echo:
    """A file-like object whose write answers what was written, for csv.writer."""

    def write(self, value: str) -> str:
        return value


def spreadsheet_safe(value: str) -> str:
    """A leading apostrophe keeps a spreadsheet from running a cell as a formula; phone
    numbers (+45 20 12 34 56) and negative numbers are left alone."""
    return f"'{value}" if FORMULA_START.match(value) else value


def contact_rows(contacts: Iterable[tuple]) -> Iterator[list[str]]:
    yield EXPORT_COLUMNS
    for row in contacts:
        cells = []
        for name, value in zip(EXPORT_COLUMNS, row, strict=True):
            if value is None:
                cells.append("")
            elif name == "attributes":
                cells.append(json.dumps(value, ensure_ascii=False, sort_keys=True))
            elif name in ("created_at", "updated_at"):
                cells.append(value.isoformat())
            else:
                cells.append(spreadsheet_safe(str(value)))
        yield cells


def csv_lines(rows: Iterable[list[str]]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield "\ufeff"  # so that Excel reads the file as UTF-8
    for row in rows:
        yield writer.writerow(row)


@workspace_view()
def contact_export(request):
    """The contacts the list's filters (the same query parameters) match, as CSV."""
    filterset = ContactFilterSet(
        request.GET, queryset=Contact.objects.for_workspace(request.workspace)
    )
    if not filterset.is_valid():
        # An export of everything because one filter did not parse would be a leak.
        problems = "\n".join(
            f"{name}: {' '.join(errors)}" for name, errors in filterset.errors.items()
        )
        return HttpResponseBadRequest(problems, content_type="text/plain; charset=utf-8")
    contacts = (
        filterset.qs.order_by("id")
        .values_list(*EXPORT_COLUMNS)
        .iterator(chunk_size=EXPORT_CHUNK_ROWS)
    )
    response = StreamingHttpResponse(
        csv_lines(contact_rows(contacts)), content_type="text/csv; charset=utf-8"
    )
    filename = f"contacts-{request.workspace.slug}-{timezone.localdate():%Y-%m-%d}.csv"
    response["Content-Disposition"] = content_disposition_header(
        as_attachment=True, filename=filename
    )
    return response
