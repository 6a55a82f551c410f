// The lineage page: upstream and downstream of an entity, drawn with Cytoscape.js from Atlas REST v2
// alone (quick search, /v2/lineage, entity headers), so it reads a real Atlas as well as the embedded
// service. Sources on the left, sinks on the right; clicking an entity adds its own neighbours.
"use strict";

const API = "/api/atlas/v2";
const graphBox = document.getElementById("graph");
const statusLine = document.getElementById("status");
const known = new Map();   // guid -> AtlasEntityHeader
const expanded = new Set();
let baseGuid = null;

async function atlas(path) {
  const response = await fetch(API + path, {headers: {Accept: "application/json"}});
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.errorMessage || `${response.status} ${response.statusText}`);
  return body;
}

// Entity types that are Processes (Process and every type deriving from it), from the typedefs: lineage
// headers do not say which end of a relation is the process.
const processTypes = atlas("/types/typedefs?type=entity").then(defs => {
  const supers = new Map(defs.entityDefs.map(d => [d.name, d.superTypes || []]));
  const derives = name => name === "Process" || (supers.get(name) || []).some(derives);
  return new Set([...supers.keys()].filter(derives));
});

const cy = cytoscape({
  container: graphBox,
  wheelSensitivity: 0.3,
  maxZoom: 1.6,
  style: [
    {selector: "node", style: {
      "shape": "round-rectangle", "width": "data(width)", "height": "data(height)",
      "label": "data(label)", "text-wrap": "wrap", "text-valign": "center", "text-halign": "center",
      "font-size": 11, "background-color": "#dbe9f7", "border-width": 1, "border-color": "#1a5fb4",
      "color": "#1b1b1b"}},
    {selector: "node.process", style: {"shape": "cut-rectangle", "background-color": "#fde7c8",
                                       "border-color": "#c66a00"}},
    {selector: "node.deleted", style: {"background-color": "#eeeeee", "border-color": "#999999",
                                       "border-style": "dashed", "color": "#888888"}},
    {selector: "node.base", style: {"border-width": 3, "border-color": "#222222"}},
    {selector: "node:selected", style: {"overlay-color": "#1a5fb4", "overlay-opacity": 0.15}},
    {selector: "edge", style: {"curve-style": "bezier", "target-arrow-shape": "triangle", "width": 1.5,
                               "line-color": "#8a8a8a", "target-arrow-color": "#8a8a8a"}},
    {selector: "edge.deleted", style: {"line-style": "dashed", "line-color": "#c8c8c8",
                                       "target-arrow-color": "#c8c8c8"}},
  ],
});

function box(text) {
  // The node's size from its text (11px labels): Cytoscape's "width: label" is measured too late for
  // its visibility cache, which then hides the nodes.
  const lines = text.split("\n");
  return {label: text, width: Math.max(...lines.map(l => l.length)) * 6.4 + 18, height: lines.length * 14 + 14};
}

function label(header) {
  const name = header.displayText || header.attributes.qualifiedName;
  return `${name}\n${header.typeName}${header.status === "DELETED" ? " (deleted)" : ""}`;
}

async function merge(lineage) {
  const processes = await processTypes;
  for (const [guid, header] of Object.entries(lineage.guidEntityMap || {})) {
    known.set(guid, header);
    const classes = [processes.has(header.typeName) ? "process" : "dataset",
                     header.status === "DELETED" ? "deleted" : "", guid === baseGuid ? "base" : ""]
      .filter(Boolean).join(" ");
    const node = cy.getElementById(guid);
    if (node.nonempty()) {
      node.data(box(label(header)));
      node.classes(classes);
    } else {
      cy.add({group: "nodes", data: {id: guid, ...box(label(header))}, classes});
    }
  }
  for (const r of lineage.relations || []) {
    const id = `${r.fromEntityId}>${r.toEntityId}`;
    if (cy.getElementById(id).empty() && known.has(r.fromEntityId) && known.has(r.toEntityId)) {
      const ends = [known.get(r.fromEntityId), known.get(r.toEntityId)];
      cy.add({group: "edges", data: {id, source: r.fromEntityId, target: r.toEntityId,
                                      relationshipId: r.relationshipId},
              classes: ends.some(h => h.status === "DELETED") ? "deleted" : ""});
    }
  }
  layout();
}

function layout() {
  // Layers left to right: a node sits one layer after the furthest of its inputs (longest path), so
  // source datasets are on the left and predictions on the right. Cycles (rare) are cut where found.
  const layer = new Map();
  const incoming = new Map(cy.nodes().map(n => [n.id(), n.incomers("edge").map(e => e.source().id())]));
  const visiting = new Set();
  const depthOf = id => {
    if (layer.has(id)) return layer.get(id);
    if (visiting.has(id)) return 0;
    visiting.add(id);
    const value = Math.max(-1, ...incoming.get(id).map(depthOf)) + 1;
    visiting.delete(id);
    layer.set(id, value);
    return value;
  };
  cy.nodes().forEach(n => depthOf(n.id()));
  const columns = new Map();
  cy.nodes().sort((a, b) => a.data("label").localeCompare(b.data("label"))).forEach(n => {
    const column = layer.get(n.id());
    if (!columns.has(column)) columns.set(column, []);
    columns.get(column).push(n);
  });
  const positions = {};
  for (const [column, nodes] of columns) {
    nodes.forEach((n, row) => { positions[n.id()] = {x: column * 230, y: (row - (nodes.length - 1) / 2) * 70}; });
  }
  cy.layout({name: "preset", positions: node => positions[node.id()], fit: true, padding: 30, animate: false}).run();
  graphBox.dataset.nodes = cy.nodes().length;
  graphBox.dataset.edges = cy.edges().length;
  graphBox.dataset.deleted = cy.nodes(".deleted").length;
  graphBox.dataset.expanded = expanded.size;
  graphBox.dataset.base = baseGuid || "";
  graphBox.dataset.columns = columns.size;
  graphBox.dataset.labels = JSON.stringify(cy.nodes().map(n => known.get(n.id()).attributes.qualifiedName).sort());
}

function depth() {
  return Math.max(1, Math.min(10, parseInt(document.getElementById("depth").value, 10) || 3));
}

async function openEntity(guid) {
  cy.elements().remove();
  known.clear();
  expanded.clear();
  baseGuid = guid;
  statusLine.textContent = "loading lineage...";
  try {
    const lineage = await atlas(`/lineage/${encodeURIComponent(guid)}?direction=BOTH&depth=${depth()}`);
    expanded.add(guid);
    await merge(lineage);
    const base = known.get(guid);
    statusLine.textContent = `${base.displayText} (${base.typeName}): ${cy.nodes().length} entities, ` +
      `${cy.edges().length} relations at depth ${depth()}; click an entity to add its neighbours`;
    history.replaceState(null, "", `?guid=${encodeURIComponent(guid)}&depth=${depth()}`);
    show(guid);
  } catch (err) {
    statusLine.textContent = `lineage of ${guid}: ${err.message}`;
  }
}

async function expand(guid) {
  show(guid);
  if (expanded.has(guid)) return;
  expanded.add(guid);
  try {
    await merge(await atlas(`/lineage/${encodeURIComponent(guid)}?direction=BOTH&depth=1`));
    statusLine.textContent = `added the neighbours of ${known.get(guid).displayText}: ${cy.nodes().length} ` +
      `entities, ${cy.edges().length} relations`;
  } catch (err) {
    statusLine.textContent = `lineage of ${guid}: ${err.message}`;
  }
}

function show(guid) {
  const header = known.get(guid);
  const details = document.getElementById("details");
  details.replaceChildren();
  const row = (term, value, cls) => {
    const dt = document.createElement("dt");
    dt.textContent = term;
    const dd = document.createElement("dd");
    dd.textContent = value;
    if (cls) dd.className = cls;
    details.append(dt, dd);
  };
  row("name", header.displayText, header.status === "DELETED" ? "deleted" : "");
  row("type", header.typeName);
  row("qualifiedName", header.attributes.qualifiedName);
  row("status", header.status);
  if (header.classificationNames && header.classificationNames.length) row("classifications", header.classificationNames.join(", "));
  if (header.meaningNames && header.meaningNames.length) row("terms", header.meaningNames.join(", "));
  row("guid", guid);
  const dd = document.createElement("dd");
  const link = document.createElement("a");
  link.href = `${API}/entity/guid/${encodeURIComponent(guid)}`;
  link.textContent = "entity (JSON)";
  const center = document.createElement("a");
  center.href = `?guid=${encodeURIComponent(guid)}&depth=${depth()}`;
  center.textContent = "centre the graph here";
  dd.append(link, " · ", center);
  details.append(dd);
}

async function search(text) {
  const results = document.getElementById("results");
  results.replaceChildren();
  try {
    const found = await atlas(`/search/quick?query=${encodeURIComponent(text)}&limit=25`);
    const headers = (found.searchResults && found.searchResults.entities) || [];
    results.dataset.results = headers.length;
    for (const header of headers) {
      const item = document.createElement("li");
      item.textContent = `${header.displayText} (${header.typeName})`;
      if (header.status === "DELETED") item.className = "deleted";
      item.addEventListener("click", () => openEntity(header.guid));
      results.append(item);
    }
    if (!headers.length) statusLine.textContent = `nothing found for "${text}"`;
    return headers;
  } catch (err) {
    statusLine.textContent = `search: ${err.message}`;
    return [];
  }
}

cy.on("tap", "node", event => expand(event.target.id()));
document.getElementById("search").addEventListener("submit", async event => {
  event.preventDefault();
  const text = document.getElementById("query").value.trim();
  if (!text) return;
  const headers = await search(text);
  // An exact name opens at once: /lineage/?q=mlstream.predictions shows that topic's graph.
  const exact = headers.find(h => h.displayText === text || h.attributes.qualifiedName === text
                                  || h.attributes.qualifiedName.split("@")[0] === text);
  if (exact) openEntity(exact.guid);
});

window.lineage = {cy, known, expanded, openEntity, expand, search};  // for the browser test and the curious

const params = new URLSearchParams(location.search);
if (params.get("depth")) document.getElementById("depth").value = params.get("depth");
if (params.get("guid")) {
  openEntity(params.get("guid"));
} else if (params.get("q")) {
  document.getElementById("query").value = params.get("q");
  document.getElementById("search").requestSubmit();
}
