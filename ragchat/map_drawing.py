"""The collection as a picture: every document a point in 2-D, coloured by cluster or folder.

Two outputs from one ``DocumentMap``: a self-contained HTML page (inline SVG drawn by a few
lines of JavaScript, no library, no network: it opens offline and stays small — a plotly page
would carry ~4 MB of JavaScript) with hover, zoom and a clickable legend; and a PNG drawn by
matplotlib's Agg backend (imported only here, only when asked).
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragchat.errors import ExploreError
from ragchat.text import escaped, sanitize, shorten

# Tableau's 20 colours, paired: the first 10 are tab10, told apart by most eyes and printers.
PALETTE = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94",
    "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5",
]  # fmt: skip
LABELLED_TITLES = 30  # document titles written on the picture, spread over it


@dataclass
class Point:
    x: float
    y: float
    title: str
    path: str
    group: int  # index into DocumentMap.groups


@dataclass
class DocumentMap:
    title: str
    subtitle: str
    axes: tuple[str, str]
    groups: list[str]
    points: list[Point]

    def colour(self, group: int) -> str:
        return PALETTE[group % len(PALETTE)]

    def counts(self) -> list[int]:
        return [sum(1 for p in self.points if p.group == g) for g in range(len(self.groups))]

    def to_dict(self) -> dict[str, Any]:
        """The page's data; text from documents without invisible or control characters,
        paths escaped (a browser, too, reorders text at a U+202E)."""
        labelled = set(spread_sample(self.points, LABELLED_TITLES))
        return {
            "title": sanitize(self.title),
            "subtitle": sanitize(self.subtitle),
            "axes": list(self.axes),
            "groups": [
                {"label": sanitize(label), "colour": self.colour(g), "count": count}
                for g, (label, count) in enumerate(zip(self.groups, self.counts(), strict=True))
            ],
            "points": [
                {
                    "x": round(p.x, 5),
                    "y": round(p.y, 5),
                    "title": sanitize(p.title),
                    "path": escaped(p.path),
                    "uri": Path(p.path).as_uri() if Path(p.path).is_absolute() else "",
                    "group": p.group,
                    "label": i in labelled,
                }
                for i, p in enumerate(self.points)
            ],
        }


def write(document_map: DocumentMap, out: Path) -> None:
    suffix = out.suffix.lower()
    if suffix in (".html", ".htm"):
        out.write_text(html_page(document_map), encoding="utf-8")
    elif suffix == ".png":
        figure = build_figure(document_map)
        figure.savefig(
            out,
            dpi=150,
            bbox_inches="tight",
            metadata={"Software": "ragchat", "ragchat:documents": str(len(document_map.points))},
        )
    else:
        raise ExploreError(
            f"Cannot write a map as {out.name!r}; name the file .html (interactive) or .png."
        )


def spread_sample(points: Sequence[Point], count: int) -> list[int]:
    """Indexes of ``count`` points far from each other (farthest-point sampling), so the
    labelled titles cover the whole picture instead of piling up in its densest part."""
    if not points:
        return []
    xs = [p.x for p in points]
    ys = [p.y for p in points]
    scale_x = (max(xs) - min(xs)) or 1.0
    scale_y = (max(ys) - min(ys)) or 1.0
    centre = (sum(xs) / len(xs), sum(ys) / len(ys))

    def distance(i: int, x: float, y: float) -> float:
        return math.hypot((points[i].x - x) / scale_x, (points[i].y - y) / scale_y)

    chosen = [min(range(len(points)), key=lambda i: distance(i, *centre))]
    nearest = [distance(i, points[chosen[0]].x, points[chosen[0]].y) for i in range(len(points))]
    while len(chosen) < min(count, len(points)):
        far = max(range(len(points)), key=lambda i: nearest[i])
        chosen.append(far)
        nearest = [
            min(nearest[i], distance(i, points[far].x, points[far].y)) for i in range(len(points))
        ]
    return chosen


def _plain(text: str, limit: int = 40) -> str:
    """Text for matplotlib: short, and with '$' escaped so it is not read as math."""
    return shorten(sanitize(text), limit).replace("$", r"\$")


def build_figure(document_map: DocumentMap) -> Any:
    """The PNG's matplotlib figure: one scatter per group (so the legend names them), group
    names at their groups' medians, and a spread-out sample of document titles."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed, nothing to pick up from the environment
    import matplotlib.pyplot as plt
    from matplotlib import patheffects

    figure, axes = plt.subplots(figsize=(13, 8.5), layout="constrained")
    halo = [patheffects.withStroke(linewidth=3, foreground="white")]
    counts = document_map.counts()
    size = 46 if len(document_map.points) < 300 else 18 if len(document_map.points) < 3000 else 6
    for group, label in enumerate(document_map.groups):
        members = [p for p in document_map.points if p.group == group]
        if not members:
            continue
        axes.scatter(
            [p.x for p in members],
            [p.y for p in members],
            s=size,
            color=document_map.colour(group),
            alpha=0.85,
            edgecolors="white",
            linewidths=0.6,
            label=f"{_plain(label, 36)} ({counts[group]})",
            zorder=2,
        )
    for index in spread_sample(document_map.points, LABELLED_TITLES):
        point = document_map.points[index]
        axes.annotate(
            _plain(point.title, 32),
            (point.x, point.y),
            xytext=(5, 4),
            textcoords="offset points",
            fontsize=7.5,
            color="#333333",
            path_effects=halo,
            zorder=3,
        )
    for group, label in enumerate(document_map.groups):
        members = [p for p in document_map.points if p.group == group]
        if len(members) < 2:
            continue
        xs, ys = sorted(p.x for p in members), sorted(p.y for p in members)
        # under the points and faint: it names the region without hiding what is in it
        axes.text(
            xs[len(xs) // 2],
            ys[len(ys) // 2],
            _plain(label, 30),
            fontsize=13,
            fontweight="bold",
            ha="center",
            va="center",
            color=document_map.colour(group),
            alpha=0.55,
            zorder=1,
        )
    axes.set_title(_plain(document_map.title, 100), fontsize=15, loc="left", pad=22)
    axes.text(
        0,
        1.015,
        _plain(document_map.subtitle, 140),
        transform=axes.transAxes,
        fontsize=9.5,
        color="#555555",
    )
    axes.set_xlabel(document_map.axes[0], fontsize=10)
    axes.set_ylabel(document_map.axes[1], fontsize=10)
    # the projection's units mean nothing to a reader: keep the grid, drop the numbers
    axes.tick_params(labelbottom=False, labelleft=False, length=0)
    axes.grid(True, color="#eeeeee", zorder=0)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    axes.legend(
        loc="upper left",
        bbox_to_anchor=(1.01, 1),
        fontsize=9,
        frameon=False,
        title="Groups",
        title_fontsize=10,
        markerscale=1.2,
    )
    return figure


def html_page(document_map: DocumentMap) -> str:
    # "<" escaped so no text from a document can close the script element
    data = json.dumps(document_map.to_dict(), ensure_ascii=False).replace("<", "\\u003c")
    return _HTML.replace("__TITLE__", html.escape(document_map.title)).replace("__DATA__", data)


_HTML = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'">
<title>__TITLE__</title>
<style>
  body { margin: 0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222; background: #fafafa; }
  header { padding: 14px 20px 6px; }
  h1 { font-size: 20px; margin: 0; }
  .sub { color: #666; font-size: 13px; }
  main { display: flex; gap: 12px; padding: 0 20px 16px; height: calc(100vh - 80px); box-sizing: border-box; }
  #plot { flex: 1; background: #fff; border: 1px solid #e3e3e3; border-radius: 6px; position: relative; min-width: 0; }
  svg { width: 100%; height: 100%; display: block; cursor: grab; user-select: none; }
  svg.dragging { cursor: grabbing; }
  circle { stroke: #fff; stroke-width: 1; transition: opacity .15s; }
  circle:hover { stroke: #222; stroke-width: 2; cursor: pointer; }
  .dim { opacity: .12; }
  .glabel { font-weight: 700; font-size: 16px; opacity: .6; pointer-events: none; }
  .axis { fill: #888; font-size: 12px; }
  .tlabel { fill: #444; font-size: 10.5px; paint-order: stroke; stroke: #fff; stroke-width: 3px; pointer-events: none; }
  aside { width: 280px; overflow-y: auto; }
  aside h2 { font-size: 13px; text-transform: uppercase; letter-spacing: .05em; color: #666; margin: 6px 0; }
  .legend div { display: flex; align-items: center; gap: 8px; padding: 4px 6px; border-radius: 4px; cursor: pointer; }
  .legend div:hover { background: #eef; }
  .legend div.off { opacity: .35; }
  .swatch { width: 12px; height: 12px; border-radius: 50%; flex: none; }
  .count { margin-left: auto; color: #888; font-variant-numeric: tabular-nums; }
  input { width: 100%; box-sizing: border-box; padding: 6px 8px; border: 1px solid #ccc; border-radius: 4px; margin: 4px 0 10px; }
  .hint { color: #888; font-size: 12px; margin-top: 12px; }
  #tip { position: absolute; pointer-events: none; background: rgba(20,20,20,.92); color: #fff; padding: 6px 9px; border-radius: 5px;
         font-size: 12.5px; max-width: 380px; display: none; z-index: 2; }
  #tip b { display: block; font-size: 13.5px; }
  #tip .path { color: #ccc; word-break: break-all; }
</style>
</head>
<body>
<header><h1 id="title"></h1><div class="sub" id="subtitle"></div></header>
<main>
  <div id="plot"><svg id="svg"></svg><div id="tip"></div></div>
  <aside>
    <h2>Find</h2>
    <input id="find" type="search" placeholder="Title or path contains…">
    <h2>Groups</h2>
    <div class="legend" id="legend"></div>
    <div class="hint">Hover a point for its title and path; click it to open the file. Click a group to show only it.
      Scroll to zoom, drag to pan, double-click to reset.</div>
  </aside>
</main>
<script type="application/json" id="map-data">__DATA__</script>
<script>
"use strict";
const data = JSON.parse(document.getElementById("map-data").textContent);
const NS = "http://www.w3.org/2000/svg";
const svg = document.getElementById("svg"), tip = document.getElementById("tip"), plot = document.getElementById("plot");
document.getElementById("title").textContent = data.title;
document.getElementById("subtitle").textContent = data.subtitle;
const xs = data.points.map(p => p.x), ys = data.points.map(p => p.y);
const minX = Math.min(...xs), maxX = Math.max(...xs), minY = Math.min(...ys), maxY = Math.max(...ys);
const W = 1000, H = 700, PAD = 60;
const sx = x => PAD + (x - minX) / ((maxX - minX) || 1) * (W - 2 * PAD);
const sy = y => H - PAD - (y - minY) / ((maxY - minY) || 1) * (H - 2 * PAD);
let view = {x: 0, y: 0, w: W, h: H};
const setView = () => svg.setAttribute("viewBox", `${view.x} ${view.y} ${view.w} ${view.h}`);
setView();
function el(name, attrs, parent) {
  const node = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  (parent || svg).appendChild(node);
  return node;
}
el("text", {x: W / 2, y: H - 12, "text-anchor": "middle", class: "axis"}).textContent = data.axes[0];
el("text", {x: 16, y: H / 2, "text-anchor": "middle", class: "axis", transform: `rotate(-90 16 ${H / 2})`}).textContent = data.axes[1];
data.groups.forEach((g, i) => {  // drawn first, so the points lie on top of the names
  const members = data.points.filter(p => p.group === i);
  if (members.length < 2) return;
  const median = a => a.sort((u, v) => u - v)[Math.floor(a.length / 2)];
  const label = el("text", {x: sx(median(members.map(p => p.x))), y: sy(median(members.map(p => p.y))), "text-anchor": "middle",
                            class: "glabel", fill: g.colour});
  label.textContent = g.label;
  const box = label.getBBox();  // keep the name inside the picture
  const shift = box.x < 4 ? 4 - box.x : box.x + box.width > W - 4 ? W - 4 - box.x - box.width : 0;
  label.setAttribute("x", Number(label.getAttribute("x")) + shift);
});
const radius = data.points.length > 3000 ? 2.5 : data.points.length > 300 ? 4 : 6;
const circles = data.points.map(p => {
  const c = el("circle", {cx: sx(p.x), cy: sy(p.y), r: radius, fill: data.groups[p.group].colour});
  c.addEventListener("mousemove", e => showTip(e, p));
  c.addEventListener("mouseleave", () => { tip.style.display = "none"; });
  c.addEventListener("click", () => { if (p.uri) window.open(p.uri, "_blank"); });
  return c;
});
data.points.forEach(p => {
  if (!p.label) return;
  const short = p.title.length > 32 ? p.title.slice(0, 31) + "…" : p.title;
  const right = sx(p.x) > W * 0.75;  // near the right edge: write the title to the left of the point
  el("text", {x: sx(p.x) + (right ? -1 : 1) * (radius + 2), y: sy(p.y) - radius, class: "tlabel",
              "text-anchor": right ? "end" : "start"}).textContent = short;
});
function showTip(e, p) {
  tip.replaceChildren();
  const b = document.createElement("b"); b.textContent = p.title; tip.appendChild(b);
  const path = document.createElement("div"); path.className = "path"; path.textContent = p.path; tip.appendChild(path);
  const group = document.createElement("div"); group.textContent = data.groups[p.group].label; tip.appendChild(group);
  const box = plot.getBoundingClientRect();
  tip.style.display = "block";
  const left = e.clientX - box.left + 14, top = e.clientY - box.top + 14;
  tip.style.left = Math.min(left, box.width - tip.offsetWidth - 8) + "px";
  tip.style.top = (top + tip.offsetHeight > box.height ? top - tip.offsetHeight - 24 : top) + "px";
}
const hidden = new Set();
let query = "";
function refresh() {
  data.points.forEach((p, i) => {
    const text = (p.title + " " + p.path).toLowerCase();
    const shown = !hidden.has(p.group) && (!query || text.includes(query));
    circles[i].classList.toggle("dim", !shown);
  });
  legend.querySelectorAll("div").forEach((row, i) => row.classList.toggle("off", hidden.has(i)));
}
const legend = document.getElementById("legend");
data.groups.forEach((g, i) => {
  const row = document.createElement("div");
  const swatch = document.createElement("span"); swatch.className = "swatch"; swatch.style.background = g.colour;
  const label = document.createElement("span"); label.textContent = g.label;
  const count = document.createElement("span"); count.className = "count"; count.textContent = g.count;
  row.append(swatch, label, count);
  row.addEventListener("click", () => {
    const only = hidden.size === data.groups.length - 1 && !hidden.has(i);
    hidden.clear();
    if (!only) data.groups.forEach((_, j) => { if (j !== i) hidden.add(j); });
    refresh();
  });
  legend.appendChild(row);
});
document.getElementById("find").addEventListener("input", e => { query = e.target.value.trim().toLowerCase(); refresh(); });
function toSvg(e) {
  const box = svg.getBoundingClientRect(), scale = Math.max(view.w / box.width, view.h / box.height);
  const offsetX = (box.width * scale - view.w) / 2, offsetY = (box.height * scale - view.h) / 2;
  return {x: view.x - offsetX + (e.clientX - box.left) * scale, y: view.y - offsetY + (e.clientY - box.top) * scale, scale};
}
svg.addEventListener("wheel", e => {
  e.preventDefault();
  const at = toSvg(e), factor = e.deltaY < 0 ? 0.8 : 1.25;
  view = {x: at.x - (at.x - view.x) * factor, y: at.y - (at.y - view.y) * factor, w: view.w * factor, h: view.h * factor};
  setView();
}, {passive: false});
let drag = null;
svg.addEventListener("mousedown", e => {
  drag = {x: e.clientX, y: e.clientY, view: {...view}, scale: toSvg(e).scale};
  svg.classList.add("dragging");
});
window.addEventListener("mousemove", e => {
  if (!drag) return;
  view.x = drag.view.x - (e.clientX - drag.x) * drag.scale;
  view.y = drag.view.y - (e.clientY - drag.y) * drag.scale;
  setView();
});
window.addEventListener("mouseup", () => { drag = null; svg.classList.remove("dragging"); });
svg.addEventListener("dblclick", () => { view = {x: 0, y: 0, w: W, h: H}; setView(); });
</script>
</body>
</html>
"""
