"""The steps editor's page as one form: the journey's settings, then each step (breadth-first
from the entry) with its node form and where each of its ways leads.

The graph being edited travels in a hidden field, so adding, removing and moving steps work
without JavaScript and without saving half-done work: only "Save" stores the draft (through
services.update_draft, which refuses a graph with problems and lists them by step)."""

import json
from dataclasses import dataclass, field

from django import forms
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from apps.journeys.forms.fields import Vocabulary
from apps.journeys.forms.journey import JourneySettingsForm, settings_of
from apps.journeys.forms.nodes import NodeForm, node_form
from apps.journeys.graph import MAX_NODES
from apps.journeys.services import journeys as services
from apps.journeys.services import steps
from apps.journeys.services.builder import NODE_TYPES, describe_node, node_type_label

SAVE = "save"
SETTINGS_PREFIX = "journey"


def way_label(branch: str | None) -> str:
    labels = {
        None: _("Then go to"),
        "yes": _("If yes, go to"),
        "no": _("If no, go to"),
        "event": _("When the event happens, go to"),
        "timeout": _("If it does not happen in time, go to"),
        "else": _("Everyone else goes to"),
    }
    if branch in labels:
        return labels[branch]
    return _("Path “%(name)s” goes to") % {"name": branch}


class WaysForm(forms.Form):
    """Where each of a step's ways leads, and the type of a step to add on each."""

    def __init__(self, data=None, *, ways: list[steps.Way], targets: list, **kwargs):
        super().__init__(data, **kwargs)
        self.ways = ways
        add_choices = [(t.type, t.label) for t in NODE_TYPES]
        self.rows = []
        for index, way in enumerate(ways):
            self.fields[f"next_{index}"] = forms.ChoiceField(
                label=way_label(way.branch),
                choices=targets,
                required=False,
                initial=way.target or "",
            )
            self.fields[f"add_{index}"] = forms.ChoiceField(
                label=_("Type of step to add on this path"),
                choices=add_choices,
                required=False,
                initial="send",
            )
            self.rows.append((index, way, self[f"next_{index}"], self[f"add_{index}"]))

    def chosen(self) -> list[steps.Way]:
        return [
            steps.Way(way.branch, self.cleaned_data.get(f"next_{index}") or None)
            for index, way in enumerate(self.ways)
        ]


class AddAtStartForm(forms.Form):
    add_start = forms.ChoiceField(
        label=gettext_lazy("Type of step to add at the beginning"),
        choices=[(t.type, t.label) for t in NODE_TYPES],
        required=False,
        initial="send",
    )


@dataclass
class Step:
    number: int
    node: dict
    form: NodeForm | None
    ways: WaysForm
    move_before: str | None  # the step this one can swap with going up ("3. Wait: 2 days")
    move_after: str | None
    problems: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        return str(self.node.get("id"))

    @property
    def label(self) -> str:
        return node_type_label(self.node.get("type"))

    @property
    def summary(self) -> str:
        return describe_node(self.node)

    @property
    def prefix(self) -> str:
        return f"s{self.number}"


class StepsEditor:
    def __init__(self, journey, vocabulary: Vocabulary, data=None):
        self.journey = journey
        self.vocabulary = vocabulary
        self.data = data
        self.message = ""
        self.focus = ""  # the id of a step just added, linked from the message
        self.journey_problems: list[str] = []
        graph = _posted_graph(data) if data is not None else None
        self._build(graph if graph is not None else steps.copy_graph(journey.draft), data)

    def _build(self, graph: dict, data) -> None:
        self.graph = graph
        self.nodes = steps.nodes_by_id(graph)
        order = steps.ordered_ids(graph)
        numbers = {node_id: index for index, node_id in enumerate(order, 1)}
        targets = [("", _("Nowhere: the journey ends here"))] + [
            (node_id, f"{numbers[node_id]}. {self._title(self.nodes[node_id])}")
            for node_id in order
        ]
        self.settings_form = JourneySettingsForm(
            data, settings=settings_of(graph), vocabulary=self.vocabulary, prefix=SETTINGS_PREFIX
        )
        self.start_form = AddAtStartForm(prefix=SETTINGS_PREFIX)
        self.steps = []
        for node_id in order:
            node = self.nodes[node_id]
            number = numbers[node_id]
            ways = steps.ways_of(graph, node)
            self.steps.append(
                Step(
                    number=number,
                    node=node,
                    form=node_form(node, self.vocabulary, data, prefix=f"s{number}"),
                    ways=WaysForm(data, ways=ways, targets=targets, prefix=f"s{number}"),
                    move_before=self._numbered_title(steps.movable_before(graph, node_id), numbers),
                    move_after=self._numbered_title(steps.movable_after(graph, node_id), numbers),
                )
            )
        self.bound = data is not None

    def _numbered_title(self, node_id: str | None, numbers: dict) -> str | None:
        if node_id is None:
            return None
        return f"{numbers[node_id]}. {self._title(self.nodes[node_id])}"

    def _title(self, node: dict) -> str:
        summary = describe_node(node)
        label = node_type_label(node.get("type"))
        return f"{label}: {summary}" if summary else label

    def step(self, node_id: str | None) -> Step | None:
        return next((s for s in self.steps if s.id == node_id), None)

    @property
    def graph_json(self) -> str:
        return json.dumps(self.graph, ensure_ascii=False)

    @property
    def unsaved(self) -> bool:
        return self.graph != self.journey.draft

    def is_valid(self) -> bool:
        forms_ok = self.settings_form.is_valid()
        for step in self.steps:
            forms_ok &= step.ways.is_valid()
            if step.form is not None:
                forms_ok &= step.form.is_valid()
        return bool(forms_ok)

    def edited_graph(self) -> dict:
        """The graph with every valid form's changes (a form with errors keeps its node)."""
        graph = steps.copy_graph(self.graph)
        if self.settings_form.is_valid():
            graph.update(self.settings_form.settings)
            if "exit_when" not in self.settings_form.settings:
                graph.pop("exit_when", None)
        nodes = []
        for step in self.steps:
            node = step.form.node if step.form is not None and step.form.is_valid() else None
            node = node or step.node
            nodes.append(node)
            ways = step.ways.chosen() if step.ways.is_valid() else step.ways.ways
            steps.set_ways(graph, step.id, steps.carry_ways(ways, node, graph))
        graph["nodes"] = nodes
        return graph

    # Handling a post -------------------------------------------------------------------

    def handle(self, action: str, user=None) -> bool:
        """Apply the posted action; answers whether the journey was saved."""
        valid = self.is_valid()
        if action == SAVE:
            if not valid:
                self.message = _("Nothing was saved: correct the marked fields.")
                return False
            graph = self.edited_graph()
            try:
                services.update_draft(self.journey, graph)
            except services.JourneyError as error:
                # Every form was valid: the page shows the graph as edited (its steps'
                # ways as they now are), unsaved, with each problem at its step.
                self._build(graph, None)
                self._show_problems(graph, error.problems)
                self.message = _("Nothing was saved: the journey has these problems.")
                return False
            return True
        if not valid:
            self.message = _("Correct the marked fields first, then change the steps.")
            return False
        graph = self.edited_graph()
        try:
            self.message = self._change(graph, action)
        except steps.StepError as error:
            self.message = str(error)
            return False
        self._build(graph, None)
        self._show_problems(graph)
        return False

    def _change(self, graph: dict, action: str) -> str:
        verb, _sep, where = action.partition(":")
        if verb == "add":
            if len(self.nodes) >= MAX_NODES:
                raise steps.StepError(_("A journey has at most %(n)d steps.") % {"n": MAX_NODES})
            if where == "start":
                kind = self.data.get(f"{SETTINGS_PREFIX}-add_start", "")
                after, branch = None, None
            else:
                number, _sep, way_index = where.partition(":")
                step, way = self._way(number, way_index)
                kind = self.data.get(f"{step.prefix}-add_{way_index}", "")
                after, branch = step.id, way.branch
            if kind not in {t.type for t in NODE_TYPES}:
                raise steps.StepError(_("Choose the type of step to add."))
            node = steps.add_step(graph, after, branch, kind)
            self.focus = node["id"]
            return _("A step was added: %(step)s. Set it up below, then save.") % {
                "step": node_type_label(kind)
            }
        step = self._numbered(where)
        if verb == "remove":
            steps.remove_step(graph, step.id)
            return _("The step %(step)s was removed. Save to keep the change.") % {
                "step": step.label
            }
        if verb == "up":
            steps.move_before(graph, step.id)
        elif verb == "down":
            following = steps.movable_after(graph, step.id)
            if following is None:
                raise steps.StepError(_("This step cannot move down."))
            steps.move_before(graph, following)
        else:
            raise steps.StepError(_("Unknown action."))
        return _("The step %(step)s was moved. Save to keep the change.") % {"step": step.label}

    def _numbered(self, number: str) -> Step:
        step = next((s for s in self.steps if str(s.number) == number), None)
        if step is None:
            raise steps.StepError(_("That step is no longer in the journey."))
        return step

    def _way(self, number: str, index: str) -> tuple[Step, steps.Way]:
        step = self._numbered(number)
        if not index.isdigit() or int(index) >= len(step.ways.ways):
            raise steps.StepError(_("That path is no longer in the journey."))
        return step, step.ways.ways[int(index)]

    def show_problems(self) -> None:
        """The problems of the graph as it stands, each at its step (shown on arrival)."""
        self._show_problems(self.graph)

    def _show_problems(self, graph: dict, fallback: list[str] | None = None) -> None:
        by_node = services.check(self.journey.workspace, graph).by_node
        if not by_node and fallback:
            by_node = {"": list(fallback)}
        self.journey_problems = by_node.get("", [])
        for step in self.steps:
            step.problems = by_node.get(step.id, [])


def _posted_graph(data) -> dict | None:
    try:
        graph = json.loads(data.get("graph") or "")
    except (TypeError, ValueError):
        return None
    if not isinstance(graph, dict) or not isinstance(graph.get("nodes", []), list):
        return None
    return graph
