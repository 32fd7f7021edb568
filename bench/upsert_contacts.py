"""Contacts through /api/v1/contacts/bulk/ in requests of 10,000, matched by external_id:
a first run creates them, the same run again changes nothing, a third with changes updates
every one. Each is set beside PostgreSQL COPYing the same rows into contacts_contact."""

import json
from datetime import UTC, datetime

from bench.harness import BenchError, bearer, copy_data, copy_floor, figure, send_all

NAME = "upsert_contacts"
TITLE = "Contacts: bulk upsert"
REQUEST_SIZE = 10_000
BULK_PATH = "/api/v1/contacts/bulk/"
TARGET_RATIO = 0.25
CONTACT_COLUMNS = ["workspace_id", "external_id", "email", "first_name", "last_name",
                   "timezone", "locale", "attributes", "created_at", "updated_at"]  # fmt: skip
FIRST_NAMES = ["Anna", "Bo", "Camilla", "Dan", "Emma", "Frederik", "Greta", "Henrik"]
LAST_NAMES = ["Jensen", "Nielsen", "Hansen", "Andersson", "Johansson", "Larsen", "Berg"]
TIMEZONES = ["Europe/Copenhagen", "Europe/Stockholm", "Europe/Oslo", "Europe/Berlin"]
PLANS = ["free", "starter", "pro", "team"]


def make_contacts(count: int, version: int) -> list[dict]:
    """The profiles a CRM sync sends; `version` 2 changes a name and an attribute of each."""
    contacts = []
    for i in range(count):
        contacts.append(
            {
                "external_id": f"cust-{i}",
                "email": f"customer{i}@example.com",
                "first_name": FIRST_NAMES[i % len(FIRST_NAMES)],
                "last_name": LAST_NAMES[(i + version) % len(LAST_NAMES)],
                "timezone": TIMEZONES[i % len(TIMEZONES)],
                "locale": "da" if i % 3 else "sv",
                "attributes": {
                    "plan": PLANS[i % len(PLANS)],
                    "lifetime_value": (i * 7919) % 10_000 + version,
                    "newsletter": i % 2 == 0,
                    "signed_up": f"2025-{i % 12 + 1:02d}-{i % 28 + 1:02d}",
                },
            }
        )
    return contacts


def bulk_bodies(contacts: list[dict]) -> list[bytes]:
    return [
        json.dumps({"contacts": contacts[i : i + REQUEST_SIZE]}).encode()
        for i in range(0, len(contacts), REQUEST_SIZE)
    ]


def contact_rows(workspace_id: int, contacts: list[dict]) -> list[tuple]:
    now = datetime.now(UTC).isoformat()
    return [
        (workspace_id, c["external_id"], c["email"], c["first_name"], c["last_name"],
         c["timezone"], c["locale"], json.dumps(c["attributes"]), now, now)
        for c in contacts
    ]  # fmt: skip


def measure_pass(ctx, bodies: list[bytes], expected: dict, what: str) -> float:
    result = send_all(ctx.server.port, BULK_PATH, bodies, bearer(ctx.api_key), ctx.clients)
    result.require_status(200)
    totals = {"created": 0, "updated": 0, "unchanged": 0}
    rejected = []
    for answer in result.json_bodies():
        for key in totals:
            totals[key] += answer[key]
        rejected += answer["rejected"]
    if totals != expected or rejected:
        raise BenchError(f"{what}: expected {expected}, got {totals}; rejected: {rejected[:1]}")
    return result.seconds


def run(ctx) -> dict:
    count = ctx.scale["contacts"]
    first, changed = make_contacts(count, 1), make_contacts(count, 2)
    first_bodies, changed_bodies = bulk_bodies(first), bulk_bodies(changed)
    data = copy_data(contact_rows(ctx.workspace_id, first))
    floor, created, unchanged, updated = [], [], [], []
    for round_ in range(ctx.rounds):
        ctx.log(f"contacts round {round_ + 1}/{ctx.rounds}: {count:,} contacts")
        ctx.reset_contacts()
        floor.append(copy_floor(ctx.database, "contacts_contact", CONTACT_COLUMNS, data))
        if ctx.database.count("contacts_contact") != count:
            raise BenchError("the COPY floor did not store every contact")
        ctx.reset_contacts()
        none = {"created": 0, "updated": 0, "unchanged": 0}
        created.append(measure_pass(ctx, first_bodies, none | {"created": count}, "create"))
        ctx.database.vacuum_analyze("contacts_contact")
        unchanged.append(measure_pass(ctx, first_bodies, none | {"unchanged": count}, "re-send"))
        updated.append(measure_pass(ctx, changed_bodies, none | {"updated": count}, "update"))
        ctx.log(
            f"  COPY {count / floor[-1]:,.0f}/s; create {count / created[-1]:,.0f}/s, "
            f"unchanged {count / unchanged[-1]:,.0f}/s, update {count / updated[-1]:,.0f}/s"
        )
    what = "COPY into contacts_contact"
    per_request = f"requests of {REQUEST_SIZE:,}, matched by external_id"
    return {
        "figures": [
            figure(f"{count:,} new contacts: created", "contacts/s", count, created, floor, what,
                   min_ratio=TARGET_RATIO, note=per_request),
            figure(f"{count:,} contacts re-sent: unchanged", "contacts/s", count, unchanged,
                   floor, what, min_ratio=TARGET_RATIO, note=per_request),
            figure(f"{count:,} contacts with changes: updated", "contacts/s", count, updated,
                   floor, what, min_ratio=TARGET_RATIO, note=per_request),
        ]
    }  # fmt: skip
