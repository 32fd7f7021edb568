"""Comparing two journey graphs (a version and the draft, or two versions) node by node,
for the version history and the canvas that draws the difference."""

from dataclasses import dataclass, field

from django.utils.translation import gettext as _

from apps.journeys.models import Journey, JourneyVersion

DRAFT = "draft"


@dataclass
class GraphDiff:
    """Node ids: added (only in the new graph), removed (only in the old one), changed (in
    both, with different settings or different edges out)."""

    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)

    def as_dict(self) -> dict:
        return {"added": self.added, "removed": self.removed, "changed": self.changed}


def _nodes(graph: dict) -> dict[str, dict]:
    nodes = {}
    for node in (graph or {}).get("nodes") or []:
        if isinstance(node, dict) and "id" in node:
            nodes.setdefault(str(node["id"]), node)
    return nodes


def _outgoing(graph: dict) -> dict[str, set[tuple]]:
    outgoing: dict[str, set[tuple]] = {}
    for edge in (graph or {}).get("edges") or []:
        if isinstance(edge, dict):
            branch = edge.get("branch")
            outgoing.setdefault(str(edge.get("from")), set()).add(
                (None if branch is None else str(branch), str(edge.get("to")))
            )
    return outgoing


def graph_diff(old: dict, new: dict) -> GraphDiff:
    """What changed from `old` to `new`, in the new graph's node order (removed nodes in the
    old one's). Where a node sits on the canvas is no change."""
    old_nodes, new_nodes = _nodes(old), _nodes(new)
    old_edges, new_edges = _outgoing(old), _outgoing(new)
    diff = GraphDiff()
    for node_id, node in new_nodes.items():
        if node_id not in old_nodes:
            diff.added.append(node_id)
        elif node != old_nodes[node_id] or new_edges.get(node_id, set()) != old_edges.get(
            node_id, set()
        ):
            diff.changed.append(node_id)
    diff.removed = [node_id for node_id in old_nodes if node_id not in new_nodes]
    return diff


def removed_nodes(old: dict, diff: GraphDiff) -> list[dict]:
    """The old graph's nodes the new one lacks (the canvas draws them faded)."""
    nodes = _nodes(old)
    return [nodes[node_id] for node_id in diff.removed]


@dataclass
class Comparison:
    """The graph shown and the one it is compared with (the "against" of the canvas)."""

    against_label: str
    against_graph: dict


def comparison(journey: Journey, against: str) -> Comparison | None:
    """`against` is "draft" or a version number; None when there is no such version."""
    if against == DRAFT:
        return Comparison(_("the draft"), journey.draft)
    if not against.isdigit():
        return None
    version = JourneyVersion.objects.filter(journey=journey, number=int(against)).first()
    if version is None:
        return None
    return Comparison(_("version %(number)s") % {"number": version.number}, version.graph)


def diff_for_canvas(shown: dict, compared: Comparison) -> tuple[dict, list[dict]]:
    """(the diff as the canvas takes it, the nodes to draw faded): what the graph shown
    has added, removed and changed since the one it is compared with."""
    diff = graph_diff(compared.against_graph, shown)
    return (
        {**diff.as_dict(), "against": compared.against_label},
        removed_nodes(compared.against_graph, diff),
    )


@dataclass
class VersionRow:
    version: JourneyVersion
    changes: GraphDiff | None  # since the version before it (None for the first)
    compare_with: list[tuple[str, str]]  # (value of ?compare=, label)


def version_rows(journey: Journey, versions: list[JourneyVersion]) -> list[VersionRow]:
    """Each version (newest first) with what it changed since the one before it, and what
    it can be compared with: the draft and the other versions."""
    rows = []
    for index, version in enumerate(versions):
        previous = versions[index + 1] if index + 1 < len(versions) else None
        compare_with = [(DRAFT, _("the draft"))] + [
            (str(other.number), _("version %(number)s") % {"number": other.number})
            for other in versions
            if other.number != version.number
        ]
        rows.append(
            VersionRow(
                version=version,
                changes=graph_diff(previous.graph, version.graph) if previous else None,
                compare_with=compare_with,
            )
        )
    return rows
