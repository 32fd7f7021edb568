"""A journey graph as an ordered list of steps, for the editor that works without a canvas
(keyboard and screen-reader users): the steps breadth-first from the entry, each with its
ways on ("if yes, go to …"), and the edits that list offers: where a way leads, a step
added on a way, a step removed, a step moved before the one leading to it."""

import copy
from collections import deque
from dataclasses import dataclass

from django.utils.translation import gettext as _

from apps.journeys.graph import branches_of
from apps.journeys.services.builder import new_node


class StepError(ValueError):
    """The edit does not apply to this graph (the step or way has gone)."""


@dataclass
class Way:
    branch: str | None  # None: the node's single unlabelled way on
    target: str | None  # None: the journey ends here on this way


def nodes_by_id(graph: dict) -> dict[str, dict]:
    nodes: dict[str, dict] = {}
    for node in graph.get("nodes") or []:
        if isinstance(node, dict) and "id" in node:
            nodes.setdefault(str(node["id"]), node)
    return nodes


def _edges(graph: dict) -> list[dict]:
    return [edge for edge in graph.get("edges") or [] if isinstance(edge, dict)]


def ways_of(graph: dict, node: dict) -> list[Way]:
    """The node's ways on, in the order its type names them, then any others it has."""
    node_id = str(node.get("id"))
    targets: dict[str | None, str] = {}
    for edge in _edges(graph):
        if str(edge.get("from")) == node_id:
            branch = edge.get("branch")
            targets.setdefault(None if branch is None else str(branch), str(edge.get("to")))
    expected = branches_of(node)
    labels: list[str | None] = [None] if expected is None else list(expected)
    if node.get("type") == "exit":
        labels = []
    labels += [label for label in targets if label not in labels]
    return [Way(label, targets.get(label)) for label in labels]


def ordered_ids(graph: dict) -> list[str]:
    """Breadth-first from the start, then from each goal (reached by its event from
    anywhere), then any node no path reaches, in the graph's order."""
    nodes = nodes_by_id(graph)
    order: list[str] = []
    seen: set[str] = set()
    roots = [graph.get("start")] + [i for i, n in nodes.items() if n.get("type") == "goal"]
    roots += list(nodes)
    for root in roots:
        if root not in nodes or root in seen:
            continue
        queue = deque([root])
        seen.add(root)
        while queue:
            node_id = queue.popleft()
            order.append(node_id)
            for way in ways_of(graph, nodes[node_id]):
                if way.target in nodes and way.target not in seen:
                    seen.add(way.target)
                    queue.append(way.target)
    return order


def predecessors(graph: dict, node_id: str) -> list[tuple[str, str | None]]:
    """(node id, branch) of each edge into the node."""
    return [
        (str(edge.get("from")), edge.get("branch"))
        for edge in _edges(graph)
        if str(edge.get("to")) == node_id
    ]


def set_ways(graph: dict, node_id: str, ways: list[Way]) -> None:
    """The node's edges become exactly these ways (those with a target)."""
    others = [edge for edge in _edges(graph) if str(edge.get("from")) != node_id]
    own = []
    for way in ways:
        if way.target is None:
            continue
        edge = {"from": node_id, "to": way.target}
        if way.branch is not None:
            edge["branch"] = way.branch
        own.append(edge)
    graph["edges"] = others + own


def carry_ways(old_ways: list[Way], node: dict, graph: dict) -> list[Way]:
    """The node's ways after its settings changed (a wait now waiting for an event, a split
    with a path renamed): ways keep their label where it still exists, and the others go,
    in order, to the new labels left free."""
    expected = branches_of(node)
    labels: list[str | None] = [None] if expected is None else list(expected)
    if node.get("type") == "exit":
        return []
    targets: dict[str | None, str | None] = {}
    leftover = []
    for way in old_ways:
        if way.branch in labels and way.branch not in targets:
            targets[way.branch] = way.target
        else:
            leftover.append(way.target)
    free = [label for label in labels if label not in targets]
    for label, target in zip(free, leftover, strict=False):
        targets[label] = target
    return [Way(label, targets.get(label)) for label in labels]


def add_step(graph: dict, after: str | None, branch: str | None, kind: str) -> dict:
    """A new step of that type on the way `branch` out of `after` (None: at the start); it
    leads on to where that way led. Answers the new node."""
    nodes = nodes_by_id(graph)
    node = new_node(kind, nodes)
    if after is None:
        following = graph.get("start") if graph.get("start") in nodes else None
        graph["start"] = node["id"]
    else:
        if after not in nodes:
            raise StepError(_("That step is no longer in the journey."))
        ways = ways_of(graph, nodes[after])
        way = next((w for w in ways if w.branch == branch), None)
        if way is None:
            raise StepError(_("That path is no longer in the journey."))
        following, way.target = way.target, node["id"]
        set_ways(graph, after, ways)
    graph.setdefault("nodes", []).append(node)
    new_ways = ways_of(graph, node)
    if new_ways and following is not None:
        new_ways[0].target = following
        set_ways(graph, node["id"], new_ways)
    return node


def remove_step(graph: dict, node_id: str) -> None:
    """The step goes; whatever led to it leads to where its first way led."""
    nodes = nodes_by_id(graph)
    if node_id not in nodes:
        raise StepError(_("That step is no longer in the journey."))
    ways = ways_of(graph, nodes[node_id])
    following = next((w.target for w in ways if w.target and w.target != node_id), None)
    edges = []
    for edge in _edges(graph):
        if str(edge.get("from")) == node_id:
            continue
        if str(edge.get("to")) == node_id:
            if following is None:
                continue
            edge = {**edge, "to": following}
        edges.append(edge)
    graph["edges"] = edges
    graph["nodes"] = [n for n in graph.get("nodes") or [] if str(n.get("id")) != node_id]
    if graph.get("start") == node_id:
        graph["start"] = following or (str(graph["nodes"][0]["id"]) if graph["nodes"] else "")
    layout = graph.get("layout")
    if isinstance(layout, dict):
        layout.pop(node_id, None)


def movable_before(graph: dict, node_id: str) -> str | None:
    """The step this one can swap places with (the one leading to it): when only that
    step leads here, and this one has a single way on (so the other can follow it)."""
    nodes = nodes_by_id(graph)
    node = nodes.get(node_id)
    if node is None or branches_of(node) is not None or node.get("type") == "goal":
        return None
    incoming = predecessors(graph, node_id)
    if len(incoming) != 1 or incoming[0][0] == node_id or incoming[0][0] not in nodes:
        return None
    return incoming[0][0]


def movable_after(graph: dict, node_id: str) -> str | None:
    """The step this one can swap places with going down: the one its single way leads to,
    when that one can move before it."""
    nodes = nodes_by_id(graph)
    node = nodes.get(node_id)
    if node is None:
        return None
    for way in ways_of(graph, node):
        if way.target and movable_before(graph, way.target) == node_id:
            return way.target
    return None


def move_before(graph: dict, node_id: str) -> None:
    """Swap the step with the one leading to it: what led to that one leads here, this one
    leads to it, and its way that led here leads where this one led."""
    before = movable_before(graph, node_id)
    if before is None:
        raise StepError(_("This step cannot move: several paths lead to it, or it branches."))
    nodes = nodes_by_id(graph)
    ways = ways_of(graph, nodes[node_id])
    following = ways[0].target if ways else None
    edges = []
    for edge in _edges(graph):
        source, target = str(edge.get("from")), str(edge.get("to"))
        if source == before and target == node_id:
            if following is not None:
                edges.append({**edge, "to": following})
        elif source == node_id:
            continue
        elif target == before:
            edges.append({**edge, "to": node_id})
        else:
            edges.append(edge)
    if nodes[node_id].get("type") != "exit":
        edges.append({"from": node_id, "to": before})
    graph["edges"] = edges
    if graph.get("start") == before:
        graph["start"] = node_id


def copy_graph(graph: dict) -> dict:
    return copy.deepcopy(graph)
