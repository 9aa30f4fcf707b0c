"""OCR of scanned PDF pages and images (RapidOCR, the [ocr] extra), and the worker's
heartbeat that lets a long scan be read while a loop is still stopped."""

from __future__ import annotations

import time
from pathlib import Path

import documents
import pytest
from helpers import CORPUS

from ragchat import ocr
from ragchat.errors import LoadError
from ragchat.isolation import SafeLoader, heartbeat
from ragchat.loaders import file_notes, load

needs_ocr = pytest.mark.skipif(not ocr.available(), reason="needs pip install 'ragchat[ocr]'")


@pytest.mark.slow
@needs_ocr
def test_scanned_pdf_pages_are_read_by_ocr(tmp_path: Path):
    started = time.perf_counter()
    pages = load(documents.scanned_pdf(tmp_path / "scan.pdf", documents.SCAN_PAGES))
    seconds = time.perf_counter() - started
    assert [p.number for p in pages] == [1, 2]
    assert "Its load limit is 42 tonnes." in pages[0].text
    assert "The cable was replaced by Mariana Okafor." in pages[1].text
    assert file_notes(pages) == ["OCR'd (pages 1-2)"]
    assert seconds < 60  # two pages, model load included


@pytest.mark.slow
@needs_ocr
def test_only_pages_without_text_are_ocrd(tmp_path: Path):
    from pypdf import PdfReader, PdfWriter

    scan = documents.scanned_pdf(tmp_path / "scan.pdf", documents.SCAN_PAGES[:1])
    writer = PdfWriter()
    writer.add_page(PdfReader(CORPUS / "annual-report-2024.pdf").pages[0])
    writer.add_page(PdfReader(scan).pages[0])
    with (tmp_path / "mixed.pdf").open("wb") as handle:
        writer.write(handle)
    pages = load(tmp_path / "mixed.pdf")
    assert file_notes(pages) == ["OCR'd (page 2)"]
    assert "42 tonnes" in pages[1].text and "42 tonnes" not in pages[0].text


@pytest.mark.slow
@needs_ocr
def test_a_page_scanned_sideways_and_shown_turned_is_read_as_shown(tmp_path: Path):
    from pypdf import PdfReader, PdfWriter

    image = documents.page_image(documents.SCAN_PAGES[0])  # the scanner's image lies on its side...
    image.rotate(90, expand=True).save(tmp_path / "sideways.pdf", resolution=150)
    writer = PdfWriter(clone_from=PdfReader(tmp_path / "sideways.pdf"))
    writer.pages[0].rotate(90)  # ...and the page says to show it turned upright
    with (tmp_path / "turned.pdf").open("wb") as handle:
        writer.write(handle)
    assert "Its load limit is 42 tonnes." in load(tmp_path / "turned.pdf")[0].text


@pytest.mark.slow
@needs_ocr
def test_image_files_are_ocrd(tmp_path: Path):
    documents.scanned_pdf(tmp_path / "scan.pdf", documents.SCAN_PAGES[:1])
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGB", (900, 300), "white")
    ImageDraw.Draw(image).text(
        (40, 120), "Buoy 12 is painted red.", fill="black", font=ImageFont.load_default(size=36)
    )
    image.save(tmp_path / "buoy.png")
    pages = load(tmp_path / "buoy.png")
    assert pages[0].text == "Buoy 12 is painted red."
    assert file_notes(pages) == ["OCR'd"]
    Image.new("RGB", (400, 300), "white").save(tmp_path / "blank.jpg")
    assert file_notes(load(tmp_path / "blank.jpg")) == ["no text found by OCR"]


def test_without_ocr_a_scan_is_skipped_naming_the_extra(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(ocr, "available", lambda: False)
    scan = documents.scanned_pdf(tmp_path / "scan.pdf", documents.SCAN_PAGES)
    with pytest.raises(
        LoadError, match=r"no text layer \(scanned\?\); to read it, pip install 'ragchat\[ocr\]'"
    ):
        load(scan)
    documents.scanned_pdf(tmp_path / "one.png", documents.SCAN_PAGES[:1])
    with pytest.raises(LoadError, match=r"pip install 'ragchat\[ocr\]'"):
        load(tmp_path / "one.png")


def test_ocr_lines_are_laid_out_top_to_bottom_then_left_to_right():
    boxes = [
        (100.0, 130.0, 400.0, "world"),
        (102.0, 128.0, 50.0, "Hello"),
        (140.0, 170.0, 50.0, "next line"),
        (300.0, 330.0, 50.0, "a paragraph later"),
    ]
    assert ocr._layout(boxes) == "Hello world\nnext line\n\na paragraph later"


def test_a_reader_that_keeps_saying_it_moves_on_is_not_cut_off(tmp_path: Path):
    steps: list[str] = []
    patient = SafeLoader(timeout=60, on_step=steps.append)
    # started first: a busy machine may take longer than the time limit to spawn the worker
    # and import this module in it, and that is not what is measured
    assert patient.load_with(_nothing, tmp_path / "warm-up.pdf") == []
    patient.timeout = 2
    started = time.perf_counter()
    assert patient.load_with(_slow_but_steady, tmp_path / "scan.pdf") == []
    assert time.perf_counter() - started > 3  # longer than the timeout, in steps shorter than it
    assert steps and all(step.startswith("scan.pdf: page ") for step in steps)
    with pytest.raises(LoadError, match="took longer than 2s"):
        patient.load_with(_stalls_after_a_step, tmp_path / "scan.pdf")
    patient.close()


def _nothing(path):
    return []


def _slow_but_steady(path):
    for n in range(1, 6):
        time.sleep(0.8)
        heartbeat(f"page {n}")
    return []


def _stalls_after_a_step(path):
    heartbeat("page 1")
    time.sleep(60)
    return []
