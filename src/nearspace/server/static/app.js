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
    say(`“${q}” in ${collection}: top ${k} per mode, three searches in ${Math.round(performance.now() - started)} ms. ` +
        "Hover a result to find it in the other columns.");
  } catch (error) {
    handle(error);
  }
}

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
picker.addEventListener("change", () => { if (query.value.trim()) run(); });
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
