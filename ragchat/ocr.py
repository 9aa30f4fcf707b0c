"""OCR: text from scanned PDF pages and from image files, with RapidOCR.

RapidOCR (``pip install 'ragchat[ocr]'``) ships its ONNX models (PP-OCRv6 detection and
recognition, ~33 MB) inside its wheel and runs them on ONNX Runtime, which ragchat has
anyway: nothing is downloaded at run time. Its weight is OpenCV (~150 MB installed), which is
why it is an extra, named in the ingest summary when a file needed it.

A PDF page is OCR'd only when it has no text layer; its images are taken from the page as
they are stored (a scanned page is one full-page image, or a few strips), so no renderer is
needed. Each page OCR'd is a heartbeat for the worker's time limit (see isolation.py).
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ragchat.errors import LoadError
from ragchat.pages import Page, paragraph_blocks

INSTALL = "pip install 'ragchat[ocr]'"
OCRD = "OCR'd"
NOTHING = "no text found by OCR"
MISSING = f"no text layer; OCR needs {INSTALL}"
NO_TEXT = "no text"
MAX_PAGES = 500  # pages OCR'd per file (~2 s each on 2 cores)
MAX_SIDE = 1280  # the detector sees the image scaled to at most this many pixels a side
MIN_SIDE = 32  # smaller images are icons and rules, not text
MIN_SCORE = 0.5  # recognised lines less certain than this are noise


def available() -> bool:
    return importlib.util.find_spec("rapidocr") is not None


@functools.cache
def engine() -> Any:
    """The OCR engine, loaded once per process (~2 s)."""
    try:
        from rapidocr import RapidOCR
    except ImportError:
        raise LoadError(f"needs OCR; {INSTALL}") from None
    logging.getLogger("RapidOCR").setLevel(logging.ERROR)
    return RapidOCR(
        params={
            "Global.log_level": "error",
            # The line-orientation classifier turns some upright lines of a page upside down
            # (measured: 5 of 27 lines of a scanned page read right with it, 27 without).
            "Global.use_cls": False,
            "Det.limit_type": "max",
            "Det.limit_side_len": MAX_SIDE,
            # ONNX Runtime's default uses the physical cores only: half of them on most CPUs
            "EngineConfig.onnxruntime.intra_op_num_threads": os.cpu_count() or 1,
            "EngineConfig.onnxruntime.inter_op_num_threads": 1,
        }
    )


def image_text(image: Any) -> str:
    """The text of a PIL image: lines top to bottom, a blank line where a gap is wider than
    a line."""
    if min(image.size) < MIN_SIDE:
        return ""
    if image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    result = engine()(image)
    boxes = getattr(result, "boxes", None)
    if boxes is None:
        return ""
    found = []
    for box, text, score in zip(boxes, result.txts, result.scores, strict=False):
        if score >= MIN_SCORE and text.strip():
            ys = [float(point[1]) for point in box]
            found.append((min(ys), max(ys), min(float(point[0]) for point in box), text.strip()))
    return _layout(found)


def _layout(found: list[tuple[float, float, float, str]]) -> str:
    """Boxes (top, bottom, left, text) as lines: boxes whose middles fall within a line's
    height are one line, left to right."""
    lines: list[list[tuple[float, float, float, str]]] = []
    for box in sorted(found):
        middle = (box[0] + box[1]) / 2
        if lines and lines[-1][0][0] <= middle <= lines[-1][0][1]:
            lines[-1].append(box)
        else:
            lines.append([box])
    heights = sorted(b[1] - b[0] for b in found) or [0.0]
    height = heights[len(heights) // 2]
    text = ""
    previous_bottom: float | None = None
    for line in lines:
        top = min(b[0] for b in line)
        if previous_bottom is not None:
            text += "\n\n" if top - previous_bottom > height else "\n"
        text += " ".join(b[3] for b in sorted(line, key=lambda b: b[2]))
        previous_bottom = max(b[1] for b in line)
    return text


def read_blank_pages(pdf_pages: Sequence[Any], texts: list[str]) -> list[list[str]]:
    """OCR the PDF pages whose ``texts`` are empty, in place; each page's notes."""
    from ragchat.isolation import heartbeat

    notes: list[list[str]] = [[] for _ in texts]
    blank = [i for i, text in enumerate(texts) if not text.strip()]
    if not blank:
        return notes
    ready = available()
    for done, index in enumerate(blank):
        try:
            images = [image.image for image in pdf_pages[index].images]
            turn = int(pdf_pages[index].get("/Rotate", 0) or 0) % 360  # how the page is shown
            if turn:
                images = [image.rotate(-turn, expand=True) for image in images if image]
        except Exception as exc:  # an image pypdf cannot decode (e.g. JBIG2 without jbig2dec)
            notes[index].append(
                f"no text layer; its image could not be read ({type(exc).__name__})"
            )
            continue
        images = [image for image in images if image is not None and min(image.size) >= MIN_SIDE]
        if not images:
            notes[index].append(NO_TEXT)
        elif not ready:
            notes[index].append(MISSING)
        elif done >= MAX_PAGES:
            notes[index].append(f"not OCR'd (over {MAX_PAGES} pages)")
        else:
            heartbeat(f"OCR page {index + 1} of {len(texts)}")
            texts[index] = "\n\n".join(t for t in (image_text(image) for image in images) if t)
            notes[index].append(OCRD if texts[index].strip() else NOTHING)
    return notes


def require_text(pages: list[Page]) -> None:
    """A file none of whose pages has text is a LoadError (with the fix, if OCR is it),
    unless OCR ran and found nothing: that is an answer to keep, not to redo each ingest."""
    if any(page.blocks for page in pages):
        return
    notes = {note for page in pages for note in page.notes}
    if NOTHING in notes:
        return
    if MISSING in notes:
        raise LoadError(f"no text layer (scanned?); to read it, {INSTALL}")
    raise LoadError("no text layer, and no image to OCR")


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")


def load_image(path: Path) -> list[Page]:
    """An image's text, by OCR; a multi-page TIFF as pages."""
    from PIL import Image, ImageSequence

    from ragchat.isolation import heartbeat

    if not available():
        raise LoadError(f"an image; to read its text, {INSTALL}")
    with Image.open(path) as image:
        frames = getattr(image, "n_frames", 1)
        pages = []
        for number, frame in enumerate(ImageSequence.Iterator(image), start=1):
            if number > MAX_PAGES:
                break
            heartbeat(f"OCR page {number} of {frames}")
            text = image_text(frame.copy())
            pages.append(
                Page(
                    text=text,
                    number=number if frames > 1 else None,
                    blocks=paragraph_blocks(text),
                    notes=[OCRD if text.strip() else NOTHING],
                )
            )
    return pages
