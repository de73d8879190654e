// The search page: three searches (keyword, dense, hybrid) side by side over one collection.
// Everything from the server is inserted with textContent, never as HTML.
"use strict";

const MODES = ["keyword", "dense", "hybrid"];
const SCORE_LABEL = { keyword: "bm25", dense: "cos", hybrid: "fused" };
const KEY_STORE = "nearspace-api-key";
const $ = (sel) => document.querySelector(sel);
const form = $("#search"), query = $("#q"), picker = $("#collection"), depth = $("#k");
const statusLine = $("#status"), keyPanel = $("#key-panel"), columns = $("#columns");

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(path, body) {
  const headers = { "Accept": "application/json" };
  const key = localStorage.getItem(KEY_STORE);
  if (key) headers["Authorization"] = `Bearer ${key}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method: body === undefined ? "GET" : "POST", headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const payload = await response.json().catch(() => ({}));
  if (!response.ok) {
    const message = (payload.error && payload.error.message) || `HTTP ${response.status}`;
    throw new ApiError(response.status, message);
  }
  return payload;
}

function say(text, isError = false) {
  statusLine.textContent = text;
  statusLine.classList.toggle("error", isError);
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

async function loadCollections(wanted) {
  const { collections } = await api("/v1/collections");
  picker.replaceChildren();
  for (const c of collections) {
    const option = el("option", "", `${c.name} (${c.count})`);
    option.value = c.name;
    picker.append(option);
  }
  if (wanted && collections.some((c) => c.name === wanted)) picker.value = wanted;
  if (!collections.length) {
    say("This store has no collections yet: run `nearspace index FILE` or POST documents to " +
        "/v1/collections/NAME/documents.");
  }
  return collections;
}

// Where each document sits in each mode: its position in that column, or the rank the
// hybrid search reports for its dense/keyword candidate lists (they reach 100 deep).
function rankTable(results) {
  const table = new Map();
  const note = (id, mode, rank) => {
    if (rank == null) return;
    const row = table.get(id) || {};
    if (row[mode] == null) row[mode] = rank;
    table.set(id, row);
  };
  for (const mode of MODES) results[mode].forEach((hit, i) => note(hit.id, mode, i + 1));
  for (const hit of results.hybrid) for (const [mode, rank] of Object.entries(hit.ranks)) note(hit.id, mode, rank);
  return table;
}

function metaLine(hit) {
  const parts = [hit.id];
  for (const [key, value] of Object.entries(hit.metadata || {}).slice(0, 4)) {
    const shown = typeof value === "object" ? JSON.stringify(value) : String(value);
    parts.push(`${key}: ${shown.length > 40 ? shown.slice(0, 39) + "…" : shown}`);
  }
  return parts.join(" · ");
}

function render(results, k) {
  const ranks = rankTable(results);
  for (const mode of MODES) {
    const list = columns.querySelector(`.column[data-mode="${mode}"] .hits`);
    list.replaceChildren();
    if (!results[mode].length) list.append(el("li", "empty", "No results."));
    results[mode].forEach((hit, i) => {
      const item = el("li", "hit");
      item.dataset.id = hit.id;
      item.tabIndex = 0;
      const head = el("div", "hit-head");
      head.append(el("span", "rank", String(i + 1)), el("span", "title", hit.title || hit.id),
                  el("span", "score", `${SCORE_LABEL[mode]} ${hit.score.toFixed(mode === "keyword" ? 2 : 3)}`));
      const badges = el("div", "badges");
      const known = ranks.get(hit.id) || {};
      for (const other of MODES) {
        const rank = known[other];
        const badge = el("span", `badge ${rank == null ? "absent" : other}`,
                         rank == null ? `${other} –` : `${other} #${rank}`);
        badge.title = rank == null ? `not in ${other}'s top ${k}` : `${other} ranks it #${rank}`;
        badges.append(badge);
      }
      const snippet = (hit.text || "").replace(/\s+/g, " ").trim();
      item.append(head, badges, el("p", "snippet", snippet.length > 320 ? snippet.slice(0, 319) + "…" : snippet),
                  el("div", "meta", metaLine(hit)));
      list.append(item);
    });
  }
}

async function run() {
  const q = query.value.trim(), collection = picker.value, k = Number(depth.value) || 10;
  if (!q || !collection) return;
  const params = new URLSearchParams({ collection, q });
  if (k !== 10) params.set("k", String(k));
  history.replaceState(null, "", `/?${params}`);
  document.title = `${q} · nearspace`;
  say("Searching…");
  const started = performance.now();
  try {
    const lists = await Promise.all(MODES.map((mode) =>
      api(`/v1/collections/${encodeURIComponent(collection)}/search`, { query: q, k, mode })));
    const results = Object.fromEntries(MODES.map((mode, i) => [mode, lists[i].results]));
    render(results, k);
    columns.dataset.ready = "true";
    lastHits = results.hybrid.map((hit) => hit.id);
    highlightMap();
    ask(collection, q);
    say(`“${q}” in ${collection}: top ${k} per mode, three searches in ${Math.round(performance.now() - started)} ms. ` +
        "Hover or tap a result to find it in the other columns.");
  } catch (error) {
    handle(error);
  }
}

// -- ask: passages with citations for the same query ---------------------------------------------------
const askPanel = $("#ask"), answerList = $("#answer"), passageList = $("#passages");

async function ask(collection, question) {
  try {
    const answer = await api(`/v1/collections/${encodeURIComponent(collection)}/ask`, { question, k: 3 });
    answerList.replaceChildren();
    passageList.replaceChildren();
    for (const sentence of answer.answer_sentences) {
      const item = el("li", "", sentence.text);
      item.append(el("span", "cite", `[${sentence.citation}]`));
      answerList.append(item);
    }
    for (const passage of answer.passages) {
      const text = passage.text.length > 400 ? passage.text.slice(0, 399) + "…" : passage.text;
      const item = el("li", "", text);
      item.append(el("span", "cite", `[${passage.citation}]`));
      passageList.append(item);
    }
    askPanel.hidden = !answer.passages.length;
  } catch (error) {
    askPanel.hidden = true;  // the search columns still stand on their own
  }
}

// -- map: every document in 2-D, this search's results outlined -----------------------------------------
const SVG = "http://www.w3.org/2000/svg";
const mapButton = $("#show-map"), mapView = $("#map-view"), svg = $("#map-svg");
let mapData = null, lastHits = [];

function svgEl(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  return node;
}

async function drawMap() {
  const collection = picker.value;
  if (!collection) return;
  mapButton.disabled = true;
  mapButton.textContent = "Drawing…";
  try {
    mapData = await api(`/v1/collections/${encodeURIComponent(collection)}/map`);
    const colors = Object.fromEntries(mapData.legend.map((entry) => [entry.name, entry.color]));
    const xs = mapData.points.map((p) => p.x), ys = mapData.points.map((p) => p.y);
    const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
    const sx = (x) => 40 + (920 * (x - x0)) / (x1 - x0 || 1), sy = (y) => 600 - (560 * (y - y0)) / (y1 - y0 || 1);
    svg.replaceChildren();
    const radius = mapData.points.length > 2000 ? 3 : 7;
    for (const point of mapData.points) {
      const dot = svgEl("circle", { cx: sx(point.x).toFixed(1), cy: sy(point.y).toFixed(1), r: radius,
                                    fill: colors[point.label] || "#999" });
      dot.dataset.id = point.id;
      const tip = svgEl("title", {});
      tip.textContent = `${point.id}${point.label ? " · " + point.label : ""}`;
      dot.append(tip);
      svg.append(dot);
    }
    const legend = $("#legend");
    legend.replaceChildren();
    for (const entry of mapData.legend) {
      const item = el("li", "", `${entry.name} (${entry.count})`);
      const swatch = el("span");
      swatch.style.background = entry.color;
      item.prepend(swatch);
      legend.append(item);
    }
    mapView.hidden = false;
    mapButton.hidden = true;
    highlightMap();
  } catch (error) {
    say(error.message || String(error), true);
  } finally {
    mapButton.disabled = false;
    mapButton.textContent = "Draw the map";
  }
}

function highlightMap() {
  if (!mapData) return;
  for (const label of svg.querySelectorAll("text")) label.remove();
  const rankOf = new Map(lastHits.map((id, i) => [id, i + 1]));
  for (const dot of svg.querySelectorAll("circle")) {
    const rank = rankOf.get(dot.dataset.id);
    dot.classList.toggle("hit", rank !== undefined);
    if (rank !== undefined) {
      svg.append(dot);  // outlined results are drawn on top
      if (rank <= 5) {
        const label = svgEl("text", { x: Number(dot.getAttribute("cx")) + 10, y: Number(dot.getAttribute("cy")) - 10 });
        label.textContent = String(rank);
        svg.append(label);
      }
    }
  }
  $("#map-note").textContent = lastHits.length
    ? `${mapData.points.length} documents (${mapData.method.toUpperCase()}). Outlined: this search's hybrid results, ` +
      "the top five numbered by rank."
    : `${mapData.points.length} documents (${mapData.method.toUpperCase()}).`;
}

mapButton.addEventListener("click", drawMap);

function handle(error) {
  if (error instanceof ApiError && error.status === 401) {
    keyPanel.hidden = false;
    $("#key").focus();
    say(error.message, true);
  } else {
    say(error.message || String(error), true);
  }
}

// the same document lights up in every column
columns.addEventListener("pointerover", (event) => link(event.target.closest(".hit")));
columns.addEventListener("focusin", (event) => link(event.target.closest(".hit")));
columns.addEventListener("pointerleave", () => link(null));
function link(hit) {
  for (const node of columns.querySelectorAll(".hit.linked")) node.classList.remove("linked");
  if (!hit) return;
  for (const node of columns.querySelectorAll(".hit")) {
    if (node.dataset.id === hit.dataset.id) node.classList.add("linked");
  }
}

// phones show one mode at a time
for (const tab of document.querySelectorAll(".tabs button")) {
  tab.addEventListener("click", () => {
    columns.dataset.active = tab.dataset.tab;
    for (const other of document.querySelectorAll(".tabs button")) {
      other.setAttribute("aria-selected", String(other === tab));
    }
  });
}

form.addEventListener("submit", (event) => { event.preventDefault(); run(); });
picker.addEventListener("change", () => {
  mapData = null;
  mapView.hidden = true;
  mapButton.hidden = false;
  if (query.value.trim()) run();
});
depth.addEventListener("change", () => { if (query.value.trim()) run(); });
keyPanel.addEventListener("submit", async (event) => {
  event.preventDefault();
  localStorage.setItem(KEY_STORE, $("#key").value.trim());
  keyPanel.hidden = true;
  await start();
});

async function start() {
  const params = new URLSearchParams(location.search);
  if (params.get("q")) query.value = params.get("q");
  if (["5", "10", "20"].includes(params.get("k"))) depth.value = params.get("k");
  try {
    const collections = await loadCollections(params.get("collection"));
    if (params.get("collection") && picker.value !== params.get("collection")) {
      say(`There is no collection “${params.get("collection")}” in this store.`, true);
      return;
    }
    if (query.value.trim() && collections.length) await run();
    else if (collections.length) say("Type a query: keyword, dense and hybrid results appear side by side.");
  } catch (error) {
    handle(error);
  }
}

start();
