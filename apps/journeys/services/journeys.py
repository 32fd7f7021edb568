"""A journey's life: a draft graph, published versions, pause, resume, archive, restore."""

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.channels.models import Template
from apps.contacts.models import ContactList
from apps.journeys.choices import JourneyStatus
from apps.journeys.graph import Problems, References, validate_graph
from apps.journeys.models import OPEN_STATES, Enrollment, Journey, JourneyVersion
from apps.journeys.services import engine, triggers
from apps.segments.models import Segment
from apps.segments.rules import iter_leaves


class JourneyError(Exception):
    """The change cannot be made; `problems` names every reason."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


def references(workspace) -> References:
    """Validation's view of what the workspace has (templates, segments, lists)."""
    templates = set(Template.objects.for_workspace(workspace).values_list("slug", "channel"))
    segments = dict(Segment.objects.for_workspace(workspace).values_list("slug", "rule"))
    lists = set(ContactList.objects.for_workspace(workspace).values_list("slug", flat=True))
    return References(
        template=lambda slug, channel: (slug, channel) in templates,
        segment=lambda slug: slug in segments,
        list=lambda slug: slug in lists,
        segment_rule=segments.get,
    )


def check(workspace, graph) -> Problems:
    return validate_graph(graph, references(workspace))


def create_journey(workspace, graph: dict, user=None) -> Journey:
    """A draft from a graph; refused with every problem listed when it does not validate."""
    problems = check(workspace, graph)
    if problems:
        raise JourneyError(problems.as_list())
    return Journey.objects.create(
        workspace=workspace,
        name=str(graph["name"])[:150],
        priority=int(graph.get("priority", 0) or 0),
        draft=graph,
        created_by=user,
    )


def update_draft(journey: Journey, graph: dict) -> Journey:
    """Editing never touches a published version: contacts in flight keep theirs."""
    if journey.status == JourneyStatus.ARCHIVED:
        raise JourneyError([_("An archived journey cannot be changed.")])
    problems = check(journey.workspace, graph)
    if problems:
        raise JourneyError(problems.as_list())
    journey.draft = graph
    journey.name = str(graph["name"])[:150]
    journey.priority = int(graph.get("priority", 0) or 0)
    journey.save(update_fields=["draft", "name", "priority", "updated_at"])
    return journey


@transaction.atomic
def publish(journey: Journey, user=None, move_to: dict[str, str] | None = None) -> JourneyVersion:
    """Freeze the draft as a new version and make the journey live. Contacts in flight
    finish on their version, unless `move_to` maps their nodes ({"old node": "new node"})
    onto the new one."""
    journey = Journey.objects.select_for_update().get(pk=journey.pk)
    if journey.status == JourneyStatus.ARCHIVED:
        raise JourneyError([_("An archived journey cannot be published.")])
    problems = check(journey.workspace, journey.draft)
    if problems:
        raise JourneyError(problems.as_list())
    graph = journey.draft
    node_ids = {node["id"] for node in graph["nodes"]}
    if move_to and not set(move_to.values()) <= node_ids:
        raise JourneyError(
            [
                _("move_to names nodes the new version does not have: %(n)s.")
                % {"n": ", ".join(sorted(set(move_to.values()) - node_ids))}
            ]
        )
    number = (
        journey.versions.order_by("-number").values_list("number", flat=True).first() or 0
    ) + 1
    version = JourneyVersion.objects.create(
        journey=journey, number=number, graph=graph, published_by=user
    )
    previous = journey.live_version
    journey.live_version = version
    journey.status = JourneyStatus.LIVE
    journey.save(update_fields=["live_version", "status", "updated_at"])
    if previous is not None and move_to:
        _move_in_flight(journey, previous, version, move_to)
    triggers.forget_listened_names(journey.workspace_id)
    return version


def _move_in_flight(journey, previous, version, move_to: dict[str, str]) -> None:
    batch = engine.Batch(now=timezone.now())
    moved = list(
        Enrollment.objects.select_for_update()
        .filter(journey=journey, version=previous, state__in=OPEN_STATES, node_id__in=move_to)
        .select_related("version", "journey", "contact", "workspace")
    )
    for enrollment in moved:
        engine.move(enrollment, version, move_to[enrollment.node_id], batch)
    engine.save(batch, moved)
    Enrollment.objects.bulk_update(moved, ["version"])


def set_status(journey: Journey, status: str) -> Journey:
    allowed = {
        JourneyStatus.PAUSED: {JourneyStatus.LIVE},
        JourneyStatus.LIVE: {JourneyStatus.PAUSED},
    }
    if journey.status not in allowed[status]:
        raise JourneyError(
            [_("A %(from)s journey cannot be %(to)s.") % {"from": journey.status, "to": status}]
        )
    journey.status = status
    journey.save(update_fields=["status", "updated_at"])
    triggers.forget_listened_names(journey.workspace_id)
    if status == JourneyStatus.LIVE:
        # Resumed: what came due during the pause is claimed by the next tick.
        from apps.journeys.tasks import advance_due_task

        transaction.on_commit(advance_due_task.delay)
    return journey


def pause(journey: Journey) -> Journey:
    """Nobody moves on (due steps wait) until the journey is resumed."""
    return set_status(journey, JourneyStatus.PAUSED)


def resume(journey: Journey) -> Journey:
    return set_status(journey, JourneyStatus.LIVE)


@transaction.atomic
def archive(journey: Journey, reason: str = "") -> int:
    """Everyone still in the journey exits with the reason; answers how many."""
    journey = Journey.objects.select_for_update().get(pk=journey.pk)
    batch = engine.Batch(now=timezone.now())
    exiting = list(
        Enrollment.objects.select_for_update()
        .filter(journey=journey, state__in=OPEN_STATES)
        .select_related("version", "journey", "contact", "workspace")
    )
    for enrollment in exiting:
        engine.exit_enrollment(enrollment, batch, reason or _("The journey was archived."))
    engine.save(batch, exiting)
    journey.status = JourneyStatus.ARCHIVED
    journey.save(update_fields=["status", "updated_at"])
    triggers.forget_listened_names(journey.workspace_id)
    return len(exiting)


def restore(journey: Journey, version: JourneyVersion) -> Journey:
    """A previous version's graph becomes the draft again (publish it to make it live)."""
    return update_draft(journey, version.graph)


@transaction.atomic
def enroll_contact(journey: Journey, contact, key: str = "", event=None) -> Enrollment | None:
    """An API entry: the contact enters now (if the re-entry rule allows)."""
    if journey.status != JourneyStatus.LIVE or journey.live_version is None:
        raise JourneyError([_("Only a live journey takes contacts.")])
    if (journey.live_version.graph.get("entry") or {}).get("type") != "api":
        raise JourneyError([_("This journey's entry is not the API.")])
    batch = engine.Batch(now=timezone.now())
    enrollment = triggers.enroll(journey, contact, batch, event=event, key=key)
    engine.save(batch, [enrollment] if enrollment else [])
    return enrollment


def segments_used(journey: Journey) -> set[str]:
    """Slugs of the segments the journey's draft and live version refer to."""
    graphs = [journey.draft]
    if journey.live_version_id:
        graphs.append(journey.live_version.graph)
    slugs = set()
    for graph in graphs:
        entry = graph.get("entry") or {}
        if entry.get("type") == "segment_entered":
            slugs.add(entry.get("segment"))
        for node in graph.get("nodes", []):
            rules = [node.get("rule")] + [
                b.get("rule") for b in node.get("branches") or [] if isinstance(b, dict)
            ]
            for rule in rules:
                slugs |= {leaf["segment"] for leaf in iter_leaves(rule or {}) if "segment" in leaf}
    return slugs


def templates_used(journey: Journey) -> set[str]:
    """Slugs of the templates the journey's draft and live version send."""
    graphs = [journey.draft] + ([journey.live_version.graph] if journey.live_version_id else [])
    slugs = set()
    for graph in graphs:
        for node in graph.get("nodes", []):
            if node.get("type") == "send":
                template = node.get("template")
                slugs |= set(template.values()) if isinstance(template, dict) else {template}
    return slugs


def journeys_sending(template) -> list[Journey]:
    journeys = Journey.objects.for_workspace(template.workspace).exclude(
        status=JourneyStatus.ARCHIVED
    )
    journeys = journeys.select_related("live_version").order_by("name")
    return [j for j in journeys if template.slug in templates_used(j)]
