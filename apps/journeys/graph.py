"""The journey graph (the JSON contract in DESIGN.md): its node types, their branches, and
validation that names every problem at once, with the node it concerns."""

import datetime as dt
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from django.utils.translation import gettext as _

from apps.segments.rules import validate_rule

ENTRY_TYPES = {"event", "segment_entered", "date_attribute", "api"}
CHANNEL_TYPES = {"email", "sms", "push", "webhook"}
# Node type -> the branch labels its outgoing edges must carry (None: one plain edge).
NODE_BRANCHES: dict[str, tuple[str, ...] | None] = {
    "send": None,
    "wait": None,  # with until_event: ("event", "timeout")
    "condition": ("yes", "no"),
    "random_split": (),  # the keys of its weights
    "split": (),  # the names of its branches, and "else"
    "update_attribute": None,
    "add_to_list": None,
    "remove_from_list": None,
    "webhook": None,
    "goal": None,
    "exit": (),
}
ISO_DURATION = re.compile(
    r"^P(?!$)(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?=\d)(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+)S)?)?$"
)
TIME_OF_DAY = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
MAX_NODES = 500


def parse_duration(text) -> dt.timedelta | None:
    """ISO 8601 durations of weeks, days, hours, minutes and seconds ("P3D", "PT2H30M")."""
    match = ISO_DURATION.match(text) if isinstance(text, str) else None
    if not match:
        return None
    parts = {name: int(value) for name, value in match.groupdict().items() if value}
    return dt.timedelta(**parts)


def parse_time_of_day(text) -> dt.time | None:
    if not isinstance(text, str) or not TIME_OF_DAY.match(text):
        return None
    hour, minute = text.split(":")
    return dt.time(int(hour), int(minute))


@dataclass
class References:
    """How validation checks what the graph names in the workspace (each answers whether
    the slug exists; None skips the check, e.g. for a draft saved half-done)."""

    template: Callable[[str, str], bool] | None = None  # (slug, channel type)
    segment: Callable[[str], bool] | None = None
    list: Callable[[str], bool] | None = None
    segment_rule: Callable[[str], dict | None] | None = None


@dataclass
class Problems:
    """Problems by node id ("" for the journey as a whole), in the order found."""

    by_node: dict[str, list[str]] = field(default_factory=dict)

    def add(self, node: str, message: str) -> None:
        self.by_node.setdefault(node, []).append(message)

    def __bool__(self) -> bool:
        return bool(self.by_node)

    def as_list(self) -> list[str]:
        return [
            f"{node}: {message}" if node else message
            for node, messages in self.by_node.items()
            for message in messages
        ]


def branches_of(node: dict) -> tuple[str, ...] | None:
    """The branch labels a node's outgoing edges carry; None: a single unlabelled edge."""
    kind = node.get("type")
    if kind == "wait" and node.get("until_event"):
        return ("event", "timeout")
    if kind == "random_split":
        return tuple(str(key) for key in (node.get("weights") or {}))
    if kind == "split":
        names = [str(b.get("name")) for b in node.get("branches") or [] if isinstance(b, dict)]
        return (*names, "else")
    return NODE_BRANCHES.get(kind)


def validate_graph(graph, refs: References | None = None) -> Problems:
    """Every problem in the graph: unknown node types, references, branches, unreachable
    nodes, cycles with no wait in them, bad durations and weights."""
    refs = refs or References()
    problems = Problems()
    if not isinstance(graph, dict):
        problems.add("", _("The journey must be a JSON object."))
        return problems
    if not str(graph.get("name") or "").strip():
        problems.add("", _("Give the journey a name."))
    _check_entry(graph.get("entry"), problems, refs)
    _check_reentry(graph.get("reentry", "never"), problems)
    exit_when = graph.get("exit_when")
    if exit_when is not None and not (
        isinstance(exit_when, dict) and isinstance(exit_when.get("event"), str)
    ):
        problems.add("", _('exit_when must be {"event": "<event name>"}.'))
    _check_layout(graph.get("layout"), problems)
    holdout = graph.get("holdout_percent", 0)
    if not isinstance(holdout, int | float) or isinstance(holdout, bool) or not 0 <= holdout < 100:
        problems.add("", _("holdout_percent must be a number from 0 to 99."))
    nodes = graph.get("nodes")
    edges = graph.get("edges", [])
    if not isinstance(nodes, list) or not nodes:
        problems.add("", _("A journey needs at least one node."))
        return problems
    if len(nodes) > MAX_NODES:
        problems.add("", _("At most %(n)d nodes.") % {"n": MAX_NODES})
        return problems
    if not isinstance(edges, list):
        problems.add("", _("edges must be a list."))
        return problems
    by_id = _check_nodes(nodes, problems, refs)
    start = graph.get("start")
    if start not in by_id:
        problems.add("", _("start must name one of the nodes; it names %(s)r.") % {"s": start})
    outgoing = _check_edges(edges, by_id, problems)
    _check_branches(by_id, outgoing, problems)
    if start in by_id:
        _check_reachable(start, by_id, outgoing, problems)
    _check_cycles(by_id, outgoing, problems)
    return problems


def _check_entry(entry, problems: Problems, refs: References) -> None:
    if not isinstance(entry, dict) or entry.get("type") not in ENTRY_TYPES:
        problems.add(
            "", _("entry.type must be one of %(t)s.") % {"t": ", ".join(sorted(ENTRY_TYPES))}
        )
        return
    kind = entry["type"]
    if kind == "event":
        if not _text(entry.get("event")):
            problems.add("", _("An event entry names its event."))
        if "key" in entry and not _text(entry.get("key")):
            problems.add("", _("entry.key names an event property (a cart id, say)."))
        _check_where(entry.get("where"), "", problems)
    elif kind == "segment_entered":
        slug = entry.get("segment")
        if not _text(slug):
            problems.add("", _("A segment entry names its segment."))
        elif refs.segment and not refs.segment(slug):
            problems.add("", _("Unknown segment %(s)r.") % {"s": slug})
    elif kind == "date_attribute":
        if not _text(entry.get("attribute")):
            problems.add("", _("A date entry names the date attribute."))
        offset = entry.get("offset_days", 0)
        if not isinstance(offset, int) or isinstance(offset, bool):
            problems.add("", _("offset_days must be a whole number of days."))
        if parse_time_of_day(entry.get("at", "09:00")) is None:
            problems.add("", _('entry.at must be a time of day such as "09:00".'))


def _check_layout(layout, problems: Problems) -> None:
    """The canvas's positions ({"<node id>": [x, y], "entry": [x, y]}): the engine ignores
    them, but they must be numbers so that every canvas can draw what it saved."""
    if layout is None:
        return
    if not isinstance(layout, dict) or not all(
        isinstance(key, str)
        and isinstance(point, list)
        and len(point) == 2
        and all(_number(n) for n in point)
        for key, point in layout.items()
    ):
        problems.add("", _('layout must be {"<node id>": [x, y], …} with numbers for x and y.'))


def _check_reentry(reentry, problems: Problems) -> None:
    if reentry in ("never", "always"):
        return
    days = reentry.get("after_days") if isinstance(reentry, dict) else None
    if not isinstance(days, int | float) or isinstance(days, bool) or days <= 0:
        problems.add("", _('reentry must be "never", "always" or {"after_days": N}.'))


def _check_where(where, node: str, problems: Problems) -> None:
    if where is None:
        return
    if not isinstance(where, list) or not all(
        isinstance(f, dict) and _text(f.get("prop")) and _text(f.get("op")) for f in where
    ):
        problems.add(node, _('where must be a list of {"prop", "op", "value"} filters.'))


def _check_nodes(nodes: list, problems: Problems, refs: References) -> dict[str, dict]:
    by_id: dict[str, dict] = {}
    for index, node in enumerate(nodes):
        if not isinstance(node, dict) or not _text(node.get("id")):
            problems.add("", _("Node %(i)d has no id.") % {"i": index + 1})
            continue
        node_id = str(node["id"])
        if node_id in by_id:
            problems.add(node_id, _("Two nodes have this id."))
            continue
        by_id[node_id] = node
        kind = node.get("type")
        if kind not in NODE_BRANCHES:
            problems.add(node_id, _("Unknown node type %(t)r.") % {"t": kind})
            continue
        check = NODE_CHECKS.get(kind)
        if check:
            check(node_id, node, problems, refs)
    return by_id


def _check_send(node_id, node, problems, refs) -> None:
    channels = node.get("channels") or ([node["channel"]] if node.get("channel") else [])
    if not channels or not all(c in CHANNEL_TYPES for c in channels):
        message = _(
            "channel must be one of %(c)s (or channels, a list of them in order of preference)."
        ) % {"c": ", ".join(sorted(CHANNEL_TYPES))}
        problems.add(node_id, message)
        return
    template = node.get("template")
    templates = template if isinstance(template, dict) else dict.fromkeys(channels, template)
    for channel in channels:
        slug = templates.get(channel)
        if not _text(slug):
            problems.add(node_id, _("Name the template for %(c)s.") % {"c": channel})
        elif refs.template and not refs.template(slug, channel):
            problems.add(node_id, _("Unknown %(c)s template %(s)r.") % {"c": channel, "s": slug})


def _check_wait(node_id, node, problems, refs) -> None:
    ways = [key for key in ("duration", "until_time", "until_event") if node.get(key)]
    if len(ways) != 1:
        problems.add(node_id, _("A wait has one of duration, until_time or until_event."))
        return
    if ways == ["duration"] and parse_duration(node["duration"]) is None:
        problems.add(node_id, _('duration must be ISO 8601, such as "P3D" or "PT2H".'))
    if ways == ["until_time"] and parse_time_of_day(node["until_time"]) is None:
        problems.add(node_id, _('until_time must be a time of day such as "09:00".'))
    if ways == ["until_event"]:
        if not _text(node["until_event"]):
            problems.add(node_id, _("until_event names an event."))
        if parse_duration(node.get("timeout")) is None:
            problems.add(node_id, _('A wait for an event needs a timeout, such as "P3D".'))
        _check_where(node.get("where"), node_id, problems)


def _check_condition(node_id, node, problems, refs) -> None:
    rule = node.get("rule")
    for problem in validate_rule(rule, segment_rule=refs.segment_rule, list_exists=refs.list):
        problems.add(node_id, problem)


def _check_random_split(node_id, node, problems, refs) -> None:
    weights = node.get("weights")
    if (
        not isinstance(weights, dict)
        or len(weights) < 2
        or not all(
            isinstance(w, int) and not isinstance(w, bool) and w > 0 for w in weights.values()
        )
    ):
        problems.add(node_id, _("weights must give two or more branches a positive whole number."))


def _check_split(node_id, node, problems, refs) -> None:
    branches = node.get("branches")
    if not isinstance(branches, list) or not branches:
        problems.add(node_id, _('A split has branches: [{"name", "rule"}, …], tried in order.'))
        return
    names = set()
    for branch in branches:
        name = branch.get("name") if isinstance(branch, dict) else None
        if not _text(name) or name == "else" or name in names:
            problems.add(node_id, _('Each branch has its own name (not "else").'))
            continue
        names.add(name)
        _check_condition(node_id, {"rule": branch.get("rule")}, problems, refs)


def _check_update_attribute(node_id, node, problems, refs) -> None:
    if not _text(node.get("attribute")):
        problems.add(node_id, _("Name the attribute to update."))
    if "value" not in node:
        problems.add(node_id, _("Give the value to set (null removes the attribute)."))


def _check_list_node(node_id, node, problems, refs) -> None:
    slug = node.get("list")
    if not _text(slug):
        problems.add(node_id, _("Name the list."))
    elif refs.list and not refs.list(slug):
        problems.add(node_id, _("Unknown list %(s)r.") % {"s": slug})


def _check_webhook(node_id, node, problems, refs) -> None:
    url = node.get("url")
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        problems.add(node_id, _("A webhook needs an http(s) URL."))


def _check_goal(node_id, node, problems, refs) -> None:
    if not _text(node.get("event")):
        problems.add(node_id, _("A goal names the event that reaches it."))
    _check_where(node.get("where"), node_id, problems)


NODE_CHECKS = {
    "send": _check_send,
    "wait": _check_wait,
    "condition": _check_condition,
    "random_split": _check_random_split,
    "split": _check_split,
    "update_attribute": _check_update_attribute,
    "add_to_list": _check_list_node,
    "remove_from_list": _check_list_node,
    "webhook": _check_webhook,
    "goal": _check_goal,
}


def _check_edges(edges: list, by_id: dict, problems: Problems) -> dict[str, list[tuple]]:
    """{node id: [(branch or None, target id), ...]} for the edges that make sense."""
    outgoing: dict[str, list[tuple]] = {node_id: [] for node_id in by_id}
    for index, edge in enumerate(edges):
        if not isinstance(edge, dict):
            problems.add("", _("Edge %(i)d must be an object.") % {"i": index + 1})
            continue
        source, target = edge.get("from"), edge.get("to")
        for end in (source, target):
            if end not in by_id:
                problems.add(
                    "", _("Edge %(i)d names an unknown node %(n)r.") % {"i": index + 1, "n": end}
                )
        if source in by_id and target in by_id:
            branch = edge.get("branch")
            outgoing[source].append((str(branch) if branch is not None else None, target))
    return outgoing


def _check_branches(by_id: dict, outgoing: dict, problems: Problems) -> None:
    for node_id, node in by_id.items():
        if node.get("type") not in NODE_BRANCHES:
            continue
        expected = branches_of(node)
        labels = [branch for branch, _target in outgoing[node_id]]
        if expected is None:
            if len(labels) > 1:
                problems.add(node_id, _("Only one edge may leave this node."))
            elif labels and labels[0] is not None:
                problems.add(node_id, _("This node's edge takes no branch label."))
            continue
        if node.get("type") == "exit":
            if labels:
                problems.add(node_id, _("No edge may leave an exit."))
            continue
        for label in expected:
            count = labels.count(label)
            if count == 0:
                problems.add(node_id, _("Missing the %(b)r branch.") % {"b": label})
            elif count > 1:
                problems.add(node_id, _("Two edges for the %(b)r branch.") % {"b": label})
        for label in set(labels) - set(expected):
            problems.add(node_id, _("Unknown branch %(b)r.") % {"b": label})


def _check_reachable(start: str, by_id: dict, outgoing: dict, problems: Problems) -> None:
    # Goals are reached by their event from anywhere, so they start walks of their own.
    roots = [start, *(node_id for node_id, node in by_id.items() if node.get("type") == "goal")]
    seen = set()
    stack = list(roots)
    while stack:
        node_id = stack.pop()
        if node_id in seen:
            continue
        seen.add(node_id)
        stack.extend(target for _branch, target in outgoing.get(node_id, []))
    for node_id in by_id:
        if node_id not in seen:
            problems.add(node_id, _("No path from the start reaches this node."))


def _check_cycles(by_id: dict, outgoing: dict, problems: Problems) -> None:
    """A loop must pass a wait, or a contact would spin in it forever."""
    waits = {node_id for node_id, node in by_id.items() if node.get("type") == "wait"}
    graph = {n: [t for _b, t in outgoing[n] if t not in waits] for n in by_id if n not in waits}
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    reported = set()

    def visit(node_id: str, path: list[str]) -> None:
        state[node_id] = 1
        path.append(node_id)
        for target in graph.get(node_id, []):
            if state.get(target) == 1:
                loop = path[path.index(target) :]
                if not reported & set(loop):
                    reported.update(loop)
                    problems.add(
                        target,
                        _("A loop with no wait in it: %(l)s.") % {"l": " → ".join([*loop, target])},
                    )
            elif target not in state:
                visit(target, path)
        path.pop()
        state[node_id] = 2

    for node_id in graph:
        if node_id not in state:
            visit(node_id, [])


def _number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _text(value) -> bool:
    return isinstance(value, str) and bool(value.strip())
