"""CSV import of contacts: reading what a spreadsheet exported, suggesting how its columns
map onto contacts, and importing it in chunks that a retried worker can resume."""

import codecs
import csv
import io
import re
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from functools import partial
from itertools import islice
from typing import IO

from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import DateTimeField, F, Func, JSONField, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _

from apps.accounts.models import User, Workspace
from apps.contacts.choices import AttributeType, EventSource, ImportStatus
from apps.contacts.models import Contact, ContactImport, ContactList
from apps.contacts.normalize import InvalidValue, coerce_attribute
from apps.contacts.services.consent import set_consent_bulk
from apps.contacts.services.lists import add_to_list, create_list
from apps.contacts.services.profiles import PROFILE_FIELDS, upsert_contacts

CHUNK_ROWS = 1_000
# A task imports this many chunks, then queues itself for the rest, so no single task
# comes near the worker's time limit however large the file.
CHUNKS_PER_TASK = 20
PREVIEW_ROWS = 5
SNIFF_CHARS = 64 * 1024
READ_BLOCK_BYTES = 1024 * 1024
DELIMITERS = (",", ";", "\t")
MAX_ATTRIBUTE_NAME_LENGTH = 100
ATTRIBUTE = "attribute"
IDENTIFIERS = {"external_id", "email"}
ATTRIBUTE_NAME = re.compile(r"\w+")
BINARY_SIGNATURES = {
    b"PK\x03\x04": "xlsx",  # Excel workbooks are zip files
    b"\xd0\xcf\x11\xe0": "xls",
    b"%PDF": "pdf",
}

# Header spellings seen in Danish, Swedish, Norwegian and English spreadsheets, compared
# after dropping case, spaces and punctuation ("E-mail" and "e_mail" are "email").
FIELD_ALIASES = {
    "external_id": {"externalid", "customerid", "customerno", "customernumber", "userid",
                    "kundeid", "kundenummer", "kundenr", "kundnummer", "kundnr", "kundid"},
    "email": {"email", "emailaddress", "mail", "mailadresse", "emailadresse", "epost",
              "epostadress", "epostadresse", "emailadress"},
    "phone": {"phone", "phonenumber", "telephone", "tel", "mobile", "mobilephone", "mobil",
              "mobilnummer", "mobilnr", "telefon", "telefonnummer", "telefonnr", "sms"},
    "first_name": {"firstname", "first", "givenname", "fornavn", "förnamn", "fornamn"},
    "last_name": {"lastname", "last", "surname", "familyname", "efternavn", "efternamn",
                  "etternavn"},
    "timezone": {"timezone", "tz", "tidszone", "tidszon", "tidssone"},
    "locale": {"locale", "language", "lang", "sprog", "språk", "sprak"},
}  # fmt: skip
# Columns of Orchestra's own export that are not imported back (ids and times are ours).
NOT_IMPORTED_BY_DEFAULT = {"id", "createdat", "updatedat", "attributes"}


@dataclass(frozen=True)
class CsvFormat:
    """What a file looked like when it was uploaded."""

    encoding: str
    delimiter: str
    header: list[str]
    total_rows: int


@dataclass(frozen=True)
class Preview:
    header: list[str]
    rows: list[list[str]]

    def samples(self, index: int) -> list[str]:
        return [row[index].strip() for row in self.rows if index < len(row) and row[index].strip()]


# Reading CSV ---------------------------------------------------------------------------


def inspect_csv(upload: IO[bytes]) -> CsvFormat:
    """Sniff encoding and delimiter, read the header and count the data rows.

    Raises InvalidValue, with a message for the marketer, when the file is not CSV or
    has no header or no rows.
    """
    binary = getattr(upload, "file", upload)
    binary.seek(0)
    head = binary.read(8)
    for signature, kind in BINARY_SIGNATURES.items():
        if head.startswith(signature):
            if kind in ("xlsx", "xls"):
                raise InvalidValue(
                    _("This is an Excel workbook, not a CSV file. In Excel choose "
                      "File > Save a copy > CSV UTF-8, then upload that file.")
                )  # fmt: skip
            raise InvalidValue(_("This is not a CSV file."))
    if not head:
        raise InvalidValue(_("The file is empty."))
    encoding = detect_encoding(binary)
    with open_text(binary, encoding) as text:
        sample = text.read(SNIFF_CHARS)
        complete = not text.read(1)
    if re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f]", sample):
        raise InvalidValue(_("This is not a CSV file: it contains binary data."))
    if not complete and "\n" in sample:
        sample = sample[: sample.rindex("\n")]  # the last line may be cut short
    delimiter = sniff_delimiter(sample)
    header: list[str] | None = None
    total = 0
    with open_text(binary, encoding) as text:
        reader = csv.reader(text, delimiter=delimiter)
        try:
            for cells in reader:
                if not any(cell.strip() for cell in cells):
                    continue
                if header is None:
                    header = cells
                else:
                    total += 1
        except csv.Error as exc:
            raise InvalidValue(
                _("Line %(line)d cannot be read as CSV (%(problem)s).")
                % {"line": reader.line_num, "problem": exc}
            ) from None
    if header is None:
        raise InvalidValue(_("The file is empty."))
    if _looks_like_data(header):
        raise InvalidValue(
            _("The first line must name the columns (such as Email, First name), but it "
              "looks like a contact. Add a header line and upload the file again.")
        )  # fmt: skip
    if total == 0:
        raise InvalidValue(_("The file has a header line but no rows of contacts."))
    return CsvFormat(encoding=encoding, delimiter=delimiter, header=header, total_rows=total)


def detect_encoding(binary: IO[bytes]) -> str:
    """UTF-8 (with or without BOM) or UTF-16 with a BOM, else Windows' cp1252, else latin-1."""
    binary.seek(0)
    head = binary.read(4)
    binary.seek(0)
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"  # Excel's "Unicode text"
    for encoding in ("utf-8", "cp1252"):
        decoder = codecs.getincrementaldecoder(encoding)()
        try:
            for block in iter(partial(binary.read, READ_BLOCK_BYTES), b""):
                decoder.decode(block)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            continue
        finally:
            binary.seek(0)
        return encoding
    return "latin-1"  # decodes any byte; cp1252 leaves five undefined


def sniff_delimiter(sample: str) -> str:
    """The delimiter that splits the first lines into the same, largest number of cells."""
    best, best_score = DELIMITERS[0], (0.0, 0)
    for delimiter in DELIMITERS:
        try:
            rows = [
                row
                for row in islice(csv.reader(io.StringIO(sample), delimiter=delimiter), 50)
                if any(cell.strip() for cell in row)
            ]
        except csv.Error:
            continue
        if not rows or len(rows[0]) < 2:
            continue
        width = len(rows[0])
        score = (sum(len(row) == width for row in rows) / len(rows), width)
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _looks_like_data(header: list[str]) -> bool:
    cells = [cell.strip() for cell in header if cell.strip()]
    for cell in cells:
        try:
            validate_email(cell)
        except ValidationError:
            continue
        return True
    return all(re.fullmatch(r"[+-]?[\d.,\s]+", cell) for cell in cells)


@contextmanager
def open_text(binary: IO[bytes], encoding: str) -> Iterator[io.TextIOWrapper]:
    binary.seek(0)
    text = io.TextIOWrapper(binary, encoding=encoding, newline="")
    try:
        yield text
    finally:
        # Leave the binary file open: an upload still has to be saved by its caller.
        if not binary.closed:
            text.detach()
            binary.seek(0)


def read_rows(binary: IO[bytes], encoding: str, delimiter: str) -> Iterator[tuple[int, list]]:
    """The data rows after the header as (line, cells); blank rows are left out.

    `line` is where the row starts in the file, counting the header as line 1, so a
    marketer finds it in a text editor even when quoted cells span several lines.
    """
    with open_text(binary, encoding) as text:
        reader = csv.reader(text, delimiter=delimiter)
        seen_header = False
        next_line = 1
        for cells in reader:
            line, next_line = next_line, reader.line_num + 1
            if not any(cell.strip() for cell in cells):
                continue
            if not seen_header:
                seen_header = True
                continue
            yield line, cells


def read_preview(contact_import: ContactImport, rows: int = PREVIEW_ROWS) -> Preview:
    mapping = contact_import.mapping
    with _stored_rows(contact_import) as all_rows:
        first = [cells for _line, cells in islice(all_rows, rows)]
    return Preview(header=mapping["header"], rows=first)


@contextmanager
def _stored_rows(contact_import: ContactImport) -> Iterator[Iterator[tuple[int, list]]]:
    mapping = contact_import.mapping
    with contact_import.file.open("rb") as stored:
        binary = getattr(stored, "file", stored)
        with closing(read_rows(binary, mapping["encoding"], mapping["delimiter"])) as rows:
            yield rows


# Upload and mapping ---------------------------------------------------------------------


def create_import(
    workspace: Workspace, upload: UploadedFile, csv_format: CsvFormat, user: User | None
) -> ContactImport:
    """Store an inspected upload; its columns are mapped next."""
    upload.seek(0)
    return ContactImport.objects.create(
        workspace=workspace,
        file=upload,
        original_name=(upload.name or "contacts.csv")[:255],
        status=ImportStatus.UPLOADED,
        mapping={
            "encoding": csv_format.encoding,
            "delimiter": csv_format.delimiter,
            "header": csv_format.header,
        },
        total_rows=csv_format.total_rows,
        created_by=user,
    )


def header_key(text: str) -> str:
    return "".join(char for char in text.casefold() if char.isalnum())


def attribute_name_for(header: str, index: int) -> str:
    return (
        slugify(header, allow_unicode=True).replace("-", "_")[:MAX_ATTRIBUTE_NAME_LENGTH]
        or f"column_{index + 1}"
    )


def guess_attribute_type(samples: list[str]) -> str:
    """The narrowest type every sample value fits; text when unsure."""
    if not samples:
        return AttributeType.STRING
    # Leading zeros (postcodes, phone numbers) would be lost as numbers.
    if any(re.fullmatch(r"[+-]?0\d+", value) for value in samples):
        return AttributeType.STRING
    for kind in (AttributeType.NUMBER, AttributeType.BOOLEAN, AttributeType.DATE,
                 AttributeType.DATETIME):  # fmt: skip
        try:
            for value in samples:
                coerce_attribute(value, kind)
        except InvalidValue:
            continue
        return kind
    return AttributeType.STRING


def suggest_mapping(preview: Preview) -> list[dict]:
    """For each column: {"field": name}, {"attribute": name, "type": type} or {} to skip.

    A field is suggested for the first column whose header names it; other columns
    become attributes named after their header.
    """
    suggestions: list[dict] = []
    taken: set[str] = set()
    for index, header in enumerate(preview.header):
        key = header_key(header)
        field = next(
            (name for name, aliases in FIELD_ALIASES.items() if key in aliases),
            None,
        )
        if key in NOT_IMPORTED_BY_DEFAULT:
            suggestions.append({})
        elif field and field not in taken:
            taken.add(field)
            suggestions.append({"field": field})
        else:
            suggestions.append(
                {
                    ATTRIBUTE: attribute_name_for(header, index),
                    "type": guess_attribute_type(preview.samples(index)),
                }
            )
    return suggestions


def mapping_problems(columns: list[dict], header: list[str]) -> list[str]:
    """Every reason the chosen columns cannot be imported (empty when they can)."""
    problems = []

    def label(column: dict) -> str:
        return column_label(header, column["column"])

    fields = [column for column in columns if "field" in column]
    if not any(column["field"] in IDENTIFIERS for column in fields):
        problems.append(
            _("Choose a column for the external id or the email: contacts are matched on them.")
        )
    for name in PROFILE_FIELDS:
        same = [label(column) for column in fields if column["field"] == name]
        if len(same) > 1:
            problems.append(
                _("%(field)s is chosen for more than one column (%(columns)s).")
                % {"field": field_label(name), "columns": ", ".join(same)}
            )
    attributes = [column for column in columns if ATTRIBUTE in column]
    names_seen: dict[str, list[str]] = {}
    for column in attributes:
        name = column[ATTRIBUTE]
        if not name:
            problems.append(_("Name the attribute for the column %(column)s.")
                            % {"column": label(column)})  # fmt: skip
        elif len(name) > MAX_ATTRIBUTE_NAME_LENGTH or not ATTRIBUTE_NAME.fullmatch(name):
            problems.append(
                _("“%(name)s” (column %(column)s) is not a valid attribute name: use letters, "
                  "digits and _ only, at most 100 characters, such as %(example)s.")
                % {"name": name, "column": label(column),
                   "example": attribute_name_for(name, column["column"])}
            )  # fmt: skip
        else:
            names_seen.setdefault(name, []).append(label(column))
        if column.get("type") not in AttributeType.values:
            problems.append(_("Choose a type for the attribute of column %(column)s.")
                            % {"column": label(column)})  # fmt: skip
    for name, labels in names_seen.items():
        if len(labels) > 1:
            problems.append(
                _("The attribute %(name)s is named for more than one column (%(columns)s).")
                % {"name": name, "columns": ", ".join(labels)}
            )
    return problems


def column_label(header: list[str], index: int) -> str:
    name = header[index].strip() if index < len(header) else ""
    return f"“{name}”" if name else _("number %(n)d") % {"n": index + 1}


def field_label(name: str) -> str:
    return str(Contact._meta.get_field(name).verbose_name).capitalize()


class ImportAlreadyStarted(Exception):
    """The mapping of an import that is already queued (a second click) is not taken."""


def start_import(
    contact_import: ContactImport,
    columns: list[dict],
    *,
    contact_list: ContactList | None = None,
    new_list_name: str = "",
    consent_channel: str = "",
    consent_status: str = "",
    consent_source: str = "",
) -> ContactImport:
    """Save the column mapping, list and consent of an uploaded file and queue the import."""
    from apps.contacts.tasks import run_contact_import_task  # tasks.py imports this module

    with transaction.atomic():
        locked = ContactImport.objects.select_for_update().get(pk=contact_import.pk)
        if locked.status != ImportStatus.UPLOADED:
            raise ImportAlreadyStarted
        if new_list_name:
            contact_list = create_list(contact_import.workspace, new_list_name)
        if contact_list is not None and contact_list.workspace_id != contact_import.workspace_id:
            raise ValueError("The list belongs to another workspace.")
        contact_import.mapping = {**locked.mapping, "columns": columns}
        contact_import.contact_list = contact_list
        contact_import.consent_channel = consent_channel if consent_status else ""
        contact_import.consent_status = consent_status if consent_channel else ""
        contact_import.consent_source = (
            consent_source or _("CSV import %(file)s") % {"file": contact_import.original_name}
        )[:100]
        contact_import.status = ImportStatus.QUEUED
        contact_import.save(
            update_fields=["mapping", "contact_list", "consent_channel", "consent_status",
                           "consent_source", "status"]
        )  # fmt: skip
        transaction.on_commit(partial(run_contact_import_task.delay, contact_import.pk))
    return contact_import


# Running --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportPlan:
    """The mapping of an import, ready to turn rows into upsert items."""

    width: int
    fields: list[tuple[int, str]]  # (column, field)
    attributes: list[tuple[int, str, str]]  # (column, name, type)
    labels: dict[str, str]  # field -> the header of its column, for error messages

    @classmethod
    def of(cls, contact_import: ContactImport) -> "ImportPlan":
        header = contact_import.mapping["header"]
        columns = contact_import.mapping.get("columns", [])
        fields = [(c["column"], c["field"]) for c in columns if "field" in c]
        return cls(
            width=len(header),
            fields=fields,
            attributes=[(c["column"], c[ATTRIBUTE], c["type"]) for c in columns if ATTRIBUTE in c],
            labels={field: header[index].strip() or field for index, field in fields},
        )

    def item(self, cells: list[str]) -> tuple[dict, list[str]]:
        """The upsert item of one row, or the reasons it cannot be one.

        An empty cell leaves what is stored unchanged: a file that lacks a phone number
        does not erase the one a contact already has.
        """
        # Trailing empty cells (a spreadsheet's stray delimiters) do no harm.
        if len(cells) < self.width or any(cell.strip() for cell in cells[self.width :]):
            return {}, [
                _("The row has %(cells)d cells; the header has %(columns)d.")
                % {"cells": len(cells), "columns": self.width}
            ]
        item: dict = {}
        problems: list[str] = []
        for index, field in self.fields:
            value = cells[index].strip()
            if value:
                item[field] = value
        attributes = {}
        for index, name, kind in self.attributes:
            try:
                value = coerce_attribute(cells[index], kind)
            except InvalidValue as exc:
                problems.append(f"{name}: {exc}")
                continue
            if value is not None:
                attributes[name] = value
        if attributes:
            item["attributes"] = attributes
        return item, problems

    def reason(self, errors: dict) -> str:
        """An upsert's errors by field as one sentence, naming the file's columns."""
        parts = []
        for field, messages in errors.items():
            for message in messages:
                if field == "non_field_errors":
                    parts.append(str(message))
                else:
                    parts.append(f"{self.labels.get(field, field)}: {message}")
        return " ".join(parts)


def run_import(import_id: int) -> bool:
    """Import the next chunks of a queued import; answers whether rows remain.

    Safe to run again at any point: progress is committed with each chunk, a rerun
    resumes after the last committed chunk, and two workers never import one chunk.
    """
    started = ContactImport.objects.filter(
        pk=import_id, status__in=[ImportStatus.QUEUED, ImportStatus.RUNNING]
    ).update(
        status=ImportStatus.RUNNING,
        started_at=Coalesce(F("started_at"), Value(timezone.now()), output_field=DateTimeField()),
    )
    if not started:
        return False
    contact_import = (
        ContactImport.objects.select_related("workspace").defer("errors").get(pk=import_id)
    )
    plan = ImportPlan.of(contact_import)
    offset = contact_import.processed_rows
    with _stored_rows(contact_import) as all_rows:
        rows = islice(all_rows, offset, None)
        try:
            for _chunk_number in range(CHUNKS_PER_TASK):
                chunk = list(islice(rows, CHUNK_ROWS))
                if not chunk:
                    break
                if not _import_chunk(contact_import, plan, offset, chunk):
                    return False  # another worker is on it
                offset += len(chunk)
            else:
                if next(rows, None) is not None:
                    return True
        except csv.Error as exc:
            _stop_unreadable(import_id, offset, exc)
            return False
    ContactImport.objects.filter(
        pk=import_id, status=ImportStatus.RUNNING, processed_rows=offset
    ).update(status=ImportStatus.DONE, finished_at=timezone.now(), total_rows=offset)
    return False


def _import_chunk(
    contact_import: ContactImport, plan: ImportPlan, offset: int, chunk: list[tuple[int, list]]
) -> bool:
    with transaction.atomic():
        # The lock and the offset check make a chunk count once when workers overlap.
        current = (
            ContactImport.objects.select_for_update()
            .filter(pk=contact_import.pk)
            .values("status", "processed_rows", "contact_list_id")
            .first()
        )
        if (
            current is None
            or current["status"] != ImportStatus.RUNNING
            or current["processed_rows"] != offset
        ):
            return False
        items, item_rows, errors = [], [], []
        for line, cells in chunk:
            item, problems = plan.item(cells)
            if problems:
                errors.append({"line": line, "reason": " ".join(problems), "row": cells})
            else:
                items.append(item)
                item_rows.append((line, cells))
        result = upsert_contacts(contact_import.workspace, items)
        for rejected in result.rejected:
            line, cells = item_rows[rejected["index"]]
            errors.append({"line": line, "reason": plan.reason(rejected["errors"]), "row": cells})
        errors.sort(key=lambda error: error["line"])
        contact_ids = sorted({pk for pk in result.contact_ids if pk is not None})
        contact_list = ContactList.objects.filter(pk=current["contact_list_id"]).first()
        if contact_list is not None and contact_ids:
            add_to_list(contact_list, contact_ids, EventSource.IMPORT)
        if contact_import.consent_channel and contact_import.consent_status and contact_ids:
            set_consent_bulk(
                contact_import.workspace,
                contact_ids,
                contact_import.consent_channel,
                contact_import.consent_status,
                contact_import.consent_source,
                at=contact_import.started_at,
            )
        ContactImport.objects.filter(pk=contact_import.pk).update(
            processed_rows=F("processed_rows") + len(chunk),
            created_count=F("created_count") + result.created,
            updated_count=F("updated_count") + result.updated,
            unchanged_count=F("unchanged_count") + result.unchanged,
            failed_count=F("failed_count") + len(errors),
            errors=_appended(errors),
        )
    return True


def _appended(errors: list[dict]):
    """errors || new, in SQL: rewriting the whole list per chunk grows with the file."""
    return Func(
        F("errors"),
        Value(errors, output_field=JSONField()),
        arg_joiner=" || ",
        template="(%(expressions)s)",
        output_field=JSONField(),
    )


def _stop_unreadable(import_id: int, offset: int, problem: Exception) -> None:
    ContactImport.objects.filter(pk=import_id, status=ImportStatus.RUNNING).update(
        status=ImportStatus.FAILED,
        finished_at=timezone.now(),
        errors=_appended(
            [
                {
                    "line": None,
                    "reason": _("The file could not be read after row %(row)d: %(problem)s")
                    % {"row": offset, "problem": problem},
                    "row": [],
                }
            ]
        ),
    )


# Results ------------------------------------------------------------------------------


def failed_rows_csv(contact_import: ContactImport) -> str:
    """The rows that failed, as CSV to fix and upload again: line, reason, the cells.

    Written with the delimiter of the original file and a BOM, so the spreadsheet that
    produced the file opens it the same way, Danish letters included.
    """
    buffer = io.StringIO()
    buffer.write("\ufeff")
    writer = csv.writer(buffer, delimiter=contact_import.mapping.get("delimiter", ","))
    writer.writerow([_("line"), _("reason"), *contact_import.mapping.get("header", [])])
    for error in contact_import.errors:
        writer.writerow([error.get("line") or "", error.get("reason", ""), *error.get("row", [])])
    return buffer.getvalue()
