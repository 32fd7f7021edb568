"""A journey's report for a period: its funnel step by step, conversions over time, the
lift over its holdout group and the results of its splits, from the rollups."""

import math
from collections import defaultdict
from dataclasses import dataclass

from django.db.models import Sum
from django.utils.translation import gettext_lazy as _

from apps.reporting.models import JourneyDaily
from apps.reporting.services.overview import Period

# What a contact's arrival at a step records, once per visit (the start also records
# "entered", the journey's own entry).
ARRIVALS = {"sent", "not_sent", "holdout", "waiting", "branched", "done", "failed", "converted"}
SIGNIFICANCE_LEVEL = 0.05
Z_95 = 1.959964
# Below this many expected contacts in a cell, the chi-squared approximation is not trusted.
MIN_EXPECTED = 5


@dataclass
class Counts:
    by_node: dict  # node id -> {outcome: count}
    by_day: dict  # day -> {"entered": n, "converted": n}
    groups: dict  # holdout (bool) -> {"entered": n, "converted": n}
    branches: dict  # node id -> branch -> {"took": n, "converted": n}


def _counts(journey, period: Period) -> Counts:
    rows = (
        JourneyDaily.objects.filter(
            workspace=journey.workspace,
            journey_id=journey.pk,
            day__gte=period.start,
            day__lte=period.end,
        )
        .values("day", "node_id", "outcome", "branch", "holdout")
        .annotate(n=Sum("count"))
    )
    by_node: dict = defaultdict(lambda: defaultdict(int))
    by_day: dict = defaultdict(lambda: {"entered": 0, "converted": 0})
    groups = {False: {"entered": 0, "converted": 0}, True: {"entered": 0, "converted": 0}}
    branches: dict = defaultdict(lambda: defaultdict(lambda: {"took": 0, "converted": 0}))
    for row in rows:
        outcome, n = row["outcome"], row["n"]
        if outcome == "split_converted":
            branches[row["node_id"]][row["branch"]]["converted"] += n
            continue
        by_node[row["node_id"]][outcome] += n
        if outcome == "branched":
            branches[row["node_id"]][row["branch"]]["took"] += n
        if outcome in ("entered", "converted"):
            by_day[row["day"]][outcome] += n
            groups[row["holdout"]][outcome] += n
    return Counts(by_node, by_day, groups, branches)


def journey_report(journey, graph: dict, period: Period) -> dict:
    counts = _counts(journey, period)
    return {
        "funnel": funnel(graph, counts),
        "over_time": [
            {"day": day.isoformat(), **counts.by_day.get(day, {"entered": 0, "converted": 0})}
            for day in period.dates()
        ],
        "holdout": holdout_lift(counts.groups, graph.get("holdout_percent", 0)),
        "splits": split_results(graph, counts),
    }


def _ordered_nodes(graph: dict) -> list[dict]:
    """Breadth-first from the start, then any node not reached that way."""
    nodes = {node["id"]: node for node in graph.get("nodes", [])}
    following = defaultdict(list)
    for edge in graph.get("edges", []):
        following[edge.get("from")].append(edge.get("to"))
    order, queue, seen = [], [graph.get("start")], set()
    while queue:
        node_id = queue.pop(0)
        if node_id in seen or node_id not in nodes:
            continue
        seen.add(node_id)
        order.append(nodes[node_id])
        queue.extend(following[node_id])
    return order + [node for node_id, node in nodes.items() if node_id not in seen]


def funnel(graph: dict, counts: Counts) -> list[dict]:
    """How many reached each step (a visit each), after how many entered."""
    start = graph.get("start")
    entered = counts.by_node.get(start, {}).get("entered", 0)
    steps = [{"node": "", "type": "entry", "label": str(_("Entered")), "reached": entered}]
    for node in _ordered_nodes(graph):
        outcomes = counts.by_node.get(node["id"], {})
        if node.get("type") == "exit":
            reached = outcomes.get("exited", 0) + outcomes.get("completed", 0)
        else:
            reached = sum(n for outcome, n in outcomes.items() if outcome in ARRIVALS)
        steps.append(
            {
                "node": node["id"],
                "type": node.get("type", ""),
                "label": node["id"],
                "reached": reached,
                "share": reached / entered if entered else None,
                "outcomes": dict(outcomes),
            }
        )
    return steps


def holdout_lift(groups: dict, holdout_percent) -> dict | None:
    """Conversion in the journey against its holdout group (who entered but received
    nothing): the difference with a 95 % confidence interval (normal approximation), and
    the conversions the messages added."""
    treated, held = groups[False], groups[True]
    if not holdout_percent and not held["entered"]:
        return None
    result = {
        "treated": treated,
        "holdout": held,
        "treated_rate": _rate(treated),
        "holdout_rate": _rate(held),
        "difference": None,
        "interval": None,
        "relative_lift": None,
        "incremental_conversions": None,
        "significant": False,
        "test": str(_("Difference of two proportions, 95 % normal-approximation interval")),
    }
    if not treated["entered"] or not held["entered"]:
        return result
    p1, p0 = result["treated_rate"], result["holdout_rate"]
    difference = p1 - p0
    error = math.sqrt(p1 * (1 - p1) / treated["entered"] + p0 * (1 - p0) / held["entered"])
    interval = (difference - Z_95 * error, difference + Z_95 * error)
    result |= {
        "difference": difference,
        "interval": interval,
        "relative_lift": difference / p0 if p0 else None,
        "incremental_conversions": difference * treated["entered"],
        "incremental_interval": (interval[0] * treated["entered"],
                                 interval[1] * treated["entered"]),
        "significant": error > 0 and (interval[0] > 0 or interval[1] < 0),
        # The same in percentage points, as the page says it.
        "difference_points": round(difference * 100, 1),
        "interval_points": (round(interval[0] * 100, 1), round(interval[1] * 100, 1)),
    }  # fmt: skip
    return result


def _rate(group: dict) -> float | None:
    return group["converted"] / group["entered"] if group["entered"] else None


def split_results(graph: dict, counts: Counts) -> list[dict]:
    """Each random split's branches: how many took it and reached a goal after, and
    Pearson's chi-squared test of whether the branches convert differently."""
    results = []
    for node in _ordered_nodes(graph):
        if node.get("type") != "random_split":
            continue
        taken = counts.branches.get(node["id"], {})
        labels = [str(label) for label in (node.get("weights") or {})]
        branches = [
            {
                "branch": label,
                "took": taken.get(label, {}).get("took", 0),
                "converted": taken.get(label, {}).get("converted", 0),
            }
            for label in labels
        ]
        for branch in branches:
            branch["rate"] = branch["converted"] / branch["took"] if branch["took"] else None
        statistic, p_value, trusted = chi_squared(
            [(b["converted"], b["took"] - b["converted"]) for b in branches]
        )
        results.append(
            {
                "node": node["id"],
                "branches": branches,
                "test": str(_("Pearson's chi-squared test")),
                "statistic": statistic,
                "p_value": p_value,
                "significant": trusted and p_value is not None
                and p_value < SIGNIFICANCE_LEVEL,
                "verdict": _verdict(trusted, p_value),
            }
        )  # fmt: skip
    return results


def _verdict(trusted: bool, p_value) -> str:
    if p_value is None or not trusted:
        return str(_("Not yet significant: too few contacts to tell."))
    shown = "p < 0.001" if p_value < 0.001 else f"p = {p_value:.3f}"
    if p_value < SIGNIFICANCE_LEVEL:
        return str(_("Significant: the branches convert differently (%(p)s).") % {"p": shown})
    return str(_("Not yet significant (%(p)s).") % {"p": shown})


def chi_squared(rows: list[tuple[int, int]]) -> tuple[float | None, float | None, bool]:
    """(statistic, p-value, trusted) of Pearson's test of independence on a k x 2 table of
    (converted, not converted) per branch; trusted when every expected count is at least
    MIN_EXPECTED."""
    rows = [row for row in rows if sum(row) > 0]
    total = sum(sum(row) for row in rows)
    columns = [sum(row[i] for row in rows) for i in (0, 1)]
    if len(rows) < 2 or not all(columns):
        return None, None, False
    statistic, trusted = 0.0, True
    for row in rows:
        for i in (0, 1):
            expected = sum(row) * columns[i] / total
            trusted = trusted and expected >= MIN_EXPECTED
            statistic += (row[i] - expected) ** 2 / expected
    return statistic, chi_squared_survival(statistic, len(rows) - 1), trusted


def chi_squared_survival(x: float, degrees: int) -> float:
    """P(X >= x) for the chi-squared distribution with whole `degrees` (closed forms)."""
    if x <= 0:
        return 1.0
    half = x / 2
    if degrees % 2 == 0:
        term, total = 1.0, 1.0
        for i in range(1, degrees // 2):
            term *= half / i
            total += term
        return min(1.0, math.exp(-half) * total)
    root = math.sqrt(half)
    total, term = math.erfc(root), math.sqrt(x) * math.exp(-half) * math.sqrt(2 / math.pi)
    for i in range(1, (degrees + 1) // 2):
        total += term
        term *= x / (2 * i + 1)
    return min(1.0, total)
