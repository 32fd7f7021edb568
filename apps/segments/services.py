"""Segments: definitions, previews, and membership kept current two ways — per contact
the moment it changes, and set-wise on a clock for rules with time windows."""

import datetime as dt
import json
from dataclasses import dataclass

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.text import slugify

from apps.accounts.models import Workspace
from apps.contacts.models import Contact, ContactList
from apps.segments.choices import SEGMENT_ENTERED, SEGMENT_EXITED
from apps.segments.models import Segment, SegmentMembership, SegmentSize
from apps.segments.rules import compile_rule, iter_leaves, rule_has_time_window, validate_rule
from orchestra import redis_client

PREVIEW_SAMPLE_SIZE = 10
# Contacts re-evaluated per query in the real-time path.
REEVALUATE_BATCH = 2000
# If a worker dies holding the flag, changes wait at most this long (then the sweeper).
SCHEDULED_TTL_SECONDS = 30
REFRESH_LOCK = 7301  # advisory lock class for segment refreshes


class InvalidRule(ValueError):
    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


def rules_by_slug(workspace: Workspace) -> dict[str, dict]:
    return dict(Segment.objects.for_workspace(workspace).values_list("slug", "rule"))


def problems_in(workspace: Workspace, rule, own_slug: str | None = None) -> list[str]:
    rules = rules_by_slug(workspace)
    slugs = set(ContactList.objects.for_workspace(workspace).values_list("slug", flat=True))
    return validate_rule(
        rule, segment_rule=rules.get, list_exists=slugs.__contains__, own_slug=own_slug
    )


def inline_segments(rule, rules: dict[str, dict], depth: int = 0):
    """The rule with nested segment references replaced by their rules."""
    if depth > 20 or not isinstance(rule, dict):
        return rule
    if "segment" in rule:
        return inline_segments(rules.get(rule["segment"], {"any": []}), rules, depth + 1)
    if "all" in rule or "any" in rule:
        key = "all" if "all" in rule else "any"
        return {key: [inline_segments(child, rules, depth + 1) for child in rule[key]]}
    if "not" in rule:
        return {"not": inline_segments(rule["not"], rules, depth + 1)}
    return rule


def depends_on_clock(segment: Segment, rules: dict[str, dict]) -> bool:
    return rule_has_time_window(inline_segments(segment.rule, rules))


def _unique_slug(workspace: Workspace, name: str, exclude_pk=None) -> str:
    base = slugify(name)[:90] or "segment"
    existing = Segment.objects.for_workspace(workspace).exclude(pk=exclude_pk)
    slug, n = base, 1
    while existing.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


def create_segment(
    workspace: Workspace, name: str, rule: dict, description: str = "", created_by=None
) -> Segment:
    slug = _unique_slug(workspace, name)
    problems = problems_in(workspace, rule, own_slug=slug)
    if problems:
        raise InvalidRule(problems)
    segment = Segment.objects.create(workspace=workspace, name=name, slug=slug, rule=rule,
                                     description=description, created_by=created_by)  # fmt: skip
    transaction.on_commit(lambda: _enqueue_refresh(segment.pk))
    return segment


def update_segment(segment: Segment, *, name=None, rule=None, description=None) -> Segment:
    if rule is not None:
        problems = problems_in(segment.workspace, rule, own_slug=segment.slug)
        if problems:
            raise InvalidRule(problems)
        segment.rule = rule
    if name is not None:
        segment.name = name
    if description is not None:
        segment.description = description
    segment.save()
    if rule is not None:
        transaction.on_commit(lambda: _enqueue_refresh(segment.pk))
    return segment


def segments_using(segment: Segment) -> list[Segment]:
    """The other segments whose rules name this one."""
    return [
        other
        for other in Segment.objects.for_workspace(segment.workspace).exclude(pk=segment.pk)
        if any(leaf.get("segment") == segment.slug for leaf in iter_leaves(other.rule))
    ]


def delete_segment(segment: Segment) -> None:
    users = segments_using(segment)
    if users:
        raise InvalidRule([f"Used by the segment {', '.join(s.name for s in users)}."])
    segment.delete()


def _enqueue_refresh(segment_id: int) -> None:
    from apps.segments.tasks import refresh_segment_task

    refresh_segment_task.delay(segment_id)


def _compiled(workspace: Workspace, rule: dict, now: dt.datetime, rules=None, prefix="r"):
    rules = rules if rules is not None else rules_by_slug(workspace)
    return compile_rule(
        rule, workspace_id=workspace.pk, now=now, segment_rule=rules.get, prefix=prefix
    )


def preview(workspace: Workspace, rule: dict, sample_size: int = PREVIEW_SAMPLE_SIZE):
    """(count, sample contacts) for a rule that need not be saved; raises InvalidRule."""
    problems = problems_in(workspace, rule)
    if problems:
        raise InvalidRule(problems)
    sql, params = _compiled(workspace, rule, timezone.now())
    with connection.cursor() as cursor:
        params |= {"workspace_id": workspace.pk, "sample_size": sample_size}
        matching = f"FROM contacts_contact c WHERE c.workspace_id = %(workspace_id)s AND {sql}"
        cursor.execute(f"SELECT count(*) {matching}", params)
        count = cursor.fetchone()[0]
        cursor.execute(
            f"SELECT c.id {matching} ORDER BY c.id DESC LIMIT %(sample_size)s",
            params,
        )
        ids = [row[0] for row in cursor.fetchall()]
    sample = sorted(Contact.objects.filter(pk__in=ids), key=lambda c: -c.pk)
    return count, sample


def matching_contacts(workspace: Workspace, rule: dict, contact_ids) -> set[int]:
    """Which of these contacts the rule matches now (a journey's condition), in one query."""
    ids = sorted(set(contact_ids))
    if not ids:
        return set()
    sql, params = _compiled(workspace, rule, timezone.now())
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT c.id FROM contacts_contact c WHERE c.workspace_id = %(workspace_id)s "  # noqa: S608
            f"AND c.id = ANY(%(contact_ids)s) AND {sql}",
            params | {"workspace_id": workspace.pk, "contact_ids": ids},
        )
        return {row[0] for row in cursor.fetchall()}


@dataclass
class Changes:
    entered: list[tuple[int, int]]  # (segment_id, contact_id)
    exited: list[tuple[int, int]]


def reevaluate_contacts(workspace: Workspace, contact_ids: list[int]) -> Changes:
    """Re-evaluate every segment of the workspace for these contacts, in one query per
    batch, and apply the difference (memberships and segment_entered/exited events)."""
    segments = list(Segment.objects.for_workspace(workspace).order_by("pk"))
    changes = Changes([], [])
    if not segments or not contact_ids:
        return changes
    rules = {s.slug: s.rule for s in segments}
    now = timezone.now()
    columns, params = [], {}
    for segment in segments:
        sql, segment_params = _compiled(workspace, segment.rule, now, rules, f"s{segment.pk}_")
        columns.append(sql)
        params |= segment_params
    ids = sorted(set(contact_ids))
    for start in range(0, len(ids), REEVALUATE_BATCH):
        batch = ids[start : start + REEVALUATE_BATCH]
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f"SELECT c.id, {', '.join(columns)} FROM contacts_contact c "  # noqa: S608
                "WHERE c.workspace_id = %(workspace_id)s AND c.id = ANY(%(contact_ids)s)",
                params | {"workspace_id": workspace.pk, "contact_ids": batch},
            )
            matches = {
                (segment.pk, row[0])
                for row in cursor.fetchall()
                for segment, matched in zip(segments, row[1:], strict=True)
                if matched
            }
            current = set(
                SegmentMembership.objects.filter(
                    contact_id__in=batch, segment__in=segments
                ).values_list("segment_id", "contact_id")
            )
            batch_changes = _apply(workspace, segments, matches - current, current - matches, now)
            changes.entered += batch_changes.entered
            changes.exited += batch_changes.exited
    return changes


def _apply(workspace, segments, entering, exiting, now) -> Changes:
    """Write membership changes; answers what actually changed (another worker may have
    applied the same change first, and then it is not applied or announced twice)."""
    entered, exited = [], []
    with connection.cursor() as cursor:
        if entering:
            seg_ids, contact_ids = zip(*sorted(entering), strict=True)
            cursor.execute(
                """
                INSERT INTO segments_segmentmembership (workspace_id, segment_id, contact_id,
                                                        entered_at)
                SELECT %s, m.segment_id, m.contact_id, %s
                FROM unnest(%s::bigint[], %s::bigint[]) AS m(segment_id, contact_id)
                ON CONFLICT DO NOTHING RETURNING segment_id, contact_id
                """,
                [workspace.pk, now, list(seg_ids), list(contact_ids)],
            )
            entered = cursor.fetchall()
        if exiting:
            seg_ids, contact_ids = zip(*sorted(exiting), strict=True)
            cursor.execute(
                """
                DELETE FROM segments_segmentmembership m
                USING unnest(%s::bigint[], %s::bigint[]) AS x(segment_id, contact_id)
                WHERE m.segment_id = x.segment_id AND m.contact_id = x.contact_id
                RETURNING m.segment_id, m.contact_id
                """,
                [list(seg_ids), list(contact_ids)],
            )
            exited = cursor.fetchall()
    by_id = {segment.pk: segment for segment in segments}
    _record_events(workspace, by_id, entered, SEGMENT_ENTERED, now)
    _record_events(workspace, by_id, exited, SEGMENT_EXITED, now)
    for segment_id, delta in _deltas(entered, exited).items():
        Segment.objects.filter(pk=segment_id).update(member_count=F("member_count") + delta)
    return Changes(entered=list(entered), exited=list(exited))


def _deltas(entered, exited) -> dict[int, int]:
    deltas: dict[int, int] = {}
    for segment_id, _contact in entered:
        deltas[segment_id] = deltas.get(segment_id, 0) + 1
    for segment_id, _contact in exited:
        deltas[segment_id] = deltas.get(segment_id, 0) - 1
    return {k: v for k, v in deltas.items() if v}


def _record_events(workspace, segments_by_id, pairs, name: str, now) -> None:
    """segment_entered / segment_exited on the contact's timeline, naming the segment."""
    if not pairs:
        return
    properties = {
        pk: json.dumps({"segment": s.slug, "segment_name": s.name})
        for pk, s in segments_by_id.items()
    }
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO contacts_event (workspace_id, contact_id, name, properties, occurred_at,
                                        received_at, source)
            SELECT %s, x.contact_id, %s, x.properties::jsonb, %s, %s, 'system'
            FROM unnest(%s::bigint[], %s::text[]) AS x(contact_id, properties)
            RETURNING id
            """,
            [workspace.pk, name, now, now, [c for _s, c in pairs],
             [properties[s] for s, _c in pairs]],
        )  # fmt: skip
        # (imported here: journeys build on segments, not the other way round)
        from apps.journeys.services import triggers as journeys

        if name in journeys.listened_event_names(workspace.pk):
            journeys.events_stored(workspace.pk, [row[0] for row in cursor.fetchall()])


def refresh_segment(segment: Segment) -> tuple[int, int]:
    """Recompute the whole membership with set-based SQL; answers (entered, exited).

    The first build of a new segment records no entered events: only changes after a
    segment exists are news.
    """
    workspace = segment.workspace
    now = timezone.now()
    sql, params = _compiled(workspace, segment.rule, now)
    announce = segment.refreshed_at is not None
    with transaction.atomic(), connection.cursor() as cursor:
        # One refresh of a segment at a time (real-time updates interleave safely). When
        # one is already running, its result is as fresh as ours would be: skip.
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", [REFRESH_LOCK, segment.pk])
        if not cursor.fetchone()[0]:
            return 0, 0
        if not announce and not SegmentMembership.objects.filter(segment=segment).exists():
            # A first build with no members yet (none added in real time meanwhile): one
            # INSERT … SELECT, with nothing to compare against and no events to record.
            cursor.execute(
                f"""
                INSERT INTO segments_segmentmembership (workspace_id, segment_id, contact_id,
                                                        entered_at)
                SELECT %(workspace_id)s, %(segment_id)s, c.id, %(now)s
                FROM contacts_contact c WHERE c.workspace_id = %(workspace_id)s AND {sql}
                ON CONFLICT DO NOTHING
                """,  # noqa: S608
                params | {"workspace_id": workspace.pk, "segment_id": segment.pk, "now": now},
            )
            entered = cursor.rowcount
            size = SegmentMembership.objects.filter(segment=segment).count()
            Segment.objects.filter(pk=segment.pk).update(member_count=size, refreshed_at=now)
            SegmentSize.objects.create(segment=segment, measured_at=now, size=size)
            return entered, 0
        cursor.execute("DROP TABLE IF EXISTS segment_target")
        cursor.execute(
            f"""
            CREATE TEMP TABLE segment_target ON COMMIT DROP AS
            SELECT c.id FROM contacts_contact c WHERE c.workspace_id = %(workspace_id)s AND {sql}
            """,  # noqa: S608
            params | {"workspace_id": workspace.pk},
        )
        # Statistics know nothing of a new segment's members, so the planner expects the
        # DELETE below to find one row and may scan segment_target once per member:
        # 10 minutes for 120,000 members (bench/segments.py). With the index it probes.
        cursor.execute("CREATE INDEX ON segment_target (id)")
        cursor.execute("ANALYZE segment_target")
        cursor.execute(
            """
            INSERT INTO segments_segmentmembership (workspace_id, segment_id, contact_id,
                                                    entered_at)
            SELECT %s, %s, t.id, %s FROM segment_target t
            ON CONFLICT DO NOTHING RETURNING segment_id, contact_id
            """,
            [workspace.pk, segment.pk, now],
        )
        entered = cursor.fetchall()
        cursor.execute(
            """
            DELETE FROM segments_segmentmembership m
            WHERE m.segment_id = %s
              AND NOT EXISTS (SELECT 1 FROM segment_target t WHERE t.id = m.contact_id)
            RETURNING m.segment_id, m.contact_id
            """,
            [segment.pk],
        )
        exited = cursor.fetchall()
        cursor.execute("SELECT count(*) FROM segment_target")
        size = cursor.fetchone()[0]
        if announce:
            by_id = {segment.pk: segment}
            _record_events(workspace, by_id, entered, SEGMENT_ENTERED, now)
            _record_events(workspace, by_id, exited, SEGMENT_EXITED, now)
        Segment.objects.filter(pk=segment.pk).update(member_count=size, refreshed_at=now)
        SegmentSize.objects.create(segment=segment, measured_at=now, size=size)
    return len(entered), len(exited)


def segments_to_refresh(include_all: bool) -> list[Segment]:
    """Segments whose membership the clock can change (or every segment)."""
    due = []
    segments = Segment.objects.select_related("workspace").order_by("workspace_id", "pk")
    rules: dict[int, dict] = {}
    for segment in segments:
        if segment.workspace_id not in rules:
            rules[segment.workspace_id] = rules_by_slug(segment.workspace)
        if (
            include_all
            or segment.refreshed_at is None
            or depends_on_clock(segment, rules[segment.workspace_id])
        ):
            due.append(segment)
    return due


def contacts_changed(workspace_id: int, contact_ids) -> None:
    """Call after anything about these contacts changed: once the transaction commits,
    their segment memberships are re-evaluated by a worker, within a second.

    Changed contacts gather in a Redis set per workspace and one task drains it, so
    under heavy ingest one query re-evaluates thousands of contacts instead of each
    request queueing its own task.
    """
    ids = {int(pk) for pk in contact_ids}
    if ids:
        # robust: a broker hiccup must not fail the request that already committed; the
        # changes wait in Redis for the sweeper, and the hourly refresh heals the rest.
        transaction.on_commit(lambda: _mark_dirty(workspace_id, ids), robust=True)


def _dirty_key(workspace_id: int) -> str:
    return redis_client.key("segments", "dirty", workspace_id)


def _scheduled_key(workspace_id: int) -> str:
    return redis_client.key("segments", "scheduled", workspace_id)


def _mark_dirty(workspace_id: int, ids: set[int]) -> None:
    from apps.segments.tasks import reevaluate_dirty_contacts_task

    pipe = redis_client.client().pipeline(transaction=False)  # one round trip for both commands
    pipe.sadd(_dirty_key(workspace_id), *ids)
    # At most one task waits per workspace; it takes everything gathered by then.
    pipe.set(_scheduled_key(workspace_id), 1, nx=True, ex=SCHEDULED_TTL_SECONDS)
    _added, scheduled_now = pipe.execute()
    if scheduled_now:
        reevaluate_dirty_contacts_task.delay(workspace_id)


def reevaluate_dirty_contacts(workspace_id: int) -> int:
    """Drain the workspace's changed contacts; answers how many were re-evaluated.

    The scheduled flag is dropped first, so a change arriving meanwhile schedules a new
    task; SPOP hands each contact id to exactly one task.
    """
    redis = redis_client.client()
    redis.delete(_scheduled_key(workspace_id))
    workspace = Workspace.objects.filter(pk=workspace_id).first()
    done = 0
    while True:
        ids = [int(pk) for pk in redis.spop(_dirty_key(workspace_id), REEVALUATE_BATCH) or []]
        if not ids:
            return done
        if workspace is not None:
            reevaluate_contacts(workspace, ids)
        done += len(ids)


def dirty_workspaces() -> list[int]:
    """Workspaces with changed contacts waiting (for the sweeper after a worker crash)."""
    prefix = _dirty_key(0)[:-1]
    keys = redis_client.client().scan_iter(f"{prefix}*")
    return [int(key.decode().rsplit(":", 1)[1]) for key in keys]


# What the workspace has seen, for the segment builder's pickers -------------------------

# Attribute names come from the newest contacts: recent ones show the attributes in use
# now, and a bounded sample keeps the builder fast with a million contacts.
ATTRIBUTE_SAMPLE_CONTACTS = 5000
KNOWN_EVENT_NAMES_LIMIT = 1000
# jsonb_typeof's names, as the builder calls them ("date": ISO 8601 text).
SEEN_TYPES = {"string": "text", "number": "number", "boolean": "boolean", "date": "date",
              "array": "list", "object": "object"}  # fmt: skip


@dataclass(frozen=True)
class KnownAttribute:
    name: str
    type: str  # a value of SEEN_TYPES: the type most sampled contacts hold


def known_attributes(workspace: Workspace) -> list[KnownAttribute]:
    """The attribute names on the workspace's newest contacts, each with its usual type."""
    from apps.segments.rules.spec import ISO_DATETIME_PATTERN

    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT a.key,
                   CASE WHEN jsonb_typeof(a.value) = 'string' AND a.value #>> '{}' ~ %(iso)s
                        THEN 'date' ELSE jsonb_typeof(a.value) END AS seen_type,
                   count(*) AS seen
            FROM (SELECT attributes FROM contacts_contact
                  WHERE workspace_id = %(workspace_id)s ORDER BY id DESC LIMIT %(sample)s) c
            CROSS JOIN LATERAL jsonb_each(
                CASE WHEN jsonb_typeof(c.attributes) = 'object' THEN c.attributes
                     ELSE '{}'::jsonb END) AS a
            WHERE jsonb_typeof(a.value) <> 'null'
            GROUP BY 1, 2
            ORDER BY 1, 3 DESC, 2
            """,
            {"workspace_id": workspace.pk, "sample": ATTRIBUTE_SAMPLE_CONTACTS,
             "iso": ISO_DATETIME_PATTERN},
        )  # fmt: skip
        usual: dict[str, str] = {}
        for name, seen_type, _seen in cursor.fetchall():
            usual.setdefault(name, SEEN_TYPES.get(seen_type, "text"))
    return [KnownAttribute(name, seen_type) for name, seen_type in usual.items()]


def known_event_names(workspace: Workspace, limit: int = KNOWN_EVENT_NAMES_LIMIT) -> list[str]:
    """Every event name the workspace has recorded, alphabetically.

    A loose index scan over event_name_time (workspace_id, name, occurred_at): each step
    jumps to the next name with one index probe, so the cost grows with the number of
    names, not with the millions of events.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            """
            WITH RECURSIVE names(name) AS (
                (SELECT name FROM contacts_event WHERE workspace_id = %(workspace_id)s
                 ORDER BY name LIMIT 1)
                UNION ALL
                SELECT (SELECT e.name FROM contacts_event e
                        WHERE e.workspace_id = %(workspace_id)s AND e.name > names.name
                        ORDER BY e.name LIMIT 1)
                FROM names WHERE names.name IS NOT NULL
            )
            SELECT name FROM names WHERE name IS NOT NULL LIMIT %(limit)s
            """,
            {"workspace_id": workspace.pk, "limit": limit},
        )
        return [row[0] for row in cursor.fetchall()]


def journeys_using(segment: Segment) -> list:
    """The journeys (not archived) whose entry, conditions or splits use this segment."""
    from apps.journeys.models import Journey
    from apps.journeys.services.journeys import segments_used

    journeys = Journey.objects.for_workspace(segment.workspace).exclude(status="archived")
    journeys = journeys.select_related("live_version").order_by("name")
    return [j for j in journeys if segment.slug in segments_used(j)]
