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
PROJECTIONS = ("auto", "tsne", "umap", "pca")  # auto: UMAP when installed, else t-SNE
PROJECTION_NAMES = {"tsne": "t-SNE", "umap": "UMAP", "pca": "PCA"}


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
    if suffix not in (".html", ".htm", ".png"):
        raise ExploreError(
            f"Cannot write a map as {out.name!r}; name the file .html (interactive) or .png."
        )
    try:
        if suffix == ".png":
            figure = build_figure(document_map)
            figure.savefig(
                out,
                dpi=150,
                bbox_inches="tight",
                metadata={
                    "Software": "ragchat",
                    "ragchat:documents": str(len(document_map.points)),
                },
            )
        else:
            out.write_text(html_page(document_map), encoding="utf-8")
    except OSError as exc:
        raise ExploreError(
            f"Cannot write the map to {out} in the folder {out.absolute().parent}"
            f" ({exc.strerror or exc}); give another --out."
        ) from exc


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
    labels: list[tuple[Any, bool]] = []  # (label, must it be shown); placed in this order

    def write_label(text: str, at: tuple[float, float], required: bool, **style: Any) -> None:
        annotation = axes.annotate(
            text, at, xytext=(0, 0), textcoords="offset points", ha="center", va="center", **style
        )
        labels.append((annotation, required))

    for group, name in enumerate(document_map.groups):  # group names first, then titles
        members = [p for p in document_map.points if p.group == group]
        if len(members) < 2:
            continue
        xs, ys = sorted(p.x for p in members), sorted(p.y for p in members)
        write_label(
            _plain(name, 30),
            (xs[len(xs) // 2], ys[len(ys) // 2]),
            True,
            fontsize=13,
            fontweight="bold",
            color=document_map.colour(group),
            path_effects=[patheffects.withStroke(linewidth=4, foreground="white")],
            arrowprops={"arrowstyle": "-", "color": "#999999", "lw": 0.7},  # when placed far
            zorder=4,
        )
    for index in spread_sample(document_map.points, LABELLED_TITLES):
        point = document_map.points[index]
        write_label(
            _plain(point.title, 32),
            (point.x, point.y),
            False,
            fontsize=7.5,
            color="#333333",
            path_effects=halo,
            zorder=3,
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
    figure.canvas.draw()  # the constrained layout settles the axes first
    _place(figure, labels)
    return figure


# where a label may go from its anchor, in points: above it first, then around, farther out
_SPOTS = [
    (dx * r * 9, dy * r * 7)
    for r in (1, 2, 3.5, 5.5, 8, 11, 15, 20, 27, 36, 48)
    for dx, dy in ((0, 1), (0, -1), (1, 0.6), (-1, 0.6), (1, -0.6), (-1, -0.6), (0.5, 1), (-0.5, 1))
]
_NEAR = 16  # a title stays next to its point (the first two rings of spots), or is left out
_LEADER = 24  # a name placed beyond this ring gets a thin line back to its group


def _place(figure: Any, labels: Sequence[tuple[Any, bool]]) -> None:
    """Move each label (in order) to the first spot around its anchor, inside the plot, where
    it overlaps no label placed before it; a title with no such spot near its point is left
    out, a group's name goes farther, with a line back to its group."""
    from matplotlib.text import Text

    renderer = figure.canvas.get_renderer()
    frame = figure.axes[0].get_window_extent(renderer)
    placed: list[Any] = []
    for label, required in labels:
        spots = _SPOTS if required else _SPOTS[:_NEAR]
        for n, (dx, dy) in enumerate(spots):
            label.xyann = (dx, dy + (6 if dy > 0 else -6))  # clear of the point itself
            box = Text.get_window_extent(label, renderer).expanded(1.06, 1.15)  # no line
            inside = frame.contains(box.x0, box.y0) and frame.contains(box.x1, box.y1)
            if inside and not any(box.overlaps(other) for other in placed):
                placed.append(box)
                if label.arrow_patch is not None:  # a group's name: its line when it is far
                    label.arrow_patch.set_visible(n >= _LEADER)
                break
        else:
            if required:  # nowhere free: its first spot, over whatever is there
                label.xyann = (_SPOTS[0][0], _SPOTS[0][1] + 6)
                placed.append(Text.get_window_extent(label, renderer))
            else:
                label.set_visible(False)


def html_page(document_map: DocumentMap) -> str:
    # "<" escaped so no text from a document can close the script element
    data = json.dumps(document_map.to_dict(), ensure_ascii=False).replace("<", "\\u003c")
    return _HTML.replace("__TITLE__", html.escape(document_map.title)).replace("__DATA__", data)


_HTML = r"""<!DOCTYPE html>
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
  .glabel { font-weight: 700; paint-order: stroke; stroke: #fff; stroke-linejoin: round; pointer-events: none; }
  .axis { fill: #888; font-size: 12px; }
  .tlabel { fill: #444; paint-order: stroke; stroke: #fff; stroke-linejoin: round; pointer-events: none; }
  .hidden { display: none; }
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
const axes = [
  el("text", {x: W / 2, y: H - 12, "text-anchor": "middle", class: "axis"}),
  el("text", {x: 16, y: H / 2, "text-anchor": "middle", class: "axis", transform: `rotate(-90 16 ${H / 2})`}),
];
axes.forEach((node, i) => { node.textContent = data.axes[i]; });
const radius = data.points.length > 3000 ? 2.5 : data.points.length > 300 ? 4 : 6;
const circles = data.points.map(p => {
  const c = el("circle", {cx: sx(p.x), cy: sy(p.y), r: radius, fill: data.groups[p.group].colour});
  c.addEventListener("mousemove", e => showTip(e, p));
  c.addEventListener("mouseleave", () => { tip.style.display = "none"; });
  c.addEventListener("click", () => { if (p.uri) window.open(p.uri, "_blank"); });
  return c;
});
// Labels: drawn after the points (on top of them, with a white halo), at the same size on the
// screen whatever the zoom, and placed where they overlap no other label (see layout()).
const median = a => a.slice().sort((u, v) => u - v)[Math.floor(a.length / 2)];
// where a label may go around its anchor, in screen pixels: above it first, then farther out
const SPOTS = [];
for (const r of [1, 2, 3.5, 5.5, 8, 11, 15]) {
  for (const [dx, dy] of [[0, -1], [0, 1], [1, -0.6], [-1, -0.6], [1, 0.6], [-1, 0.6], [0.5, -1], [-0.5, -1]]) {
    SPOTS.push([dx * r * 14, dy * r * 9]);
  }
}
const labels = [];
data.groups.forEach((g, i) => {  // group names first: they are placed before any title
  const members = data.points.filter(p => p.group === i);
  if (members.length < 2) return;
  const node = el("text", {class: "glabel", fill: g.colour, "text-anchor": "middle"});
  node.textContent = g.label;
  labels.push({node, group: i, kind: "group", size: 15, halo: 4, reach: SPOTS.length,
               x: median(members.map(p => sx(p.x))), y: median(members.map(p => sy(p.y)))});
});
data.points.forEach(p => {
  if (!p.label) return;
  const node = el("text", {class: "tlabel", "text-anchor": "middle"});
  node.textContent = p.title.length > 32 ? p.title.slice(0, 31) + "…" : p.title;
  // a title stays next to its point (the first two rings of spots), or is not shown
  labels.push({node, group: p.group, kind: "title", size: 11, halo: 3, reach: 16, x: sx(p.x), y: sy(p.y)});
});
function pixelSize() {  // svg units per screen pixel at the current zoom
  const box = svg.getBoundingClientRect();
  return Math.max(view.w / (box.width || W), view.h / (box.height || H));
}
function overlaps(a, b) {
  return a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
}
function layout() {
  const k = pixelSize(), gap = 3 * k, lift = (radius + 3) * k;
  const placed = axes.map(node => {  // labels keep clear of the axis names too
    const box = node.getBBox();
    return {x: box.x - gap, y: box.y - gap, w: box.width + 2 * gap, h: box.height + 2 * gap};
  });
  for (const label of labels) {
    const node = label.node;
    if (hidden.has(label.group)) { node.classList.add("hidden"); continue; }
    node.classList.remove("hidden");
    node.style.fontSize = label.size * k + "px";
    node.style.strokeWidth = label.halo * k + "px";
    node.setAttribute("x", 0); node.setAttribute("y", 0);
    const box = node.getBBox();  // its size, and where its box lies from (x, y)
    let best = null;
    for (const [dx, dy] of SPOTS.slice(0, label.reach)) {
      // above or below the anchor: the box's bottom (or top) clears the point
      const cx = label.x + dx * k, cy = label.y + dy * k + (dy < 0 ? -lift : dy > 0 ? lift + box.height : 0);
      const spot = {x: cx + box.x - gap, y: cy + box.y - gap, w: box.width + 2 * gap, h: box.height + 2 * gap};
      const inside = spot.x >= view.x && spot.y >= view.y && spot.x + spot.w <= view.x + view.w && spot.y + spot.h <= view.y + view.h;
      if (inside && !placed.some(other => overlaps(spot, other))) { best = {cx, cy, spot}; break; }
    }
    if (!best) { node.classList.add("hidden"); continue; }  // no room at this zoom: zoom in
    node.setAttribute("x", best.cx); node.setAttribute("y", best.cy);
    placed.push(best.spot);
  }
  // for tests and tools: where each shown label is on the screen
  document.body.dataset.labels = JSON.stringify(labels.filter(l => !l.node.classList.contains("hidden")).map(l => {
    const r = l.node.getBoundingClientRect();
    return {kind: l.kind, group: l.group, text: l.node.textContent, x: r.x, y: r.y, w: r.width, h: r.height};
  }));
  document.body.dataset.layout = "done";
}
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
  layout();  // a hidden group's labels go, and free their room
}
function showOnly(i) {
  hidden.clear();
  data.groups.forEach((_, j) => { if (j !== i) hidden.add(j); });
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
    if (only) hidden.clear(); else showOnly(i);
    refresh();
  });
  legend.appendChild(row);
});
// map.html#group=N opens the map showing only group N (counted from 1, as in the legend)
const wanted = /^#group=(\d+)$/.exec(location.hash);
if (wanted && data.groups[Number(wanted[1]) - 1]) showOnly(Number(wanted[1]) - 1);
refresh();
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
  layout();
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
window.addEventListener("mouseup", () => {
  if (drag) layout();
  drag = null; svg.classList.remove("dragging");
});
svg.addEventListener("dblclick", () => { view = {x: 0, y: 0, w: W, h: H}; setView(); layout(); });
window.addEventListener("resize", layout);
</script>
</body>
</html>
"""
