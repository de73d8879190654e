"""Maps of a collection: a 2-D projection coloured by cluster, label or a metadata field.

Two renderings of the same points:

* HTML: one self-contained file (inline data, script and styles; no network) drawing on a
  canvas, with hover tooltips showing the text, wheel zoom, drag to pan, a search box that
  highlights matching documents and a legend that hides categories. ``#q=word`` in the URL
  pre-fills the search, ``#focus=ID`` shows one document's tooltip.
* PNG / PDF / SVG: a publication-ready matplotlib figure.
"""
from __future__ import annotations

import html
import json
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from nearspace.analyze.data import CollectionView, load_collection
from nearspace.errors import InputError

#: 20 distinguishable colours (tab10 without its grey, then lighter and darker companions)
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
           "#393b79", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#9edae5",
           "#dbdb8d", "#637939")
GREY = "#b4b4b4"
#: viridis at five stops, for numeric fields
GRADIENT = ("#440154", "#3b528b", "#21918c", "#5ec962", "#fde725")
FORMATS = (".html", ".png", ".pdf", ".svg")
NONE_LABEL = "(none)"


@dataclass
class MapData:
    """Points to draw: coordinates, what to show on hover, and a colour per point."""

    ids: list[str]
    texts: list[str]
    xy: np.ndarray
    color_by: str
    categories: list[str] | None      # one category name per point (categorical colouring)
    legend: list[dict[str, Any]]       # [{"name", "color", "count"}] in legend order
    values: list[float | None] | None  # numeric colouring
    title: str
    axis: str

    def colors(self) -> list[str]:
        if self.values is not None:
            lo, hi = _range(self.values)
            return [GREY if v is None else _gradient((v - lo) / (hi - lo) if hi > lo else 0.5) for v in self.values]
        if self.categories is None:
            return [PALETTE[0]] * len(self.ids)
        lookup = {entry["name"]: entry["color"] for entry in self.legend}
        return [lookup[c] for c in self.categories]

    def __repr__(self) -> str:  # the generated one would print every text and coordinate
        return f"MapData({len(self.ids)} points, {self.axis}, coloured by {self.color_by!r}, title={self.title!r})"

    def page(self, *, max_text: int | None = None) -> str:
        """The self-contained HTML page of this map (``render_html``)."""
        return render_html(self) if max_text is None else render_html(self, max_text=max_text)

    def _repr_html_(self) -> str:
        """Jupyter: the interactive HTML map in an iframe (self-contained, no network)."""
        from nearspace.integrations.notebook import map_html

        return map_html(self)


def _range(values: Sequence[float | None]) -> tuple[float, float]:
    present = [v for v in values if v is not None]
    return (min(present), max(present)) if present else (0.0, 1.0)


def _gradient(t: float) -> str:
    t = min(max(t, 0.0), 1.0) * (len(GRADIENT) - 1)
    i = min(int(t), len(GRADIENT) - 2)
    a, b = (tuple(int(c[k:k + 2], 16) for k in (1, 3, 5)) for c in GRADIENT[i:i + 2])
    return "#" + "".join(f"{round(x + (y - x) * (t - i)):02x}" for x, y in zip(a, b))


def categorical(values: Sequence[Any], *, names: dict[Any, str] | None = None, max_colors: int = len(PALETTE),
                grey: Sequence[Any] = ()) -> tuple[list[str], list[dict[str, Any]]]:
    """Category per point and a legend: the most frequent categories get colours, the rest 'other'."""
    names = names or {}
    shown = [names.get(v, NONE_LABEL if v is None else str(v)) for v in values]
    counts = Counter(shown)
    grey_names = {names.get(g, str(g)) for g in grey} | {NONE_LABEL}
    ranked = [c for c, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if c not in grey_names]
    coloured = ranked[:max_colors]
    keep = set(coloured)
    if len(ranked) > max_colors:
        shown = [s if s in keep or s in grey_names else "other" for s in shown]
        counts = Counter(shown)
    legend = [{"name": c, "color": PALETTE[i], "count": counts[c]} for i, c in enumerate(coloured)]
    legend += [{"name": c, "color": GREY, "count": counts[c]} for c in sorted(set(shown) - keep)]
    return shown, legend


def build_map(collection, *, method: str = "pca", color_by: str = "cluster", title: str | None = None,
              seed: int = 0, view: CollectionView | None = None) -> MapData:
    """Project a collection and colour it by ``cluster``, ``label``, ``none`` or a metadata field."""
    from nearspace.analyze.projection import project

    view = view or load_collection(collection)
    xy = project(view.vectors, method, seed=seed)
    categories = values = None
    legend: list[dict[str, Any]] = []
    if color_by == "cluster":
        from nearspace.analyze.cluster import NOISE, cluster_collection, load_clustering

        clustering = load_clustering(collection) if collection is not None else None
        if clustering is None or set(clustering.ids) != set(view.ids):
            clustering = cluster_collection(collection, view=view, seed=seed, save=False)
        by_id = clustering.by_id()
        names = {c.id: c.label for c in clustering.clusters}
        categories, legend = categorical([by_id[i] for i in view.ids], names=names, grey=(NOISE,))
    elif color_by != "none":
        raw = view.field(color_by)
        if all(v is None for v in raw):
            raise InputError(f"no document in {view.name!r} has a '{color_by}' metadata field to colour by "
                             "(use cluster, label, none or an existing field)")
        numbers = [v for v in raw if v is not None]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in numbers) \
                and len(set(numbers)) > 12:
            values = [None if v is None else float(v) for v in raw]
        else:
            categories, legend = categorical([v if not isinstance(v, (list, dict)) else json.dumps(v) for v in raw])
    # an item of your own vectors has no text: its hover shows the metadata instead
    texts = [(f"{t}\n{x}" if t else x) if (t or x).strip() else (json.dumps(m, ensure_ascii=False) if m else "")
             for t, x, m in zip(view.titles, view.texts, view.metadatas)]
    return MapData(view.ids, texts, xy, color_by,
                   categories, legend, values, title or f"{view.name}: {len(view)} documents", method.upper())


def render(data: MapData, out: str | Path) -> Path:
    """Write the map; the format follows the file's suffix (.html, .png, .pdf, .svg)."""
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in FORMATS:
        raise InputError(f"unsupported map format {out.suffix or '(none)'!r}; use {', '.join(FORMATS)}")
    if out.parent and not out.parent.exists():
        raise InputError(f"folder {out.parent} does not exist")
    tmp = out.with_name(f".{out.name}.tmp{suffix}")
    try:
        if suffix == ".html":
            tmp.write_text(render_html(data), encoding="utf-8")
        else:
            render_figure(data, tmp)
        tmp.replace(out)  # a reader never sees half a file
    finally:
        tmp.unlink(missing_ok=True)
    return out


# -- static figure ------------------------------------------------------------------------------
def render_figure(data: MapData, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    n = len(data.ids)
    size = float(np.clip(3000 / max(n, 1), 4, 40))
    colors = data.colors()
    with plt.rc_context({"font.size": 9, "font.family": "DejaVu Sans", "axes.titlesize": 11}):
        fig, ax = plt.subplots(figsize=(8.0, 6.0), dpi=200)
        if data.categories is not None:
            # grey 'other' / '(none)' points first, so the coloured groups are drawn on top
            order = sorted(range(n), key=lambda i: data.categories[i] != "other" and data.categories[i] != NONE_LABEL)
            ax.scatter(data.xy[order, 0], data.xy[order, 1], s=size, c=[colors[i] for i in order],
                       linewidths=0.3, edgecolors="white", alpha=0.9)
            handles = [plt.Line2D([], [], marker="o", linestyle="", markersize=6, markerfacecolor=e["color"],
                                  markeredgecolor="none", label=_shorten(f"{e['name']} ({e['count']})", 42))
                       for e in data.legend]
            ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False,
                      title=data.color_by, fontsize=7, title_fontsize=8, borderaxespad=0)
        else:
            vals = data.values or [0.0] * n
            lo, hi = _range(vals)
            from matplotlib.colors import LinearSegmentedColormap

            cmap = LinearSegmentedColormap.from_list("nearspace", GRADIENT)
            present = np.array([v is not None for v in vals])
            if (~present).any():
                ax.scatter(data.xy[~present, 0], data.xy[~present, 1], s=size, c=GREY, linewidths=0)
            points = ax.scatter(data.xy[present, 0], data.xy[present, 1], s=size,
                                c=[v for v in vals if v is not None], cmap=cmap, vmin=lo, vmax=hi,
                                linewidths=0.3, edgecolors="white")
            if data.values is not None:
                bar = fig.colorbar(points, ax=ax, fraction=0.04, pad=0.02, label=data.color_by)
                if all(float(v).is_integer() for v in vals if v is not None):
                    from matplotlib.ticker import MaxNLocator

                    bar.locator = MaxNLocator(integer=True)  # years and counts: no 2022.5
                    bar.update_ticks()
        ax.set_title(data.title)
        ax.set_xlabel(f"{data.axis} 1")
        ax.set_ylabel(f"{data.axis} 2")
        ax.set_xticks([])
        ax.set_yticks([])  # projected axes have no units worth reading
        for spine in ax.spines.values():
            spine.set_color("#999999")
        fig.tight_layout()
        fig.savefig(out, format=out.suffix.lstrip(".").split(".")[-1] if out.suffix else "png",
                    bbox_inches="tight", facecolor="white")
        plt.close(fig)


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


# -- interactive HTML -----------------------------------------------------------------------------
def render_html(data: MapData, *, max_text: int = 600) -> str:
    xy = np.asarray(data.xy, dtype=np.float64)
    payload: dict[str, Any] = {
        "title": data.title, "axis": data.axis, "colorBy": data.color_by,
        "x": [round(float(v), 5) for v in xy[:, 0]], "y": [round(float(v), 5) for v in xy[:, 1]],
        "ids": data.ids, "texts": [_shorten(t, max_text) for t in data.texts],
        "legend": data.legend, "colors": data.colors(),
        "cat": None, "values": None, "gradient": list(GRADIENT),
    }
    if data.categories is not None:
        index = {e["name"]: i for i, e in enumerate(data.legend)}
        payload["cat"] = [index[c] for c in data.categories]
    if data.values is not None:
        payload["values"] = data.values
        payload["range"] = list(_range(data.values))
    # inside <script type="application/json">, "<" must not appear: "</script>" would end the block
    blob = json.dumps(payload, ensure_ascii=False, allow_nan=False).replace("<", "\\u003c").replace(">", "\\u003e")
    return _HTML.replace("__TITLE__", html.escape(data.title)).replace("__DATA__", blob)


_HTML = r"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>__TITLE__</title>
<style>
  * { box-sizing: border-box; }
  html, body { margin: 0; height: 100%; font: 13px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222; background: #fff; }
  #app { display: grid; grid-template-columns: 1fr 280px; grid-template-rows: auto 1fr; height: 100vh; }
  header { grid-column: 1 / 3; display: flex; gap: 12px; align-items: center; padding: 8px 12px; border-bottom: 1px solid #ddd; }
  header h1 { font-size: 15px; margin: 0; font-weight: 600; flex: 1; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
  #search { width: 260px; padding: 5px 8px; border: 1px solid #bbb; border-radius: 4px; font: inherit; }
  #status { color: #555; min-width: 120px; text-align: right; }
  button { font: inherit; padding: 3px 9px; border: 1px solid #bbb; background: #f7f7f7; border-radius: 4px; cursor: pointer; }
  #plot { position: relative; overflow: hidden; cursor: grab; }
  #plot.dragging { cursor: grabbing; }
  canvas { display: block; width: 100%; height: 100%; }
  #side { border-left: 1px solid #ddd; overflow: auto; padding: 8px 10px; }
  #side h2 { font-size: 12px; text-transform: uppercase; letter-spacing: .04em; color: #666; margin: 4px 0 8px; }
  .item { display: flex; gap: 6px; align-items: flex-start; padding: 2px 0; cursor: pointer; user-select: none; }
  .item.off { opacity: .35; }
  .swatch { flex: none; width: 11px; height: 11px; border-radius: 50%; margin-top: 3px; }
  .count { color: #888; margin-left: auto; padding-left: 6px; }
  #bar { height: 12px; border-radius: 2px; margin: 4px 0; }
  #tip { position: absolute; pointer-events: none; display: none; max-width: 360px; background: rgba(255,255,255,.97);
         border: 1px solid #999; border-radius: 4px; padding: 6px 8px; box-shadow: 0 2px 8px rgba(0,0,0,.15); font-size: 12px; white-space: pre-wrap; }
  #tip b { display: block; margin-bottom: 2px; }
  #tip .cat { color: #666; font-size: 11px; margin-bottom: 3px; }
  #help { color: #888; font-size: 11px; margin-top: 14px; }
</style>
</head>
<body>
<div id="app">
  <header>
    <h1 id="title"></h1>
    <input id="search" type="search" placeholder="Search texts and ids…" aria-label="search">
    <span id="status"></span>
    <button id="reset" title="Reset zoom (double-click also resets)">Reset</button>
  </header>
  <div id="plot"><canvas id="canvas"></canvas><div id="tip"></div></div>
  <aside id="side"><h2 id="legend-title"></h2><div id="legend"></div>
    <div id="help">Scroll to zoom, drag to pan, hover for the text. Click a legend entry to hide it.</div></aside>
</div>
<noscript>This map needs JavaScript.</noscript>
<script type="application/json" id="map-data">__DATA__</script>
<script>
"use strict";
window.onerror = function (msg) { document.body.dataset.error = String(msg); };
(function () {
  const D = JSON.parse(document.getElementById("map-data").textContent);
  const n = D.ids.length;
  const canvas = document.getElementById("canvas"), plot = document.getElementById("plot");
  const tip = document.getElementById("tip"), status = document.getElementById("status");
  const search = document.getElementById("search");
  const ctx = canvas.getContext("2d");
  const lower = D.texts.map((t, i) => (D.ids[i] + " " + t).toLowerCase());
  const hidden = new Set();
  let matches = null, hover = -1, zoom = 1, tx = 0, ty = 0, W = 0, H = 0, scale = 1;
  const radius = n < 200 ? 5 : n < 2000 ? 3.5 : n < 20000 ? 2.2 : 1.5;
  let minX = Infinity, maxX = -Infinity, minY = Infinity, maxY = -Infinity;
  for (let i = 0; i < n; i++) {
    minX = Math.min(minX, D.x[i]); maxX = Math.max(maxX, D.x[i]);
    minY = Math.min(minY, D.y[i]); maxY = Math.max(maxY, D.y[i]);
  }
  const cx = (minX + maxX) / 2, cy = (minY + maxY) / 2;
  const spanX = Math.max(maxX - minX, 1e-9), spanY = Math.max(maxY - minY, 1e-9);
  document.getElementById("title").textContent = D.title;

  function sx(i) { return (D.x[i] - cx) * scale * zoom + W / 2 + tx; }
  function sy(i) { return -(D.y[i] - cy) * scale * zoom + H / 2 + ty; }
  function visible(i) { return D.cat === null || !hidden.has(D.cat[i]); }

  function resize() {
    const dpr = window.devicePixelRatio || 1;
    W = plot.clientWidth; H = plot.clientHeight;
    canvas.width = Math.round(W * dpr); canvas.height = Math.round(H * dpr);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    scale = 0.9 * Math.min(W / spanX, H / spanY);
    draw();
  }

  function dot(i, r) { ctx.beginPath(); ctx.arc(sx(i), sy(i), r, 0, 2 * Math.PI); }

  function draw() {
    ctx.clearRect(0, 0, W, H);
    ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, W, H);
    const dim = matches !== null;
    ctx.globalAlpha = dim ? 0.15 : 0.85;
    for (let i = 0; i < n; i++) {
      if (!visible(i) || (dim && matches.has(i))) continue;
      ctx.fillStyle = D.colors[i]; dot(i, radius); ctx.fill();
    }
    ctx.globalAlpha = 1;
    if (dim) {
      ctx.lineWidth = 1.5; ctx.strokeStyle = "#111";
      for (const i of matches) {
        if (!visible(i)) continue;
        ctx.fillStyle = D.colors[i]; dot(i, radius + 2.5); ctx.fill(); ctx.stroke();
      }
    }
    if (hover >= 0) { ctx.lineWidth = 2; ctx.strokeStyle = "#000"; dot(hover, radius + 4); ctx.stroke(); }
    document.body.dataset.rendered = "ok";
  }

  function categoryName(i) {
    if (D.values !== null) return D.colorBy + ": " + (D.values[i] === null ? "(none)" : D.values[i]);
    if (D.cat !== null) return D.colorBy + " " + D.legend[D.cat[i]].name;
    return "";
  }

  function nearest(px, py, within) {
    let best = -1, bestD = within * within;
    for (let i = 0; i < n; i++) {
      if (!visible(i)) continue;
      const dx = sx(i) - px, dy = sy(i) - py, d = dx * dx + dy * dy;
      if (d <= bestD) { best = i; bestD = d; }
    }
    return best;
  }

  function showTip(i, px, py) {
    hover = i;
    if (i < 0) { tip.style.display = "none"; draw(); return; }
    tip.innerHTML = "";
    const b = document.createElement("b"); b.textContent = D.ids[i]; tip.appendChild(b);
    const c = document.createElement("div"); c.className = "cat"; c.textContent = categoryName(i); tip.appendChild(c);
    tip.appendChild(document.createTextNode(D.texts[i]));
    tip.style.display = "block";
    const left = px + 14 + tip.offsetWidth > W ? px - 14 - tip.offsetWidth : px + 14;
    const top = py + 14 + tip.offsetHeight > H ? Math.max(0, py - 14 - tip.offsetHeight) : py + 14;
    tip.style.left = left + "px"; tip.style.top = top + "px";
    tip.dataset.id = D.ids[i];
    draw();
  }

  function hoverAt(px, py) { const i = nearest(px, py, Math.max(8, radius + 4)); showTip(i, px, py); return i; }

  function setQuery(q) {
    q = q.trim().toLowerCase();
    if (!q) { matches = null; status.textContent = n + " documents"; }
    else {
      matches = new Set();
      for (let i = 0; i < n; i++) if (lower[i].includes(q)) matches.add(i);
      status.textContent = matches.size + " of " + n + " match";
    }
    document.body.dataset.matches = matches === null ? "" : String(matches.size);
    draw();
  }

  function legend() {
    const box = document.getElementById("legend");
    document.getElementById("legend-title").textContent = D.colorBy;
    if (D.values !== null) {
      const bar = document.createElement("div"); bar.id = "bar";
      bar.style.background = "linear-gradient(to right," + D.gradient.join(",") + ")";
      const ends = document.createElement("div"); ends.className = "item";
      ends.innerHTML = "<span></span><span class='count'></span>";
      ends.children[0].textContent = D.range[0]; ends.children[1].textContent = D.range[1];
      box.appendChild(bar); box.appendChild(ends); return;
    }
    D.legend.forEach((e, k) => {
      const row = document.createElement("div"); row.className = "item"; row.dataset.index = k;
      const sw = document.createElement("span"); sw.className = "swatch"; sw.style.background = e.color;
      const name = document.createElement("span"); name.textContent = e.name;
      const count = document.createElement("span"); count.className = "count"; count.textContent = e.count;
      row.append(sw, name, count);
      row.addEventListener("click", () => {
        hidden.has(k) ? hidden.delete(k) : hidden.add(k);
        row.classList.toggle("off", hidden.has(k)); draw();
      });
      box.appendChild(row);
    });
  }

  plot.addEventListener("wheel", (ev) => {
    ev.preventDefault();
    const r = canvas.getBoundingClientRect(), px = ev.clientX - r.left, py = ev.clientY - r.top;
    const factor = Math.exp(-ev.deltaY * 0.0015), next = Math.min(Math.max(zoom * factor, 0.2), 500);
    const gx = (px - W / 2 - tx) / zoom, gy = (py - H / 2 - ty) / zoom;
    tx = px - W / 2 - gx * next; ty = py - H / 2 - gy * next; zoom = next;
    tip.style.display = "none"; hover = -1; draw();
  }, { passive: false });
  let drag = null;
  plot.addEventListener("mousedown", (ev) => { drag = [ev.clientX, ev.clientY]; plot.classList.add("dragging"); });
  window.addEventListener("mouseup", () => { drag = null; plot.classList.remove("dragging"); });
  plot.addEventListener("mousemove", (ev) => {
    if (drag) { tx += ev.clientX - drag[0]; ty += ev.clientY - drag[1]; drag = [ev.clientX, ev.clientY]; draw(); return; }
    const r = canvas.getBoundingClientRect(); hoverAt(ev.clientX - r.left, ev.clientY - r.top);
  });
  plot.addEventListener("mouseleave", () => showTip(-1, 0, 0));
  function reset() { zoom = 1; tx = 0; ty = 0; draw(); }
  plot.addEventListener("dblclick", reset);
  document.getElementById("reset").addEventListener("click", reset);
  search.addEventListener("input", () => setQuery(search.value));
  window.addEventListener("keydown", (ev) => { if (ev.key === "/" && document.activeElement !== search) { ev.preventDefault(); search.focus(); } });
  window.addEventListener("resize", resize);

  function fromHash() {
    const params = new URLSearchParams(location.hash.slice(1));
    if (params.has("q")) { search.value = params.get("q"); setQuery(search.value); }
    if (params.has("focus")) {
      const i = D.ids.indexOf(params.get("focus"));
      if (i >= 0) hoverAt(sx(i), sy(i));
    }
  }
  window.addEventListener("hashchange", fromHash);

  legend();
  resize();
  setQuery("");
  fromHash();
  document.body.dataset.points = String(n);
  window.nearspaceMap = { hoverAt: hoverAt, setQuery: setQuery, screen: (i) => [sx(i), sy(i)] };
})();
</script>
</body>
</html>
"""
