/**
 * The journey builder canvas: draws a journey graph (the JSON contract of DESIGN.md) with
 * the vendored Drawflow, edits it, and saves it through the journeys API.
 *
 * The page (apps/journeys/templates/journeys/journey_builder.html) gives everything in
 * #journey-data; see docs/journey-builder.md for how the canvas maps to the contract.
 * This module keeps its own model of the graph (`state`) and treats Drawflow as the view:
 * every change goes to the model first, is recorded for undo, and the canvas is redrawn
 * from it. Drawflow's own connection dragging, node dragging, pan and zoom are used as
 * they are; its delete key and context menu are replaced by ours.
 *
 * Plain script, no build step. Words come from the page (node type labels) or through
 * gettext (Django's JavaScript catalog when the page loads it).
 */
(function () {
  "use strict";

  const dataElement = document.getElementById("journey-data");
  const canvasElement = document.getElementById("journey-canvas");
  if (!dataElement || !canvasElement || typeof window.Drawflow === "undefined") return;

  const DATA = JSON.parse(dataElement.textContent);
  const URLS = DATA.urls || {};
  const READONLY = Boolean(DATA.readonly);
  const LIVE = DATA.status === "live" || DATA.status === "paused";
  const ENTRY = "entry"; // the Entry node's key in the layout (never a node id we generate)
  const COLUMN = 220; // auto-layout: px between layers
  const ROW = 120; // auto-layout: px between nodes of a layer
  const HISTORY_LIMIT = 100;
  const FIT_MIN_ZOOM = 0.55; // below this the words on nodes are too small to read
  const POLL_MS = 5000;
  const STORAGE_KEY = `orchestra.journey-builder.${DATA.id}`;
  const NUMBER = new Intl.NumberFormat(document.documentElement.lang || undefined);
  const PERCENT = new Intl.NumberFormat(document.documentElement.lang || undefined, {
    style: "percent",
    maximumFractionDigits: 1,
  });

  // Words ------------------------------------------------------------------------------

  function gettext(text) {
    if (DATA.labels && DATA.labels[text]) return DATA.labels[text];
    return typeof window.gettext === "function" ? window.gettext(text) : text;
  }

  function format(template, values) {
    return template.replace(/%\((\w+)\)s/g, (_match, name) => String(values[name] ?? ""));
  }

  function escapeHtml(value) {
    return String(value ?? "")
      .replace(/&/g, "&amp;")
      .replace(/</g, "&lt;")
      .replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;");
  }

  const ICONS = {
    entry: "▶",
    send: "✉",
    wait: "◔",
    condition: "◇",
    random_split: "⇉",
    split: "⋔",
    update_attribute: "✎",
    add_to_list: "+",
    remove_from_list: "−",
    webhook: "⇄",
    goal: "★",
    exit: "■",
  };
  const NODE_TYPES = new Map((DATA.node_types || []).map((type) => [type.type, type]));

  function typeLabel(type) {
    return (NODE_TYPES.get(type) && NODE_TYPES.get(type).label) || type;
  }

  // The graph's rules the canvas needs (mirrors apps/journeys/graph.py:branches_of) -----

  /** The branch labels of a node's outputs; null: one unlabelled output; []: none. */
  function branchesOf(node) {
    switch (node.type) {
      case "wait":
        return node.until_event ? ["event", "timeout"] : null;
      case "random_split":
        return Object.keys(node.weights || {}).map(String);
      case "split":
        return [
          ...(node.branches || []).filter((b) => b && typeof b === "object").map((b) => String(b.name)),
          "else",
        ];
      case "condition":
        return ["yes", "no"];
      case "exit":
        return [];
      default: {
        const known = NODE_TYPES.get(node.type);
        return known && Array.isArray(known.branches) && known.branches.length ? [...known.branches] : null;
      }
    }
  }

  function outputCount(branches) {
    return branches === null ? 1 : branches.length;
  }

  // What a node does, in a line --------------------------------------------------------

  function humanDuration(text) {
    const match = /^P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$/.exec(text || "");
    if (!match) return text || "";
    const units = [
      gettext("%(n)s w"),
      gettext("%(n)s d"),
      gettext("%(n)s h"),
      gettext("%(n)s min"),
      gettext("%(n)s s"),
    ];
    const parts = match
      .slice(1)
      .map((value, index) => (value && Number(value) ? format(units[index], { n: value }) : null))
      .filter(Boolean);
    return parts.join(" ") || text;
  }

  function describeRule(rule) {
    if (!rule || typeof rule !== "object") return "";
    if (Array.isArray(rule.all) || Array.isArray(rule.any)) {
      const items = rule.all || rule.any;
      if (items.length === 0) return gettext("everyone");
      if (items.length === 1) return describeRule(items[0]);
      return format(gettext("%(n)s conditions"), { n: items.length });
    }
    if (rule.not) return format(gettext("not %(rule)s"), { rule: describeRule(rule.not) });
    if (rule.segment) return format(gettext("in segment %(s)s"), { s: rule.segment });
    if (rule.list) return format(gettext("on list %(s)s"), { s: rule.list });
    if (rule.event) return format(gettext("did %(s)s"), { s: rule.event });
    if (rule.attr) return `${rule.attr} ${rule.op || ""} ${rule.value ?? ""}`.trim();
    if (rule.consent) return format(gettext("consents to %(s)s"), { s: rule.consent });
    return "";
  }

  function summaryOf(node) {
    switch (node.type) {
      case "send": {
        const channels = node.channels || (node.channel ? [node.channel] : []);
        const template = node.template;
        const slugs =
          template && typeof template === "object"
            ? channels.map((c) => template[c]).filter(Boolean)
            : template
              ? [template]
              : [];
        return (
          [channels.join(" → "), slugs.join(", ")].filter(Boolean).join(" · ") || gettext("Choose a template")
        );
      }
      case "wait":
        if (node.until_event) {
          return format(gettext("until %(event)s, at most %(timeout)s"), {
            event: node.until_event,
            timeout: humanDuration(node.timeout),
          });
        }
        if (node.until_time) return format(gettext("until %(time)s"), { time: node.until_time });
        if (node.duration) return format(gettext("for %(d)s"), { d: humanDuration(node.duration) });
        return gettext("Set how long");
      case "condition":
        return describeRule(node.rule) || gettext("Set the condition");
      case "random_split":
        return Object.entries(node.weights || {})
          .map(([name, weight]) => `${name} ${weight}`)
          .join(" · ");
      case "split":
        return (node.branches || []).map((b) => (b && b.name) || "?").join(" · ");
      case "update_attribute":
        return node.attribute
          ? `${node.attribute} = ${JSON.stringify(node.value ?? null)}`
          : gettext("Set the attribute");
      case "add_to_list":
      case "remove_from_list":
        return node.list || gettext("Choose a list");
      case "webhook":
        try {
          return new URL(node.url).host;
        } catch (_error) {
          return gettext("Set the URL");
        }
      case "goal":
        return node.event
          ? format(gettext("when %(event)s happens"), { event: node.event })
          : gettext("Name the event");
      default:
        return "";
    }
  }

  function summaryOfEntry(entry) {
    entry = entry || {};
    switch (entry.type) {
      case "event":
        return format(gettext("when %(event)s happens"), { event: entry.event || "?" });
      case "segment_entered":
        return format(gettext("on entering segment %(s)s"), { s: entry.segment || "?" });
      case "date_attribute": {
        const offset = Number(entry.offset_days || 0);
        const when =
          offset === 0
            ? gettext("on the day")
            : offset < 0
              ? format(gettext("%(n)s days before"), { n: -offset })
              : format(gettext("%(n)s days after"), { n: offset });
        return `${entry.attribute || "?"} · ${when} · ${entry.at || "09:00"}`;
      }
      case "api":
        return gettext("enrolled through the API");
      default:
        return gettext("Choose how contacts enter");
    }
  }

  // The model --------------------------------------------------------------------------

  const SETTING_KEYS = ["name", "entry", "reentry", "exit_when", "holdout_percent", "priority"];
  const GRAPH_KEYS = new Set([...SETTING_KEYS, "start", "nodes", "edges", "layout"]);

  function clone(value) {
    return value === undefined ? undefined : JSON.parse(JSON.stringify(value));
  }

  function stateFromGraph(graph) {
    graph = graph || {};
    const settings = {
      name: graph.name ?? DATA.name ?? "",
      entry: graph.entry ?? { type: "api" },
      reentry: graph.reentry ?? "never",
      exit_when: graph.exit_when ?? null,
      holdout_percent: graph.holdout_percent ?? 0,
      priority: graph.priority ?? 0,
    };
    const extras = {};
    for (const [key, value] of Object.entries(graph)) if (!GRAPH_KEYS.has(key)) extras[key] = value;
    const nodes = (Array.isArray(graph.nodes) ? graph.nodes : []).filter(
      (n) => n && typeof n === "object" && n.id,
    );
    const ids = new Set(nodes.map((n) => String(n.id)));
    const edges = (Array.isArray(graph.edges) ? graph.edges : [])
      .filter((e) => e && ids.has(String(e.from)) && ids.has(String(e.to)))
      .map((e) => {
        const edge = { from: String(e.from), to: String(e.to) };
        if (e.branch !== undefined && e.branch !== null) edge.branch = String(e.branch);
        return edge;
      });
    const layout = {};
    if (graph.layout && typeof graph.layout === "object") {
      for (const [key, point] of Object.entries(graph.layout)) {
        if (Array.isArray(point) && point.length === 2 && point.every(Number.isFinite))
          layout[key] = [...point];
      }
    }
    return {
      settings,
      extras,
      nodes: clone(nodes),
      edges,
      start: graph.start && ids.has(String(graph.start)) ? String(graph.start) : null,
      layout,
    };
  }

  let state = stateFromGraph(DATA.graph);

  function nodeById(id) {
    return state.nodes.find((node) => node.id === id) || null;
  }

  /** The graph to save: the JSON contract, with the canvas positions as layout. */
  function buildGraph() {
    const settings = state.settings;
    const graph = {
      ...clone(state.extras),
      name: settings.name,
      entry: clone(settings.entry),
      reentry: clone(settings.reentry),
    };
    if (settings.exit_when) graph.exit_when = clone(settings.exit_when);
    graph.holdout_percent = settings.holdout_percent ?? 0;
    graph.priority = settings.priority ?? 0;
    graph.start = state.start;
    graph.nodes = clone(state.nodes);
    graph.edges = state.edges.map((edge) => {
      const source = nodeById(edge.from);
      const branches = source ? branchesOf(source) : null;
      const out = { from: edge.from, to: edge.to };
      if (branches && branches.length && edge.branch !== undefined) out.branch = edge.branch;
      return out;
    });
    graph.layout = {};
    for (const [key, [x, y]] of Object.entries(state.layout)) {
      if (key === ENTRY || nodeById(key)) graph.layout[key] = [Math.round(x), Math.round(y)];
    }
    return graph;
  }

  function newNodeId(type) {
    const taken = new Set(state.nodes.map((node) => node.id));
    let n = state.nodes.length + 1;
    while (taken.has(`${type}_${n}`)) n += 1;
    return `${type}_${n}`;
  }

  function newNode(type) {
    const known = NODE_TYPES.get(type);
    return { id: newNodeId(type), type, ...clone((known && known.defaults) || {}) };
  }

  /** Edges of `from` that leave through `branch` (undefined: the unlabelled output). */
  function sameOutput(edge, from, branch) {
    return edge.from === from && (edge.branch ?? null) === (branch ?? null);
  }

  function connect(from, to, branch) {
    if (from === ENTRY) {
      state.start = to;
      return;
    }
    state.edges = state.edges.filter((edge) => !sameOutput(edge, from, branch));
    const edge = { from, to };
    if (branch !== undefined && branch !== null) edge.branch = branch;
    state.edges.push(edge);
  }

  /** After a node's branches changed: keep each edge on its branch when it still exists;
   * an edge whose branch is gone moves to a free output ("timeout" first) or is dropped. */
  function fitEdgesToBranches(node) {
    const branches = branchesOf(node);
    const mine = state.edges.filter((edge) => edge.from === node.id);
    const others = state.edges.filter((edge) => edge.from !== node.id);
    const kept = [];
    if (branches === null) {
      const first = mine[0];
      if (first) kept.push({ from: node.id, to: first.to });
    } else {
      const free = [...branches];
      const orphans = [];
      for (const edge of mine) {
        const index = edge.branch === undefined ? -1 : free.indexOf(edge.branch);
        if (index >= 0) {
          free.splice(index, 1);
          kept.push(edge);
        } else {
          orphans.push(edge);
        }
      }
      for (const edge of orphans) {
        if (edge.branch !== undefined || free.length === 0) continue; // a removed branch: its edge goes
        const target = free.includes("timeout") ? "timeout" : free[0];
        free.splice(free.indexOf(target), 1);
        kept.push({ from: node.id, to: edge.to, branch: target });
      }
    }
    state.edges = [...others, ...kept];
  }

  // History (undo / redo) and the unsaved copy -------------------------------------------

  let history = [];
  let historyIndex = -1;
  let savedGraph = JSON.stringify(buildGraph());

  function snapshot() {
    return JSON.stringify(state);
  }

  function record() {
    const current = snapshot();
    if (history[historyIndex] === current) return;
    history = history.slice(0, historyIndex + 1);
    history.push(current);
    if (history.length > HISTORY_LIMIT) history.shift();
    historyIndex = history.length - 1;
  }

  function isDirty() {
    return !READONLY && JSON.stringify(buildGraph()) !== savedGraph;
  }

  /** Every edit ends here: recorded for undo, kept in localStorage, redrawn. */
  function changed({ redraw = true } = {}) {
    record();
    clearPath();
    clearForecast();
    keepUnsavedCopy();
    if (redraw) render();
    updateToolbar();
  }

  function restore(serialized) {
    state = JSON.parse(serialized);
    for (const id of [...selection]) if (id !== ENTRY && !nodeById(id)) selection.delete(id);
    clearPath();
    clearForecast();
    keepUnsavedCopy();
    render();
    updateToolbar();
  }

  function undo() {
    if (historyIndex > 0) restore(history[--historyIndex]);
  }

  function redo() {
    if (historyIndex < history.length - 1) restore(history[++historyIndex]);
  }

  function keepUnsavedCopy() {
    if (READONLY) return;
    try {
      if (isDirty()) {
        localStorage.setItem(
          STORAGE_KEY,
          JSON.stringify({ graph: buildGraph(), base: savedGraph, at: Date.now() }),
        );
      } else {
        localStorage.removeItem(STORAGE_KEY);
      }
    } catch (_error) {
      // Storage full or refused (private mode): the warning before leaving still protects.
    }
  }

  function offerUnsavedCopy() {
    if (READONLY) return;
    let copy = null;
    try {
      copy = JSON.parse(localStorage.getItem(STORAGE_KEY) || "null");
    } catch (_error) {
      copy = null;
    }
    if (!copy || !copy.graph || JSON.stringify(copy.graph) === savedGraph) return;
    const when = new Date(copy.at || Date.now()).toLocaleString(document.documentElement.lang || undefined);
    showMessage(
      format(gettext("This browser kept changes you did not save (%(when)s)."), { when }),
      "warning",
      [],
      [
        {
          label: gettext("Restore them"),
          action: () => {
            state = stateFromGraph(copy.graph);
            changed();
            fitView();
            showMessage(gettext("Your unsaved changes are back. Save to keep them."), "info");
          },
        },
        {
          label: gettext("Discard them"),
          action: () => {
            localStorage.removeItem(STORAGE_KEY);
            showMessage("", "info");
          },
        },
      ],
    );
  }

  // Messages -----------------------------------------------------------------------------

  const messageElement = document.getElementById("journey-message");
  const MESSAGE_FADES_MS = 5000; // news (saved, added) goes; problems and questions stay
  let messageTimer = null;

  function showMessage(text, kind = "info", items = [], actions = []) {
    if (!messageElement) return;
    clearTimeout(messageTimer);
    messageElement.replaceChildren();
    messageElement.dataset.kind = kind;
    messageElement.classList.toggle("has-problems", kind === "error" && items.length > 0);
    if (!text && !items.length) return;
    // The page's region may be a <p>: the words go in a span, so any element fits around them.
    const words = document.createElement("span");
    words.className = `jb-message-text jb-message-${kind}`;
    words.textContent = text;
    messageElement.append(words);
    if (items.length) {
      const list = document.createElement("ul");
      list.className = "journey-problems";
      for (const item of items) {
        const li = document.createElement("li");
        li.textContent = item;
        list.append(li);
      }
      messageElement.append(list);
    }
    for (const { label, action } of actions) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "outline small";
      button.textContent = label;
      button.addEventListener("click", action);
      messageElement.append(button, " ");
    }
    const close = document.createElement("button");
    close.type = "button";
    close.className = "jb-message-close";
    close.textContent = "×";
    close.setAttribute("aria-label", gettext("Close the message"));
    close.addEventListener("click", () => showMessage(""));
    messageElement.append(close);
    if ((kind === "info" || kind === "success") && !actions.length) {
      messageTimer = setTimeout(() => showMessage(""), MESSAGE_FADES_MS);
    }
  }

  // Drawflow -----------------------------------------------------------------------------

  const editor = new window.Drawflow(canvasElement);
  editor.force_first_input = true; // dropping an edge anywhere on a node connects it
  editor.curvature = 0.4;
  editor.zoom_min = 0.3;
  editor.zoom_max = 2;
  editor.editor_mode = READONLY ? "view" : "edit";
  editor.key = () => {}; // our shortcuts handle Delete (Drawflow's would skip our model)
  editor.contextmenu = () => {}; // nor its right-click delete button
  editor.start();
  const precanvas = editor.precanvas;

  let rendering = false;
  const dfIdOf = new Map(); // node id (or ENTRY) -> Drawflow id
  const nodeIdOf = new Map(); // Drawflow id (string) -> node id (or ENTRY)

  const drawConnections = editor.updateConnectionNodes.bind(editor);
  editor.updateConnectionNodes = (elementId) => {
    drawConnections(elementId);
    if (!rendering) placeEdgeLabels(elementId);
  };

  function elementOf(id) {
    const dfId = dfIdOf.get(id);
    return dfId === undefined ? null : document.getElementById(`node-${dfId}`);
  }

  function position(id) {
    const point = state.layout[id];
    return point ? { x: point[0], y: point[1] } : null;
  }

  function nodeHtml(node, diffClass) {
    const label = typeLabel(node.type);
    const summary = summaryOf(node);
    const diffNote = diffClass
      ? `<span class="jb-diff-note">${escapeHtml(DIFF_LABELS[diffClass] || "")}</span>`
      : "";
    return `
      <div class="jb-node-body">
        <div class="jb-node-title"><span class="jb-icon" aria-hidden="true">${ICONS[node.type] || "•"}</span>
          <span class="jb-type">${escapeHtml(label)}</span>${diffNote}</div>
        <div class="jb-summary" title="${escapeHtml(summary)}">${escapeHtml(summary)}</div>
        <div class="jb-node-id">${escapeHtml(node.id)}</div>
        <div class="jb-stats" hidden></div>
        <div class="jb-forecast" hidden></div>
        <ul class="jb-problems" hidden></ul>
      </div>`;
  }

  function entryHtml() {
    const summary = summaryOfEntry(state.settings.entry);
    return `
      <div class="jb-node-body">
        <div class="jb-node-title"><span class="jb-icon" aria-hidden="true">${ICONS.entry}</span>
          <span class="jb-type">${escapeHtml(gettext("Entry"))}</span></div>
        <div class="jb-summary" title="${escapeHtml(summary)}">${escapeHtml(summary)}</div>
        <div class="jb-stats" hidden></div>
        <div class="jb-forecast" hidden></div>
      </div>`;
  }

  const DIFF_LABELS = {
    added: gettext("added"),
    changed: gettext("changed"),
    removed: gettext("removed"),
  };
  const DIFF = DATA.diff || null;

  function diffClassOf(id) {
    if (!DIFF) return null;
    if ((DIFF.added || []).includes(id)) return "added";
    if ((DIFF.changed || []).includes(id)) return "changed";
    return null;
  }

  function addDrawflowNode(id, name, inputs, outputs, point, classes, html, ariaLabel) {
    const dfId = editor.addNode(name, inputs, outputs, point.x, point.y, classes, {}, html);
    dfIdOf.set(id, dfId);
    nodeIdOf.set(String(dfId), id);
    const element = document.getElementById(`node-${dfId}`);
    element.dataset.nodeId = id;
    element.tabIndex = 0;
    // Not role="button": Pico styles those; a node is a group of facts about one step.
    element.setAttribute("role", "group");
    element.setAttribute("aria-roledescription", gettext("step"));
    element.setAttribute("aria-label", ariaLabel);
    return element;
  }

  /** Draw the whole model (after any change; a journey has at most a few hundred nodes). */
  function render() {
    rendering = true;
    const focusedId =
      document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.nodeId : null;
    editor.clear();
    editor.node_selected = null;
    editor.connection_selected = null;
    dfIdOf.clear();
    nodeIdOf.clear();
    if (!state.layout[ENTRY] || state.nodes.some((node) => !state.layout[node.id]))
      autoLayout({ onlyMissing: true });

    const entry = addDrawflowNode(
      ENTRY,
      "entry",
      0,
      1,
      position(ENTRY),
      "jb-entry",
      entryHtml(),
      format(gettext("Entry: %(s)s. Open the journey settings."), {
        s: summaryOfEntry(state.settings.entry),
      }),
    );
    entry.dataset.entry = "true";

    for (const node of state.nodes) {
      const branches = branchesOf(node);
      const diffClass = diffClassOf(node.id);
      const classes = ["jb-node", `jb-type-${node.type}`, diffClass ? `jb-diff-${diffClass}` : ""]
        .join(" ")
        .trim();
      const element = addDrawflowNode(
        node.id,
        node.type,
        1,
        outputCount(branches),
        position(node.id),
        classes,
        nodeHtml(node, diffClass),
        `${typeLabel(node.type)} ${node.id}: ${summaryOf(node)}`,
      );
      element.dataset.nodeType = node.type;
      element.querySelectorAll(".outputs .output").forEach((output, index) => {
        if (branches && branches[index] !== undefined) {
          output.dataset.branch = branches[index];
          output.title = branches[index];
        }
      });
    }

    for (const removed of (DIFF && DATA.removed_nodes) || []) {
      if (!removed || !removed.id || dfIdOf.has(removed.id)) continue;
      const point = removedPosition(removed.id);
      addDrawflowNode(
        removed.id,
        removed.type,
        1,
        0,
        point,
        `jb-node jb-type-${removed.type} jb-diff-removed`,
        nodeHtml(removed, "removed"),
        `${typeLabel(removed.type)} ${removed.id}: ${DIFF_LABELS.removed}`,
      );
    }

    if (state.start && dfIdOf.has(state.start)) {
      editor.addConnection(dfIdOf.get(ENTRY), dfIdOf.get(state.start), "output_1", "input_1");
    }
    for (const edge of state.edges) {
      const source = nodeById(edge.from);
      if (!source || !dfIdOf.has(edge.to)) continue;
      const output = outputClass(source, edge.branch);
      if (output) editor.addConnection(dfIdOf.get(edge.from), dfIdOf.get(edge.to), output, "input_1");
    }
    rendering = false;
    markConnectedOutputs();
    placeEdgeLabels();
    decorate();
    if (focusedId) {
      const element = focusedId === ENTRY ? elementOf(ENTRY) : elementOf(focusedId);
      if (element) element.focus({ preventScroll: true });
    }
  }

  /** A port's branch label shows while the port is free; once connected, the edge carries it. */
  function markConnectedOutputs() {
    for (const output of precanvas.querySelectorAll(".output.jb-connected"))
      output.classList.remove("jb-connected");
    for (const svg of precanvas.querySelectorAll("svg.connection")) {
      const classes = [...svg.classList];
      const source = (classes.find((c) => c.startsWith("node_out_")) || "").slice(9);
      const output = classes.find((c) => /^output_\d+$/.test(c));
      const port =
        source && output ? precanvas.querySelector(`#${CSS.escape(source)} .outputs .${output}`) : null;
      if (port) port.classList.add("jb-connected");
    }
  }

  function removedPosition(id) {
    const fromLayout = DIFF && DIFF.layout && DIFF.layout[id];
    if (Array.isArray(fromLayout)) return { x: fromLayout[0], y: fromLayout[1] };
    const bottom = Math.max(0, ...Object.values(state.layout).map(([, y]) => y));
    const index = (DATA.removed_nodes || []).findIndex((node) => node && node.id === id);
    return { x: 40 + COLUMN * (index + 1), y: bottom + ROW };
  }

  function outputClass(node, branch) {
    const branches = branchesOf(node);
    if (branches === null) return "output_1";
    const index = branches.indexOf(branch);
    return index >= 0 ? `output_${index + 1}` : null;
  }

  function branchOfOutput(node, output) {
    const branches = branchesOf(node);
    if (branches === null) return undefined;
    return branches[Number(String(output).replace("output_", "")) - 1];
  }

  // Edge labels (SVG text at each path's midpoint) ---------------------------------------

  function edgeOfConnection(svg) {
    const classes = [...svg.classList];
    const to = nodeIdOf.get((classes.find((c) => c.startsWith("node_in_node-")) || "").slice(13));
    const from = nodeIdOf.get((classes.find((c) => c.startsWith("node_out_node-")) || "").slice(14));
    const output = classes.find((c) => /^output_\d+$/.test(c));
    if (!from || !to) return null;
    if (from === ENTRY) return { from, to, branch: undefined };
    const source = nodeById(from);
    return source ? { from, to, branch: branchOfOutput(source, output) } : null;
  }

  function edgeKey(edge) {
    return `${edge.from}:${edge.branch ?? ""}`;
  }

  function edgeLabelText(edge) {
    const parts = [];
    if (edge.branch !== undefined) parts.push(edge.branch);
    const count = edgeCounts.get(edgeKey(edge));
    if (count !== undefined) parts.push(NUMBER.format(count));
    const estimate = forecast && forecast.edges ? forecast.edges[edgeKey(edge)] : undefined;
    if (estimate !== undefined && edge.from !== ENTRY) parts.push(`≈${NUMBER.format(Math.round(estimate))}`);
    return parts.join(" · ");
  }

  /** Labels live in one SVG layer above the nodes (a connection's own SVG is under them,
   * where a node would hide its label); each connection element keeps its label. */
  function labelLayer() {
    let layer = precanvas.querySelector(":scope > svg.jb-edge-labels");
    if (!layer) {
      layer = document.createElementNS("http://www.w3.org/2000/svg", "svg");
      layer.setAttribute("class", "jb-edge-labels");
      layer.setAttribute("aria-hidden", "true");
      precanvas.append(layer);
    }
    return layer;
  }

  function placeEdgeLabels(elementId) {
    const selector = elementId
      ? `svg.connection.node_in_${CSS.escape(elementId)}, svg.connection.node_out_${CSS.escape(elementId)}`
      : "svg.connection";
    const layer = labelLayer();
    for (const svg of precanvas.querySelectorAll(selector)) {
      const path = svg.querySelector(".main-path");
      const edge = edgeOfConnection(svg);
      if (!path || !edge) continue;
      svg.dataset.from = edge.from;
      svg.dataset.to = edge.to;
      if (edge.branch !== undefined) svg.dataset.branch = edge.branch;
      let label = svg.jbLabel && svg.jbLabel.isConnected ? svg.jbLabel : null;
      const text = edgeLabelText(edge);
      if (!text) {
        if (label) label.remove();
        svg.jbLabel = null;
        continue;
      }
      if (!label) {
        label = document.createElementNS("http://www.w3.org/2000/svg", "text");
        label.setAttribute("class", "jb-edge-label");
        label.setAttribute("text-anchor", "middle");
        layer.append(label);
        svg.jbLabel = label;
      }
      label.dataset.from = edge.from;
      label.dataset.to = edge.to;
      label.classList.toggle("on-path", svg.classList.contains("on-path"));
      label.textContent = text;
      const length = path.getTotalLength();
      if (!length) continue;
      const middle = path.getPointAtLength(length / 2);
      label.setAttribute("x", middle.x.toFixed(1));
      label.setAttribute("y", (middle.y - 5).toFixed(1));
    }
  }

  // Decorations: selection, problems, stats, forecast, path ------------------------------

  const selection = new Set();
  let problemsByNode = {};
  let stats = null;
  const edgeCounts = new Map();
  let forecast = null;
  let simulatedPath = [];

  function decorate() {
    for (const [id, dfId] of dfIdOf) {
      const element = document.getElementById(`node-${dfId}`);
      if (!element) continue;
      element.classList.toggle("jb-selected", selection.has(id));
      decorateProblems(id, element);
      decorateStats(id, element);
      decorateForecast(id, element);
      element.classList.toggle(
        "on-path",
        simulatedPath.includes(id) || (id === ENTRY && simulatedPath.length > 0),
      );
    }
    for (const svg of precanvas.querySelectorAll("svg.connection")) {
      const edge = edgeOfConnection(svg);
      svg.classList.toggle("on-path", Boolean(edge && onPath(edge)));
    }
    placeEdgeLabels();
  }

  function decorateProblems(id, element) {
    const list = element.querySelector(".jb-problems");
    const problems = problemsByNode[id] || [];
    element.classList.toggle("has-problems", problems.length > 0);
    if (!list) return;
    list.hidden = problems.length === 0;
    list.replaceChildren(
      ...problems.map((problem) => {
        const li = document.createElement("li");
        li.textContent = problem;
        return li;
      }),
    );
  }

  function decorateStats(id, element) {
    const box = element.querySelector(".jb-stats");
    if (!box) return;
    if (!stats) {
      box.hidden = true;
      return;
    }
    if (id === ENTRY) {
      box.hidden = false;
      box.innerHTML = statHtml("enrolled", gettext("enrolled"), stats.enrolled || 0);
      return;
    }
    const numbers = (stats.nodes || {})[id] || { entered: 0, waiting: 0, converted: 0 };
    const node = nodeById(id);
    box.hidden = false;
    let html = statHtml("entered", gettext("entered"), numbers.entered || 0);
    if (numbers.waiting) html += statHtml("waiting", gettext("waiting"), numbers.waiting);
    if (node && node.type === "goal") {
      const rate = stats.enrolled ? (numbers.converted || 0) / stats.enrolled : 0;
      html += statHtml("converted", gettext("converted"), numbers.converted || 0);
      html += `<span class="jb-stat" data-stat="rate"><strong>${PERCENT.format(rate)}</strong> ${escapeHtml(gettext("conversion"))}</span>`;
    } else if (numbers.converted) {
      html += statHtml("converted", gettext("converted"), numbers.converted);
    }
    box.innerHTML = html;
  }

  function statHtml(name, label, value) {
    return `<span class="jb-stat" data-stat="${name}"><strong>${NUMBER.format(value)}</strong> ${escapeHtml(label)}</span>`;
  }

  function decorateForecast(id, element) {
    const box = element.querySelector(".jb-forecast");
    if (!box) return;
    if (!forecast) {
      box.hidden = true;
      return;
    }
    const value = id === ENTRY ? forecast.entries : (forecast.nodes || {})[id];
    box.hidden = false;
    box.textContent = format(gettext("≈ %(n)s in the first week"), {
      n: NUMBER.format(Math.round(value || 0)),
    });
  }

  function onPath(edge) {
    if (!simulatedPath.length) return false;
    if (edge.from === ENTRY) return simulatedPath[0] === edge.to;
    for (let i = 0; i + 1 < simulatedPath.length; i++) {
      if (simulatedPath[i] === edge.from && simulatedPath[i + 1] === edge.to) return true;
    }
    return false;
  }

  function clearPath() {
    if (!simulatedPath.length) return;
    simulatedPath = [];
    precanvas.querySelectorAll(".on-path").forEach((element) => element.classList.remove("on-path"));
  }

  function clearForecast() {
    if (!forecast) return;
    forecast = null;
    if (forecastBasis) forecastBasis.textContent = "";
    decorate();
  }

  // Auto-layout: layers by breadth-first depth from the start, left to right -------------

  function autoLayout({ onlyMissing = false } = {}) {
    const outgoing = new Map(state.nodes.map((node) => [node.id, []]));
    for (const node of state.nodes) {
      const branches = branchesOf(node) || [undefined];
      const edges = state.edges.filter((edge) => edge.from === node.id);
      edges.sort((a, b) => branches.indexOf(a.branch) - branches.indexOf(b.branch));
      outgoing.set(
        node.id,
        edges.map((edge) => edge.to),
      );
    }
    const depth = new Map([[ENTRY, 0]]);
    const layers = [[ENTRY]];
    const walk = (roots, base) => {
      const queue = [];
      for (const root of roots) {
        if (depth.has(root)) continue;
        depth.set(root, base);
        queue.push(root);
      }
      while (queue.length) {
        const id = queue.shift();
        (layers[depth.get(id)] = layers[depth.get(id)] || []).push(id);
        for (const target of outgoing.get(id) || []) {
          if (depth.has(target) || !outgoing.has(target)) continue;
          depth.set(target, depth.get(id) + 1);
          queue.push(target);
        }
      }
    };
    if (state.start && outgoing.has(state.start)) walk([state.start], 1);
    for (const node of state.nodes) {
      if (!depth.has(node.id)) walk([node.id], Math.max(1, layers.length));
    }
    const tallest = Math.max(...layers.map((layer) => (layer ? layer.length : 0)));
    layers.forEach((layer, column) => {
      if (!layer) return;
      const offset = ((tallest - layer.length) * ROW) / 2;
      layer.forEach((id, row) => {
        if (onlyMissing && state.layout[id]) return;
        state.layout[id] = [40 + column * COLUMN, 40 + offset + row * ROW];
      });
    });
  }

  /** Zoom (at most 100 %, at least FIT_MIN_ZOOM) and pan so that the journey starts at
   * the top left corner; a journey that fits shows whole. */
  function fitView() {
    const elements = [...precanvas.querySelectorAll(".drawflow-node")];
    const width = canvasElement.clientWidth;
    const height = canvasElement.clientHeight;
    if (!elements.length || !width || !height) return;
    let left = Infinity;
    let top = Infinity;
    let right = -Infinity;
    let bottom = -Infinity;
    for (const element of elements) {
      left = Math.min(left, element.offsetLeft);
      top = Math.min(top, element.offsetTop);
      right = Math.max(right, element.offsetLeft + element.offsetWidth + 20); // + port labels
      bottom = Math.max(bottom, element.offsetTop + element.offsetHeight);
    }
    const margin = 30;
    const zoom = Math.max(
      FIT_MIN_ZOOM,
      Math.min(1, (width - 2 * margin) / (right - left), (height - 2 * margin) / (bottom - top)),
    );
    // Drawflow scales around the canvas centre c: a point p shows at c + (p - c) * zoom + t.
    const cx = precanvas.clientWidth / 2;
    const cy = precanvas.clientHeight / 2;
    editor.zoom = zoom;
    editor.zoom_last_value = zoom;
    editor.canvas_x = margin - cx - (left - cx) * zoom;
    editor.canvas_y = margin - cy - (top - cy) * zoom;
    precanvas.style.transform = `translate(${editor.canvas_x}px, ${editor.canvas_y}px) scale(${zoom})`;
    editor.dispatch("zoom", zoom);
  }

  /** Canvas coordinates (the nodes' own) of a point on the screen. */
  function canvasPoint(clientX, clientY) {
    const rect = precanvas.getBoundingClientRect();
    return { x: (clientX - rect.x) / editor.zoom, y: (clientY - rect.y) / editor.zoom };
  }

  // Editing ----------------------------------------------------------------------------

  function addNode(type, point, after) {
    if (READONLY || !NODE_TYPES.has(type)) return null;
    const node = newNode(type);
    state.nodes.push(node);
    state.layout[node.id] = [Math.round(point.x), Math.round(point.y)];
    if (after) {
      const free = freeOutput(after);
      if (free !== null) connect(after, node.id, free === true ? undefined : free);
    } else if (!state.start) {
      state.start = node.id;
    }
    selection.clear();
    selection.add(node.id);
    changed();
    showMessage(format(gettext("Added %(type)s %(id)s."), { type: typeLabel(type), id: node.id }), "info");
    openPanel(node.id);
    const element = elementOf(node.id);
    if (element) element.focus({ preventScroll: true });
    return node;
  }

  /** The first output of `id` with no edge: a branch label, true for an unlabelled one, or null. */
  function freeOutput(id) {
    if (id === ENTRY) return state.start ? null : true;
    const node = nodeById(id);
    if (!node) return null;
    const branches = branchesOf(node);
    const used = state.edges.filter((edge) => edge.from === id);
    if (branches === null) return used.length ? null : true;
    const free = branches.find((branch) => !used.some((edge) => edge.branch === branch));
    return free === undefined ? null : free;
  }

  function addNodeAfterSelection(type) {
    const anchor = selection.size === 1 ? [...selection][0] : null;
    let point;
    if (anchor && state.layout[anchor]) {
      const [x, y] = state.layout[anchor];
      point = { x: x + COLUMN, y };
      while (
        Object.values(state.layout).some(
          ([ox, oy]) => Math.abs(ox - point.x) < 100 && Math.abs(oy - point.y) < 90,
        )
      ) {
        point.y += ROW / 2;
      }
    } else {
      const right = Math.max(40, ...Object.values(state.layout).map(([x]) => x + COLUMN));
      point = { x: right, y: 40 };
    }
    addNode(type, point, anchor);
  }

  function deleteSelection() {
    if (READONLY) return;
    const connection = editor.connection_selected;
    if (connection && connection.parentElement) {
      const edge = edgeOfConnection(connection.parentElement);
      if (edge) {
        if (edge.from === ENTRY) state.start = null;
        else
          state.edges = state.edges.filter(
            (e) =>
              !(e.from === edge.from && e.to === edge.to && (e.branch ?? null) === (edge.branch ?? null)),
          );
        changed();
        showMessage(gettext("Connection deleted."), "info");
        return;
      }
    }
    const ids = [...selection].filter((id) => id !== ENTRY && nodeById(id));
    if (!ids.length) return;
    const gone = new Set(ids);
    state.nodes = state.nodes.filter((node) => !gone.has(node.id));
    state.edges = state.edges.filter((edge) => !gone.has(edge.from) && !gone.has(edge.to));
    for (const id of ids) {
      delete state.layout[id];
      delete problemsByNode[id];
    }
    if (gone.has(state.start)) state.start = null;
    selection.clear();
    changed();
    if (panelNodeId && gone.has(panelNodeId)) closePanel();
    showMessage(format(gettext("Deleted %(ids)s."), { ids: ids.join(", ") }), "info");
  }

  function select(ids, { add = false } = {}) {
    if (!add) selection.clear();
    for (const id of ids) selection.add(id);
    decorate();
    updateToolbar();
  }

  function moveSelection(dx, dy) {
    const ids = [...selection].filter((id) => state.layout[id]);
    if (!ids.length || READONLY) return;
    for (const id of ids) state.layout[id] = [state.layout[id][0] + dx, state.layout[id][1] + dy];
    changed();
  }

  function syncPositionsFromCanvas() {
    for (const [id, dfId] of dfIdOf) {
      const data = editor.drawflow.drawflow.Home.data[dfId];
      if (data && (id === ENTRY || nodeById(id)))
        state.layout[id] = [Math.round(data.pos_x), Math.round(data.pos_y)];
    }
  }

  editor.on("connectionCreated", ({ output_id, input_id, output_class }) => {
    if (rendering) return;
    const from = nodeIdOf.get(String(output_id));
    const to = nodeIdOf.get(String(input_id));
    if (!from || !to || to === ENTRY) return;
    if (from === ENTRY) {
      connect(ENTRY, to);
    } else {
      const source = nodeById(from);
      if (!source || !nodeById(to)) return;
      connect(from, to, branchOfOutput(source, output_class));
    }
    // Drawflow is still inside its mouse-up handler: redraw once it is done.
    setTimeout(() => changed(), 0);
  });

  // Group drag: Drawflow moves the node under the mouse; the rest of the selection follows.
  let dragOrigin = null;
  editor.on("mouseMove", () => {
    if (!editor.drag || !editor.ele_selected || !editor.ele_selected.id) return;
    const dragged = nodeIdOf.get(editor.ele_selected.id.slice(5));
    if (!dragged || !selection.has(dragged) || selection.size < 2) return;
    const data = editor.drawflow.drawflow.Home.data;
    const draggedData = data[dfIdOf.get(dragged)];
    if (!dragOrigin)
      dragOrigin = {
        id: dragged,
        at: [...(state.layout[dragged] || [draggedData.pos_x, draggedData.pos_y])],
      };
    const dx = draggedData.pos_x - dragOrigin.at[0];
    const dy = draggedData.pos_y - dragOrigin.at[1];
    for (const id of selection) {
      if (id === dragged || !state.layout[id]) continue;
      const dfId = dfIdOf.get(id);
      const element = document.getElementById(`node-${dfId}`);
      if (!element || !data[dfId]) continue;
      data[dfId].pos_x = state.layout[id][0] + dx;
      data[dfId].pos_y = state.layout[id][1] + dy;
      element.style.left = `${data[dfId].pos_x}px`;
      element.style.top = `${data[dfId].pos_y}px`;
      editor.updateConnectionNodes(`node-${dfId}`);
    }
  });

  editor.on("nodeMoved", () => {
    dragOrigin = null;
    syncPositionsFromCanvas();
    changed({ redraw: false });
  });
  editor.on("mouseUp", () => {
    dragOrigin = null;
  });

  // Pointer: click to select (shift: add), rubber band with shift on the background ------

  let pointerDown = null;
  let band = null;

  canvasElement.addEventListener(
    "mousedown",
    (event) => {
      if (event.button !== 0) return;
      const nodeElement = event.target.closest(".drawflow-node");
      // Keys act on the canvas after a click on its background or an edge.
      if (!nodeElement && !canvasElement.contains(document.activeElement))
        canvasElement.focus({ preventScroll: true });
      if (event.target.closest(".output, .input")) return;
      if (!nodeElement && event.shiftKey && !READONLY) {
        event.stopPropagation();
        event.preventDefault();
        startBand(event);
        return;
      }
      const id = nodeElement ? nodeElement.dataset.nodeId : null;
      pointerDown = { x: event.clientX, y: event.clientY, id, shift: event.shiftKey };
      if (id && !event.shiftKey && !selection.has(id)) select([id]);
    },
    true,
  );

  window.addEventListener("mouseup", (event) => {
    if (band) {
      finishBand(event);
      return;
    }
    const down = pointerDown;
    pointerDown = null;
    if (!down || Math.hypot(event.clientX - down.x, event.clientY - down.y) > 4) return;
    if (!canvasElement.contains(event.target)) return;
    if (!down.id) {
      if (!event.target.closest("svg.connection")) select([]);
      return;
    }
    if (down.shift) {
      if (selection.has(down.id)) selection.delete(down.id);
      else selection.add(down.id);
      decorate();
      updateToolbar();
      return;
    }
    select([down.id]);
    openPanel(down.id);
  });

  function startBand(event) {
    const rect = canvasElement.getBoundingClientRect();
    band = { x: event.clientX, y: event.clientY, element: document.createElement("div") };
    band.element.className = "jb-rubber-band";
    band.element.style.left = `${event.clientX - rect.x}px`;
    band.element.style.top = `${event.clientY - rect.y}px`;
    canvasElement.append(band.element);
  }

  window.addEventListener("mousemove", (event) => {
    if (!band) return;
    const rect = canvasElement.getBoundingClientRect();
    const left = Math.min(band.x, event.clientX);
    const top = Math.min(band.y, event.clientY);
    band.element.style.left = `${left - rect.x}px`;
    band.element.style.top = `${top - rect.y}px`;
    band.element.style.width = `${Math.abs(event.clientX - band.x)}px`;
    band.element.style.height = `${Math.abs(event.clientY - band.y)}px`;
  });

  function finishBand(event) {
    const box = {
      left: Math.min(band.x, event.clientX),
      right: Math.max(band.x, event.clientX),
      top: Math.min(band.y, event.clientY),
      bottom: Math.max(band.y, event.clientY),
    };
    band.element.remove();
    band = null;
    const inside = [];
    for (const [id, dfId] of dfIdOf) {
      const element = document.getElementById(`node-${dfId}`);
      if (!element || id === ENTRY || element.classList.contains("jb-diff-removed")) continue;
      const r = element.getBoundingClientRect();
      if (r.left < box.right && r.right > box.left && r.top < box.bottom && r.bottom > box.top)
        inside.push(id);
    }
    select(inside, { add: true });
  }

  // Palette: drag onto the canvas, or press it (Enter) to add after the selected node ----

  const palette = document.getElementById("journey-palette");
  if (palette) {
    if (READONLY) palette.hidden = true;
    palette.addEventListener("dragstart", (event) => {
      const item = event.target.closest(".palette-item");
      if (!item) return;
      event.dataTransfer.setData("application/x-journey-node", item.dataset.nodeType);
      event.dataTransfer.setData("text/plain", item.dataset.nodeType);
      event.dataTransfer.effectAllowed = "copy";
    });
    palette.addEventListener("click", (event) => {
      const item = event.target.closest(".palette-item");
      if (item) addNodeAfterSelection(item.dataset.nodeType);
    });
    for (const item of palette.querySelectorAll(".palette-item")) {
      if (!item.title && item.dataset.help) item.title = item.dataset.help;
      item.setAttribute("aria-keyshortcuts", "Enter");
    }
  }

  canvasElement.addEventListener("dragover", (event) => {
    if (READONLY) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
  });
  canvasElement.addEventListener("drop", (event) => {
    if (READONLY) return;
    event.preventDefault();
    const type =
      event.dataTransfer.getData("application/x-journey-node") || event.dataTransfer.getData("text/plain");
    if (!NODE_TYPES.has(type)) return;
    const point = canvasPoint(event.clientX, event.clientY);
    addNode(type, { x: point.x - 100, y: point.y - 30 });
  });

  // Side panels (htmx) -----------------------------------------------------------------

  const panel = document.getElementById("journey-panel");
  const panelWelcome = panel ? panel.innerHTML : "";
  let panelNodeId = null;
  let panelNodeJson = null; // the step as the open panel was asked for, or as it last changed

  function csrfToken() {
    try {
      const headers = JSON.parse(document.body.getAttribute("hx-headers") || "{}");
      if (headers["X-CSRFToken"]) return headers["X-CSRFToken"];
    } catch (_error) {
      // fall through to the cookie
    }
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  function openPanel(id) {
    if (!panel) return;
    if (READONLY) {
      showDetails(id);
      return;
    }
    if (!window.htmx) return;
    panelNodeId = id;
    if (id === ENTRY) {
      window.htmx.ajax("POST", URLS.settings_form, {
        target: "#journey-panel",
        headers: { "X-CSRFToken": csrfToken() },
        values: { settings: JSON.stringify(clone(state.settings)) },
      });
      return;
    }
    const node = nodeById(id);
    if (!node) return;
    // The panel already shows this step as it is: keep it (and what is being typed there);
    // asking again would race a change the panel is posting and could undo it.
    const shown = panel.querySelector("#journey-node-form");
    if (shown && shown.dataset.nodeId === id && panelNodeJson === JSON.stringify(node)) return;
    panelNodeJson = JSON.stringify(node);
    window.htmx.ajax("POST", URLS.node_form, {
      target: "#journey-panel",
      headers: { "X-CSRFToken": csrfToken() },
      values: { node: JSON.stringify(node), node_ids: JSON.stringify(state.nodes.map((n) => n.id)) },
    });
  }

  /** Read-only: what a step holds, as it is in the graph (no form to change it). */
  function showDetails(id) {
    const removed = ((DIFF && DATA.removed_nodes) || []).find((n) => n && n.id === id);
    const item = id === ENTRY ? state.settings : nodeById(id) || removed;
    if (!item) return;
    const title = id === ENTRY ? gettext("Journey settings") : `${typeLabel(item.type)} `;
    const rows = Object.entries(item)
      .filter(([key, value]) => key !== "id" && key !== "type" && value !== null && value !== undefined)
      .map(([key, value]) => {
        const shown = typeof value === "object" ? JSON.stringify(value) : String(value);
        return `<dt>${escapeHtml(key)}</dt><dd><code>${escapeHtml(shown)}</code></dd>`;
      })
      .join("");
    const diffClass = id === ENTRY ? null : removed && !nodeById(id) ? "removed" : diffClassOf(id);
    panel.innerHTML = `
      <section class="jb-details" aria-label="${escapeHtml(title)}">
        <h2>${escapeHtml(title)}${id === ENTRY ? "" : `<small class="muted node-id">${escapeHtml(id)}</small>`}</h2>
        ${diffClass ? `<p><span class="jb-diff-key jb-diff-${diffClass}">${escapeHtml(DIFF_LABELS[diffClass])}</span></p>` : ""}
        <p>${escapeHtml(id === ENTRY ? summaryOfEntry(item.entry) : summaryOf(item))}</p>
        ${rows ? `<dl>${rows}</dl>` : ""}
      </section>`;
  }

  function closePanel() {
    panelNodeId = null;
    if (panel) panel.innerHTML = panelWelcome;
  }

  document.body.addEventListener("journeyNodeChanged", (event) => {
    const detail = event.detail || {};
    const changedNode = detail.node;
    if (READONLY || !changedNode || !changedNode.id) return;
    const index = state.nodes.findIndex((node) => node.id === changedNode.id);
    if (index < 0) return;
    const fresh = clone(changedNode);
    delete fresh.elt;
    if (JSON.stringify(state.nodes[index]) === JSON.stringify(fresh)) return;
    state.nodes[index] = fresh;
    if (fresh.id === panelNodeId) panelNodeJson = JSON.stringify(fresh);
    fitEdgesToBranches(fresh);
    delete problemsByNode[fresh.id];
    changed();
  });

  document.body.addEventListener("journeySettingsChanged", (event) => {
    const settings = (event.detail || {}).settings;
    if (READONLY || !settings || typeof settings !== "object") return;
    const next = { ...state.settings };
    for (const key of SETTING_KEYS) if (key in settings) next[key] = clone(settings[key]);
    if (JSON.stringify(next) === JSON.stringify(state.settings)) return;
    state.settings = next;
    changed();
  });

  document.body.addEventListener("journeyPathSimulated", (event) => {
    const path = (event.detail || {}).path;
    simulatedPath = Array.isArray(path) ? path.map(String) : [];
    decorate();
  });

  // htmx sends a response's HX-Trigger events to the element that asked. When that element
  // left the page meanwhile (a contact search refreshing the list under the pointer, a
  // panel replaced by the next one), the events would be lost: pass them on from here.
  const PANEL_EVENTS = ["journeyNodeChanged", "journeySettingsChanged", "journeyPathSimulated"];
  document.body.addEventListener("htmx:beforeSend", (event) => {
    const detail = event.detail || {};
    const asker = detail.requestConfig && detail.requestConfig.elt;
    if (!asker || !detail.xhr) return;
    // Added after htmx's own onload, so this runs once htmx has handled the answer.
    detail.xhr.addEventListener("load", () => {
      if (asker.isConnected) return;
      let triggers = null;
      try {
        triggers = JSON.parse(detail.xhr.getResponseHeader("HX-Trigger") || "null");
      } catch (_error) {
        return;
      }
      if (!triggers || typeof triggers !== "object") return;
      for (const name of PANEL_EVENTS) {
        if (triggers[name]) document.body.dispatchEvent(new CustomEvent(name, { detail: triggers[name] }));
      }
    });
  });

  // Only an answer to the panel's latest request, with nothing typed in the panel since it
  // was asked, may replace the panel: an older one would undo what the marketer changed
  // meanwhile (the newer request, or the one their typing is about to send, follows).
  let panelGeneration = 0;
  if (panel) {
    for (const type of ["input", "change"]) {
      panel.addEventListener(
        type,
        (event) => {
          const sends = event.target.closest('[hx-target="#journey-panel"]');
          if (sends && !event.target.closest(".segment-builder")) panelGeneration += 1;
        },
        true,
      );
    }
  }
  document.body.addEventListener("htmx:beforeRequest", (event) => {
    const detail = event.detail || {};
    if (panel && detail.target === panel && detail.xhr) detail.xhr.panelGeneration = ++panelGeneration;
  });

  // A panel answer that arrives after another step was selected still updates its step on
  // the canvas (HX-Trigger comes first) but does not replace the panel now shown.
  document.body.addEventListener("htmx:beforeSwap", (event) => {
    const detail = event.detail || {};
    if (!panel || detail.target !== panel || !detail.requestConfig) return;
    if (detail.xhr && detail.xhr.panelGeneration && detail.xhr.panelGeneration !== panelGeneration) {
      detail.shouldSwap = false;
      return;
    }
    const parameters = detail.requestConfig.parameters || {};
    let owner;
    try {
      if (parameters.node) owner = JSON.parse(parameters.node).id;
      else if (parameters.settings) owner = ENTRY;
    } catch (_error) {
      owner = undefined;
    }
    if (owner !== undefined && owner !== panelNodeId) detail.shouldSwap = false;
  });

  // The test panel's form simulates the graph on the canvas, saved or not.
  document.body.addEventListener("htmx:configRequest", (event) => {
    const detail = event.detail;
    if (!detail || !URLS.test || detail.verb !== "post") return;
    const path = new URL(detail.path, window.location.href).pathname;
    if (path === new URL(URLS.test, window.location.href).pathname) {
      detail.parameters.graph = JSON.stringify(buildGraph());
    }
  });

  // Save, problems, lifecycle ------------------------------------------------------------

  async function request(method, url, body) {
    const response = await fetch(url, {
      method,
      credentials: "same-origin",
      headers: {
        Accept: "application/json",
        "Content-Type": "application/json",
        "X-CSRFToken": csrfToken(),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let json = null;
    try {
      json = await response.json();
    } catch (_error) {
      json = null;
    }
    return { ok: response.ok, status: response.status, json };
  }

  /** A refusal's problems on the nodes they concern, the rest in #journey-message. The
   * API answers {"detail", "errors": {"graph": [...], "nodes": {id: [...]}, "journey": [...]}}. */
  function showProblems(response) {
    response = response || {};
    const body = response.errors && typeof response.errors === "object" ? response.errors : response;
    const byNode = {};
    const journeyLevel = [...(Array.isArray(body.journey) ? body.journey : [])];
    if (body.nodes && typeof body.nodes === "object") {
      for (const [id, messages] of Object.entries(body.nodes)) {
        if (id && nodeById(id)) byNode[id] = [].concat(messages);
        else journeyLevel.push(...[].concat(messages));
      }
    } else if (Array.isArray(body.graph)) {
      // An older server: "node: message" lines.
      for (const line of body.graph) {
        const match = /^([^:]+): (.*)$/.exec(line);
        if (match && nodeById(match[1])) (byNode[match[1]] = byNode[match[1]] || []).push(match[2]);
        else journeyLevel.push(line);
      }
    }
    if (!body.nodes && !body.journey && !body.graph) {
      for (const [key, value] of Object.entries(body)) {
        if (key !== "detail") journeyLevel.push(`${key}: ${[].concat(value).join(" ")}`);
      }
      if (!journeyLevel.length && response.detail) journeyLevel.push(String(response.detail));
    }
    problemsByNode = byNode;
    decorate();
    const count = Object.values(byNode).reduce((sum, list) => sum + list.length, 0) + journeyLevel.length;
    showMessage(
      format(gettext("Not saved. Problems to fix: %(n)s (marked on the canvas)."), { n: count }),
      "error",
      journeyLevel,
    );
    const first = Object.keys(byNode)[0];
    if (first) {
      const element = elementOf(first);
      if (element) element.scrollIntoView({ block: "nearest", inline: "nearest" });
    }
  }

  let saving = false;

  async function save({ quiet = false } = {}) {
    if (READONLY || saving) return false;
    saving = true;
    setBusy(true);
    const graph = buildGraph();
    try {
      const result = await request("PUT", URLS.api, graph);
      if (result.ok) {
        savedGraph = JSON.stringify(graph);
        problemsByNode = {};
        keepUnsavedCopy();
        decorate();
        if (!quiet)
          showMessage(
            format(gettext("Saved at %(time)s."), { time: new Date().toLocaleTimeString() }),
            "success",
          );
        return true;
      }
      if (result.status === 400) showProblems(result.json);
      else showMessage(failure(result), "error");
      return false;
    } catch (_error) {
      showMessage(gettext("Could not reach the server; your changes are kept in this browser."), "error");
      return false;
    } finally {
      saving = false;
      setBusy(false);
      updateToolbar();
    }
  }

  function failure(result) {
    const detail = result.json && (result.json.detail || result.json.error);
    return detail
      ? String(detail)
      : format(gettext("The server refused (%(status)s)."), { status: result.status });
  }

  let leaving = false;

  async function lifecycle(action) {
    const url = URLS[action];
    if (!url) return;
    if (action === "archive") {
      const button = document.getElementById("journey-archive");
      const question =
        (button && button.dataset.confirm) ||
        gettext(
          "Archive this journey? Everyone still in it leaves, and it can no longer be changed or published.",
        );
      if (!window.confirm(question)) return;
    }
    if (action === "publish" && !(await save({ quiet: true }))) return;
    setBusy(true);
    try {
      const result = await request("POST", url, {});
      if (result.ok) {
        leaving = true;
        window.location.reload();
        return;
      }
      if (result.status === 400) showProblems(result.json);
      else showMessage(failure(result), "error");
    } catch (_error) {
      showMessage(gettext("Could not reach the server."), "error");
    } finally {
      setBusy(false);
    }
  }

  function setBusy(busy) {
    canvasElement.setAttribute("aria-busy", busy ? "true" : "false");
  }

  for (const action of ["publish", "pause", "resume", "archive"]) {
    const button = document.getElementById(`journey-${action}`);
    if (!button) continue;
    if (READONLY) button.hidden = true;
    button.addEventListener("click", (event) => {
      event.preventDefault();
      lifecycle(action);
    });
  }
  const saveButton = document.getElementById("journey-save");
  if (saveButton) {
    if (READONLY) saveButton.hidden = true;
    saveButton.addEventListener("click", (event) => {
      event.preventDefault();
      save();
    });
  }

  window.addEventListener("beforeunload", (event) => {
    if (leaving || !isDirty()) return;
    event.preventDefault();
    event.returnValue = "";
  });

  // Watching: numbers of a live journey -----------------------------------------------------

  async function pollStats() {
    if (document.hidden || !URLS.stats) return;
    try {
      const result = await request("GET", URLS.stats);
      if (!result.ok || !result.json) return;
      stats = result.json;
      edgeCounts.clear();
      if (state.start) edgeCounts.set(`${ENTRY}:`, stats.enrolled || 0);
      for (const node of state.nodes) {
        const numbers = (stats.nodes || {})[node.id];
        if (!numbers) continue;
        const branches = branchesOf(node);
        if (branches === null) edgeCounts.set(`${node.id}:`, numbers.completed || 0);
        else
          for (const branch of branches)
            edgeCounts.set(`${node.id}:${branch}`, (numbers.branches || {})[branch] || 0);
      }
      decorate();
      canvasElement.dataset.statsAt = String(Date.now());
    } catch (_error) {
      // The next poll tries again.
    }
  }

  // Forecast ------------------------------------------------------------------------------

  let forecastBasis = null;

  async function runForecast() {
    if (!URLS.forecast) return;
    setBusy(true);
    try {
      const result = await request("POST", URLS.forecast, buildGraph());
      if (!result.ok || !result.json) {
        if (result.status === 400) showProblems(result.json);
        else showMessage(failure(result), "error");
        return;
      }
      forecast = result.json;
      decorate();
      if (forecastBasis) forecastBasis.textContent = forecast.basis || "";
      showMessage(
        format(gettext("Forecast: about %(n)s contacts enter in the first week. %(basis)s"), {
          n: NUMBER.format(Math.round(forecast.entries || 0)),
          basis: forecast.basis || "",
        }),
        "info",
      );
    } catch (_error) {
      showMessage(gettext("Could not reach the server."), "error");
    } finally {
      setBusy(false);
    }
  }

  function openTestPanel() {
    if (!URLS.test || !window.htmx || !panel) return;
    panelNodeId = null;
    window.htmx.ajax("GET", URLS.test, { target: "#journey-panel" });
  }

  // Toolbar and help ----------------------------------------------------------------------

  const SHORTCUTS = [
    ["Ctrl+S", gettext("Save")],
    ["Ctrl+Z", gettext("Undo")],
    ["Ctrl+Shift+Z / Ctrl+Y", gettext("Redo")],
    ["Delete / Backspace", gettext("Delete the selected nodes or connection")],
    [gettext("Shift+click"), gettext("Add a node to the selection")],
    [gettext("Shift+drag on the background"), gettext("Select the nodes in a rectangle")],
    ["Ctrl+A", gettext("Select every node")],
    [gettext("Arrow keys"), gettext("Move the selected nodes")],
    [gettext("Enter on a node"), gettext("Open its settings")],
    [gettext("Enter on a palette item"), gettext("Add that step after the selected node")],
    ["L", gettext("Arrange the nodes automatically")],
    ["+ / − / 0", gettext("Zoom in / out / fit")],
    [gettext("Drag the background"), gettext("Pan")],
    ["Esc", gettext("Clear the selection, close this help")],
    ["?", gettext("Show or hide this help")],
  ];

  const toolbar = document.getElementById("journey-toolbar");
  const tools = {};
  let helpBox = null;

  function toolButton(action, text, label, handler, { editing = false } = {}) {
    if (editing && READONLY) return null;
    const button = document.createElement("button");
    button.type = "button";
    button.className = "jb-tool outline secondary";
    button.dataset.action = action;
    button.textContent = text;
    button.setAttribute("aria-label", label);
    button.title = label;
    button.addEventListener("click", handler);
    tools[action] = button;
    return button;
  }

  function buildToolbar() {
    if (!toolbar) return;
    const groups = [
      [
        toolButton("undo", "↶", gettext("Undo (Ctrl+Z)"), undo, { editing: true }),
        toolButton("redo", "↷", gettext("Redo (Ctrl+Shift+Z)"), redo, { editing: true }),
      ],
      [
        toolButton(
          "layout",
          gettext("Arrange"),
          gettext("Arrange the nodes automatically (L)"),
          () => {
            autoLayout();
            changed();
            fitView();
          },
          { editing: true },
        ),
        toolButton("delete", gettext("Delete"), gettext("Delete the selection (Delete)"), deleteSelection, {
          editing: true,
        }),
      ],
      [
        toolButton("zoom-in", "+", gettext("Zoom in (+)"), () => editor.zoom_in()),
        toolButton("zoom-out", "−", gettext("Zoom out (−)"), () => editor.zoom_out()),
        toolButton("zoom-reset", gettext("Fit"), gettext("Fit the journey in view (0)"), fitView),
      ],
      [
        URLS.test && !READONLY
          ? toolButton("test", gettext("Test with a contact"), gettext("Test with a contact"), openTestPanel)
          : null,
        URLS.forecast && !READONLY
          ? toolButton("forecast", gettext("Forecast"), gettext("Forecast the first week"), runForecast)
          : null,
      ],
      [toolButton("help", "?", gettext("Keyboard shortcuts (?)"), toggleHelp)],
    ];
    toolbar.setAttribute("role", "toolbar");
    if (!toolbar.getAttribute("aria-label")) toolbar.setAttribute("aria-label", gettext("Canvas tools"));
    for (const group of groups) {
      const buttons = group.filter(Boolean);
      if (!buttons.length) continue;
      const wrapper = document.createElement("span");
      wrapper.className = "jb-tool-group";
      wrapper.append(...buttons);
      toolbar.append(wrapper);
    }
    forecastBasis = document.createElement("span");
    forecastBasis.className = "jb-forecast-basis";
    toolbar.append(forecastBasis);
    if (DIFF && !document.querySelector(".journey-diff-legend")) {
      const legend = document.createElement("span");
      legend.className = "jb-diff-legend";
      legend.innerHTML = `${escapeHtml(format(gettext("Compared with %(against)s:"), { against: DIFF.against || "" }))}
        <span class="jb-diff-key jb-diff-added">${escapeHtml(DIFF_LABELS.added)}</span>
        <span class="jb-diff-key jb-diff-changed">${escapeHtml(DIFF_LABELS.changed)}</span>
        <span class="jb-diff-key jb-diff-removed">${escapeHtml(DIFF_LABELS.removed)}</span>`;
      toolbar.append(legend);
    }
    tools.help.setAttribute("aria-expanded", "false");
    helpBox = document.createElement("div");
    helpBox.id = "journey-help";
    helpBox.className = "jb-help";
    helpBox.hidden = true;
    helpBox.setAttribute("role", "dialog");
    helpBox.setAttribute("aria-label", gettext("Keyboard shortcuts"));
    helpBox.innerHTML = `<h2>${escapeHtml(gettext("Keyboard shortcuts"))}</h2><dl>${SHORTCUTS.map(
      ([keys, what]) => `<dt><kbd>${escapeHtml(keys)}</kbd></dt><dd>${escapeHtml(what)}</dd>`,
    ).join("")}</dl>`;
    tools.help.setAttribute("aria-controls", helpBox.id);
    toolbar.append(helpBox);
  }

  function toggleHelp(force) {
    if (!helpBox) return;
    const open = typeof force === "boolean" ? force : helpBox.hidden;
    helpBox.hidden = !open;
    tools.help.setAttribute("aria-expanded", open ? "true" : "false");
  }

  function updateToolbar() {
    if (tools.undo) tools.undo.disabled = historyIndex <= 0;
    if (tools.redo) tools.redo.disabled = historyIndex >= history.length - 1;
    if (tools.delete)
      tools.delete.disabled = ![...selection].some((id) => id !== ENTRY) && !editor.connection_selected;
    if (saveButton) saveButton.classList.toggle("jb-dirty", isDirty());
    canvasElement.dataset.dirty = isDirty() ? "true" : "false";
  }

  editor.on("connectionSelected", updateToolbar);
  editor.on("connectionUnselected", updateToolbar);

  // Keyboard ------------------------------------------------------------------------------

  function typing(target) {
    return (
      target &&
      (target.closest("input, textarea, select, [contenteditable='true']") ||
        (panel && panel.contains(target)))
    );
  }

  document.addEventListener("keydown", (event) => {
    const mod = event.ctrlKey || event.metaKey;
    const key = event.key;
    if (mod && key.toLowerCase() === "s") {
      event.preventDefault();
      if (!READONLY) save();
      return;
    }
    if (typing(event.target)) return;
    if (mod && key.toLowerCase() === "z") {
      event.preventDefault();
      if (event.shiftKey) redo();
      else undo();
      return;
    }
    if (mod && key.toLowerCase() === "y") {
      event.preventDefault();
      redo();
      return;
    }
    if (mod && key.toLowerCase() === "a") {
      if (!canvasElement.contains(event.target) && event.target !== document.body) return;
      event.preventDefault();
      select(state.nodes.map((node) => node.id));
      return;
    }
    if (mod || event.altKey) return;
    if (key === "?") {
      event.preventDefault();
      toggleHelp();
      return;
    }
    if (key === "Escape") {
      toggleHelp(false);
      select([]);
      return;
    }
    const onCanvas = canvasElement.contains(event.target) || event.target === document.body;
    if (!onCanvas) return;
    if (key === "Delete" || key === "Backspace") {
      event.preventDefault();
      deleteSelection();
    } else if (key === "Enter" || key === " ") {
      const id = event.target.dataset && event.target.dataset.nodeId;
      if (id) {
        event.preventDefault();
        select([id]);
        openPanel(id);
      }
    } else if (key === "l" || key === "L") {
      if (READONLY) return;
      autoLayout();
      changed();
      fitView();
    } else if (key === "+" || key === "=") {
      editor.zoom_in();
    } else if (key === "-") {
      editor.zoom_out();
    } else if (key === "0") {
      fitView();
    } else if (key.startsWith("Arrow") && selection.size) {
      event.preventDefault();
      const step = event.shiftKey ? 50 : 10;
      const dx = key === "ArrowLeft" ? -step : key === "ArrowRight" ? step : 0;
      const dy = key === "ArrowUp" ? -step : key === "ArrowDown" ? step : 0;
      moveSelection(dx, dy);
    }
  });

  // Focus moves selection for keyboard users: tabbing onto a node selects it.
  canvasElement.addEventListener("focusin", (event) => {
    const id = event.target.dataset && event.target.dataset.nodeId;
    if (id && !selection.has(id) && !pointerDown) select([id]);
  });

  /** The canvas takes the rest of the window's height (at least 460 px). */
  function fitCanvasHeight() {
    const top = canvasElement.getBoundingClientRect().top + window.scrollY;
    const height = Math.max(460, Math.min(1000, window.innerHeight - top - 16));
    canvasElement.style.height = `${height}px`;
    if (panel) panel.style.maxHeight = `${height}px`;
  }

  // Start ---------------------------------------------------------------------------------

  buildToolbar();
  fitCanvasHeight();
  window.addEventListener("resize", fitCanvasHeight);
  const hadLayout = Boolean(DATA.graph && DATA.graph.layout && Object.keys(DATA.graph.layout).length);
  if (!hadLayout) autoLayout();
  savedGraph = JSON.stringify(buildGraph()); // laid out by us is not a change of theirs
  record();
  render();
  fitView();
  updateToolbar();
  offerUnsavedCopy();
  if (LIVE && !READONLY) {
    pollStats();
    setInterval(pollStats, POLL_MS);
  }
  canvasElement.dataset.ready = "true";

  // For the browser tests and the curious: the graph as it would be saved.
  window.journeyBuilder = {
    graph: buildGraph,
    save,
    undo,
    redo,
    autoLayout: () => {
      autoLayout();
      changed();
    },
  };
})();
