/**
 * The segment builder: edits a segment rule (the JSON contract of DESIGN.md) as a tree
 * of groups and conditions, keeps it in the form's hidden rule field, and announces
 * every change with a "rule-changed" event, on which htmx posts the rule to the live
 * preview (debounced in the template's hx-trigger).
 *
 * The server checks the rule exactly as the API does, so this module only builds the
 * tree; it never decides what is valid. Plain DOM, no build step. Every word shown
 * comes translated from the page (#segment-builder-config, made by
 * apps/segments/forms.py:builder_config); there is no English in here.
 */

const PRESENCE_OPS = new Set(["exists", "not_exists"]);
const NUMBER_OPS = new Set(["gt", "gte", "lt", "lte", "within_last_days"]);
const LIST_OPS = new Set(["in", "not_in"]);
const KINDS = ["attr", "event", "consent", "list", "segment"];
const OTHER = "__other__";

const config = JSON.parse(document.getElementById("segment-builder-config").textContent);
const L = config.labels;
const ruleInput = document.getElementById("id_rule");
const container = document.getElementById("segment-builder");
const jsonView = document.getElementById("rule-json");
const fieldsByName = new Map(config.fields.map((field) => [field.name, field]));

// The tree -----------------------------------------------------------------------------
// A node is a group {type: "group", mode: "all" | "any", children} or a condition
// {type: "condition", leaf} holding the JSON leaf itself; either may be negated.
// {"not": X} in the JSON is X with negated set, so any valid rule can be edited.

function isObject(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function parse(rule) {
  if (isObject(rule)) {
    const keys = Object.keys(rule);
    if (keys.length === 1 && keys[0] === "not") {
      const node = parse(rule.not);
      node.negated = !node.negated;
      return node;
    }
    if (keys.length === 1 && (keys[0] === "all" || keys[0] === "any") && Array.isArray(rule[keys[0]])) {
      return { type: "group", mode: keys[0], negated: false, children: rule[keys[0]].map(parse) };
    }
  }
  // Conditions, and anything unrecognised, are kept as they are (the server names problems).
  return { type: "condition", negated: false, leaf: structuredClone(rule) };
}

function serialize(node) {
  const rule = node.type === "group" ? { [node.mode]: node.children.map(serialize) } : node.leaf;
  return node.negated ? { not: rule } : rule;
}

function kindOf(leaf) {
  return (isObject(leaf) && KINDS.find((kind) => kind in leaf)) || "raw";
}

// What a value looks like for a field type and op, and how typed text becomes JSON.

function valueKind(type, op) {
  if (PRESENCE_OPS.has(op)) return "none";
  if (LIST_OPS.has(op)) return "list";
  if (NUMBER_OPS.has(op)) return "number";
  if (op === "before" || op === "after") return "date";
  if (op === "contains" || op === "starts_with") return "text";
  if (type === "number" || type === "boolean") return type;
  return type === "any" ? "auto" : "text";
}

function defaultValue(kind) {
  return { number: null, boolean: true, list: [] }[kind] ?? "";
}

// The rule language is typed (the number 5 is not the text "5"). For a name whose type
// the workspace has not shown us (an event property, an attribute typed by hand), text
// that reads as a number or true/false is sent as one; anything else stays text.
function autoTyped(text) {
  const trimmed = text.trim();
  if (/^-?\d+(\.\d+)?$/.test(trimmed)) return Number(trimmed);
  if (trimmed === "true" || trimmed === "false") return trimmed === "true";
  return text;
}

function listItem(text, type) {
  if (type === "number") return text === "" || Number.isNaN(Number(text)) ? text : Number(text);
  return type === "any" ? autoTyped(text) : text;
}

function setOp(condition, op, type) {
  const before = valueKind(type, condition.op);
  condition.op = op;
  const after = valueKind(type, op);
  if (after === "none") delete condition.value;
  else if (after !== before || !("value" in condition)) condition.value = defaultValue(after);
}

function firstOp(type) {
  return config.opsByType[type][0];
}

function newLeaf(kind) {
  if (kind === "attr") {
    const field = config.fields[0];
    const leaf = { attr: field.name, op: firstOp(field.type) };
    setOp(leaf, leaf.op, field.type);
    return leaf;
  }
  if (kind === "event") return { event: config.events[0] ?? "", count: { gte: 1 } };
  if (kind === "consent") return { consent: config.channels[0][0], status: "subscribed" };
  if (kind === "list") return { list: config.lists[0]?.slug ?? "" };
  return { segment: config.segments[0]?.slug ?? "" };
}

function newCondition() {
  return { type: "condition", negated: false, leaf: newLeaf("attr") };
}

// Keeping the form, the JSON view and the preview in step -----------------------------

let root;

function changed(rerender) {
  if (rerender) render();
  const rule = serialize(root);
  ruleInput.value = JSON.stringify(rule);
  jsonView.textContent = JSON.stringify(rule, null, 2);
  ruleInput.dispatchEvent(new CustomEvent("rule-changed", { bubbles: true }));
}

// A problem names its place in the rule ("rule.all[1].count.gte: ..."): the deepest
// node whose path starts it is marked. The preview (posted on load and on every change)
// lists the problems of the rule as it stands now.
function markProblems() {
  for (const marked of container.querySelectorAll(".has-problem")) {
    marked.classList.remove("has-problem");
  }
  const nodes = [...container.querySelectorAll("[data-path]")];
  for (const item of document.querySelectorAll("#segment-preview [data-problem]")) {
    const where = item.textContent.trim().split(": ")[0];
    const matches = nodes.filter(({ dataset: { path } }) =>
      where === path || where.startsWith(`${path}.`) || where.startsWith(`${path}[`));
    const deepest = matches.sort((a, b) => b.dataset.path.length - a.dataset.path.length)[0];
    if (deepest && deepest !== container.firstElementChild) deepest.classList.add("has-problem");
  }
}

// Small DOM helpers ---------------------------------------------------------------------

function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? "" : value);
  }
  element.append(...children.flat().filter((child) => child !== null && child !== undefined));
  return element;
}

function select(options, value, onChange, { key, label, className } = {}) {
  const element = h(
    "select",
    { "data-key": key, "aria-label": label, class: className, onchange: (e) => onChange(e.target.value) },
    options.map(([optionValue, text]) => h("option", { value: optionValue }, text)),
  );
  element.value = value;
  return element;
}

function input(type, value, onInput, { key, label, placeholder, className, min, step } = {}) {
  const element = h("input", {
    type, min, step, placeholder,
    "data-key": key, "aria-label": label, class: className,
    oninput: (e) => onInput(e.target.value),
  });
  element.value = value ?? "";
  return element;
}

function words(text) {
  return h("span", { class: "rule-word" }, text);
}

function removeButton(label, onClick, key) {
  return h("button", {
    type: "button", class: "rule-remove", title: label, "aria-label": label, "data-key": key, onclick: onClick,
  }, "×");
}

function notToggle(node, key) {
  return h("label", { class: "rule-not", title: L.notHint },
    h("input", {
      type: "checkbox", role: "switch", checked: node.negated, "data-key": key, "aria-label": L.notHint,
      onchange: (e) => { node.negated = e.target.checked; changed(true); },
    }),
    L.not);
}

// Rendering -----------------------------------------------------------------------------
// Paths follow the server's problem paths: rule.all[0], rule.any[1].not, ...

function render() {
  const focused = document.activeElement?.dataset?.key;
  container.replaceChildren(renderGroup(root, "rule", null));
  if (focused) container.querySelector(`[data-key="${CSS.escape(focused)}"]`)?.focus();
  markProblems();
}

function renderNode(node, path, parent) {
  return node.type === "group" ? renderGroup(node, path, parent) : renderCondition(node, path, parent);
}

function removeFrom(parent, node) {
  parent.children.splice(parent.children.indexOf(node), 1);
  changed(true);
}

function renderGroup(node, path, parent) {
  const inner = node.negated ? `${path}.not` : path;
  const head = h("div", { class: "rule-group-head" },
    notToggle(node, `${path}:not`),
    words(L.match),
    select([["all", L.all], ["any", L.any]], node.mode, (mode) => { node.mode = mode; changed(true); },
      { key: `${path}:mode`, label: L.match, className: "rule-mode" }),
    parent ? removeButton(L.removeGroup, () => removeFrom(parent, node), `${path}:remove`) : null);
  const children = node.children.length
    ? h("ol", { class: "rule-children" },
      node.children.map((child, index) =>
        h("li", {}, renderNode(child, `${inner}.${node.mode}[${index}]`, node))))
    : h("p", { class: "rule-empty muted" }, node.mode === "all" ? L.emptyGroup : L.emptyAnyGroup);
  const actions = h("div", { class: "rule-group-actions" },
    h("button", {
      type: "button", class: "outline small", "data-key": `${path}:add-condition`,
      onclick: () => { node.children.push(newCondition()); changed(true); },
    }, `+ ${L.addCondition}`),
    h("button", {
      type: "button", class: "outline secondary small", "data-key": `${path}:add-group`,
      onclick: () => {
        node.children.push({ type: "group", mode: "any", negated: false, children: [newCondition()] });
        changed(true);
      },
    }, `+ ${L.addGroup}`));
  const classes = ["rule-group", parent ? "" : "rule-root", node.negated ? "is-negated" : ""];
  return h("div", { class: classes.join(" ").trim(), "data-path": inner, "data-mode": node.mode },
    head, children, actions);
}

function renderCondition(node, path, parent) {
  const inner = node.negated ? `${path}.not` : path;
  const kind = kindOf(node.leaf);
  const controls = {
    attr: attributeControls, event: eventControls, consent: consentControls,
    list: listControls, segment: segmentControls,
  }[kind];
  const kindSelect = select(KINDS.map((k) => [k, config.kindLabels[k]]), kind, (newKind) => {
    node.leaf = newLeaf(newKind);
    node.custom = false;
    changed(true);
  }, { key: `${path}:kind`, label: L.kind, className: "rule-kind" });
  const classes = node.negated ? "rule-condition is-negated" : "rule-condition";
  return h("div", { class: classes, "data-path": inner, "data-kind": kind },
    h("div", { class: "rule-line" },
      notToggle(node, `${path}:not`),
      kind === "raw" ? h("code", { class: "rule-raw" }, JSON.stringify(node.leaf)) : kindSelect,
      controls ? controls(node, path) : null,
      removeButton(L.removeCondition, () => removeFrom(parent, node), `${path}:remove`)),
    kind === "event" ? eventDetails(node.leaf, inner, path) : null);
}

function attributeControls(node, path) {
  const leaf = node.leaf;
  const known = fieldsByName.get(leaf.attr);
  const custom = node.custom || !known;
  const type = custom ? "any" : known.type;
  const option = (field) => h("option", { value: field.name }, field.label);
  const seen = config.fields.filter((field) => !field.builtin);
  const fieldSelect = h("select", {
    class: "rule-field", "data-key": `${path}:field`, "aria-label": L.field,
    onchange: (e) => {
      const name = e.target.value;
      node.custom = name === OTHER;
      leaf.attr = node.custom ? "" : name;
      const newType = node.custom ? "any" : fieldsByName.get(name).type;
      const op = config.opsByType[newType].includes(leaf.op) ? leaf.op : firstOp(newType);
      if (valueKind(type, leaf.op) !== valueKind(newType, op)) delete leaf.value;
      setOp(leaf, op, newType);
      changed(true);
    },
  },
  seen.length ? h("optgroup", { label: L.seenAttributes }, seen.map(option)) : null,
  h("optgroup", { label: L.builtinFields }, config.fields.filter((field) => field.builtin).map(option)),
  h("option", { value: OTHER }, L.otherAttribute));
  fieldSelect.value = custom ? OTHER : leaf.attr;
  return [
    fieldSelect,
    custom
      ? input("text", leaf.attr, (name) => { leaf.attr = name.trim(); changed(false); },
        { key: `${path}:name`, label: L.attributeName, placeholder: L.attributeName, className: "rule-name" })
      : h("span", { class: "rule-type", title: L.field }, config.typeLabels[type]),
    ...comparisonControls(leaf, type, path),
  ];
}

function comparisonControls(condition, type, path) {
  const ops = config.opsByType[type];
  return [
    select(ops.map((op) => [op, config.opLabels[op]]), condition.op,
      (op) => { setOp(condition, op, type); changed(true); },
      { key: `${path}:op`, label: L.op, className: "rule-op" }),
    ...valueControls(condition, type, path),
  ];
}

function valueControls(condition, type, path) {
  const key = `${path}:value`;
  const set = (value) => { condition.value = value; changed(false); };
  const kind = valueKind(type, condition.op);
  if (kind === "none") return [];
  if (kind === "number") {
    const number = input("number", condition.value, (text) => set(text === "" ? null : Number(text)),
      { key, label: L.value, step: "any", className: "rule-number" });
    return condition.op === "within_last_days" ? [number, words(L.days)] : [number];
  }
  if (kind === "boolean") {
    return [select([["true", L.yes], ["false", L.no]], String(condition.value),
      (text) => { condition.value = text === "true"; changed(true); }, { key, label: L.value })];
  }
  if (kind === "date") {
    // A date picker for plain dates; a full ISO date-time from the API stays editable text.
    const plain = condition.value === "" || /^\d{4}-\d{2}-\d{2}$/.test(condition.value ?? "");
    return [input(plain ? "date" : "text", condition.value, set,
      { key, label: L.value, className: "rule-date" })];
  }
  if (kind === "list") {
    const text = Array.isArray(condition.value) ? condition.value.join(", ") : "";
    return [input("text", text, (typed) => set(typed.split(",").map((item) => item.trim())
      .filter((item) => item !== "").map((item) => listItem(item, type))),
    { key, label: L.listValue, placeholder: L.listValue, className: "rule-value" })];
  }
  const shown = condition.value === null || condition.value === undefined ? "" : String(condition.value);
  return [input("text", shown, (typed) => set(kind === "auto" ? autoTyped(typed) : typed),
    { key, label: L.value, placeholder: L.value, className: "rule-value" })];
}

function eventControls(node, path) {
  const leaf = node.leaf;
  const custom = node.custom || !config.events.includes(leaf.event);
  const controls = [];
  if (config.events.length) {
    controls.push(select([...config.events.map((name) => [name, name]), [OTHER, L.otherEvent]],
      custom ? OTHER : leaf.event, (name) => {
        node.custom = name === OTHER;
        leaf.event = node.custom ? "" : name;
        changed(true);
      }, { key: `${path}:event`, label: L.eventName, className: "rule-event" }));
  }
  if (custom) {
    controls.push(input("text", leaf.event, (name) => { leaf.event = name.trim(); changed(false); },
      { key: `${path}:event-name`, label: L.eventName,
        placeholder: config.events.length ? L.eventName : L.noEventsSeen, className: "rule-name" }));
  }
  const count = isObject(leaf.count) ? leaf.count : { gte: 1 };
  // A count with two ops ({"gte": 2, "lte": 5}, from the API) shows its first; it is kept
  // as it is until changed here.
  const [countOp, countNumber] = Object.entries(count)[0] ?? ["gte", 1];
  controls.push(
    select(Object.entries(config.countOpLabels), countOp, (op) => {
      leaf.count = { [op]: Object.values(leaf.count ?? {})[0] ?? countNumber };
      changed(true);
    }, { key: `${path}:count-op`, label: L.countOp, className: "rule-count-op" }),
    input("number", countNumber, (text) => {
      leaf.count = { [countOp]: text === "" ? null : Number(text) };
      changed(false);
    }, { key: `${path}:count`, label: L.countOp, min: "0", step: "1", className: "rule-number" }),
    words(L.times),
  );
  return controls;
}

// The second line of an event condition: the time window and the property conditions.
function eventDetails(leaf, inner, path) {
  const timeWindow = h("div", { class: "rule-line rule-window" },
    words(L.inTheLast),
    input("number", leaf.within_days, (text) => {
      if (text === "") delete leaf.within_days;
      else leaf.within_days = Number(text);
      changed(false);
    }, {
      key: `${path}:within`, label: L.withinDays, placeholder: L.anyTime,
      min: "1", step: "1", className: "rule-number",
    }),
    words(L.days));
  const conditions = Array.isArray(leaf.where) ? leaf.where : [];
  const rows = conditions.map((condition, index) => {
    const rowPath = `${path}:where${index}`;
    return h("div", { class: "rule-line rule-where-row", "data-path": `${inner}.where[${index}]` },
      words(index === 0 ? L.where : L.and),
      input("text", condition.prop, (name) => { condition.prop = name.trim(); changed(false); },
        { key: `${rowPath}:prop`, label: L.propertyName, placeholder: L.propertyName,
          className: "rule-name" }),
      ...comparisonControls(condition, "any", rowPath),
      removeButton(L.removeProperty, () => {
        conditions.splice(index, 1);
        if (!conditions.length) delete leaf.where;
        changed(true);
      }, `${rowPath}:remove`));
  });
  return h("div", { class: "rule-where" }, timeWindow, rows,
    h("button", {
      type: "button", class: "link small rule-add-property", "data-key": `${path}:add-property`,
      onclick: () => {
        leaf.where = [...conditions, { prop: "", op: "eq", value: "" }];
        changed(true);
      },
    }, `+ ${L.addProperty}`));
}

function consentControls(node, path) {
  const leaf = node.leaf;
  return [
    select(config.channels, leaf.consent, (channel) => { leaf.consent = channel; changed(true); },
      { key: `${path}:channel`, label: L.channel }),
    words(L.consentIs),
    select(config.statuses, leaf.status ?? "subscribed", (status) => { leaf.status = status; changed(true); },
      { key: `${path}:status`, label: L.status }),
  ];
}

function referenceControls(leaf, key, options, emptyLabel, lead, label, path) {
  if (!options.length) return [words(lead), h("span", { class: "muted" }, emptyLabel)];
  return [
    words(lead),
    select(options.map(({ slug, name }) => [slug, name]), leaf[key],
      (slug) => { leaf[key] = slug; changed(true); }, { key: `${path}:${key}`, label }),
  ];
}

function listControls(node, path) {
  return referenceControls(node.leaf, "list", config.lists, L.noLists, L.inList, L.list, path);
}

function segmentControls(node, path) {
  return referenceControls(node.leaf, "segment", config.segments, L.noSegments, L.inSegment, L.segment, path);
}

// Start ---------------------------------------------------------------------------------

function start() {
  let rule;
  try {
    rule = JSON.parse(ruleInput.value || '{"all": []}');
  } catch {
    rule = { all: [] }; // the refused text is named among the form's problems
  }
  root = parse(rule);
  if (root.type !== "group") root = { type: "group", mode: "all", negated: false, children: [root] };
  render();
  jsonView.textContent = JSON.stringify(serialize(root), null, 2);
  document.body.addEventListener("htmx:afterSwap", markProblems);
}

start();
