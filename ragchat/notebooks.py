"""Jupyter notebooks (.ipynb): markdown and code cells; outputs are left out.

The notebook becomes one Markdown document (code cells as fenced blocks in the notebook's
language) read by the Markdown loader, so headings in markdown cells give the heading path of
the cells after them and a code cell is never split from itself unless it is too long.
"""

from __future__ import annotations

import json
from pathlib import Path

from ragchat.errors import LoadError
from ragchat.pages import Page, decode_text, markdown_page


def _source(cell: dict[str, object]) -> str:
    source = cell.get("source", cell.get("input", ""))
    if isinstance(source, list):
        return "".join(str(line) for line in source)
    return str(source or "")


def load_notebook(path: Path) -> list[Page]:
    try:
        notebook = json.loads(decode_text(path.read_bytes()))
    except json.JSONDecodeError as exc:
        raise LoadError(f"not a notebook (invalid JSON: {exc.msg})") from None
    if not isinstance(notebook, dict):
        raise LoadError("not a notebook (no cells)")
    cells = notebook.get("cells")
    if cells is None:  # nbformat 3: cells inside worksheets
        cells = [c for w in notebook.get("worksheets") or [] for c in w.get("cells") or []]
    if not isinstance(cells, list):
        raise LoadError("not a notebook (no cells)")
    metadata = notebook.get("metadata") or {}
    language = str((metadata.get("language_info") or {}).get("name", "") or "")
    parts = []
    for cell in cells:
        if not isinstance(cell, dict):
            continue
        source = _source(cell).strip("\n")
        if not source.strip():
            continue
        kind = cell.get("cell_type")
        if kind in ("markdown", "heading"):
            level = cell.get("level")  # nbformat 3 heading cells
            parts.append(
                f"{'#' * min(max(level, 1), 6)} {source}" if isinstance(level, int) else source
            )
        elif kind == "code":
            fence = "````" if "```" in source else "```"
            parts.append(f"{fence}{language}\n{source}\n{fence}")
        else:  # raw cells
            parts.append(source)
    return [markdown_page("\n\n".join(parts))]
