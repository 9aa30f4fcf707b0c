"""Office files, OpenDocument, e-mail, e-books, notebooks, RTF and scans: real files in, the
structure kept for chunking and citing."""

from __future__ import annotations

import mailbox
import time
import zipfile
from pathlib import Path

import documents
import pytest
from helpers import EVAL, make_app

from ragchat.chunking import chunk_pages
from ragchat.errors import LoadError
from ragchat.loaders import ISOLATED_SUFFIXES, file_notes, load

POI = EVAL / "office"


def blocks_of(pages):
    """(page label or number, headings, header, text) of every block."""
    return [
        (p.name, b.headings, b.header, p.text[b.start : b.end]) for p in pages for b in p.blocks
    ]


def words(texts):
    return [len(t.split()) + 2 for t in texts]


def test_word_headings_table_rows_text_box_and_comment(tmp_path: Path):
    pages = load(documents.word_report(tmp_path / "report.docx"))
    found = blocks_of(pages)
    assert ("", ("Harbour annual report", "Cargo handled"), "Quay | 2022 | 2023 | 2024",
            "Heron quay | 1,577 | 1,373 | 1,420\nKestrel quay | 4,118 | 4,377 | 4,902\n"
            "Plover quay | 880 | 912 | 1,004") in found  # fmt: skip
    texts = {text: headings for _, headings, _, text in found}
    assert texts["Traffic will grow again next year."] == (
        "Harbour annual report",
        "Cargo handled",
        "Outlook",
    )
    assert "The harbour master signs every manifest." in texts  # the text box
    assert texts["Ana: Source: the port authority"] == ("Comments",)


def test_a_chunk_of_table_rows_repeats_the_header_and_never_splits_a_row(tmp_path: Path):
    import docx

    document = docx.Document()
    document.add_heading("Ledger", 1)
    rows = [["Account", "Q1", "Q2", "Q3"]] + [
        [f"Account {n}", str(n * 11), str(n * 13), str(n * 17)] for n in range(60)
    ]
    table = document.add_table(rows=len(rows), cols=4)
    for r, values in enumerate(rows):
        for c, value in enumerate(values):
            table.cell(r, c).text = value
    document.save(str(tmp_path / "ledger.docx"))
    chunks = chunk_pages(load(tmp_path / "ledger.docx"), words, target=40, limit=60)
    assert len(chunks) > 5
    seen = []
    for chunk in chunks:
        lines = chunk.text.split("\n")
        assert lines[0] == "Account | Q1 | Q2 | Q3"
        assert all(line.startswith("Account ") and line.count(" | ") == 3 for line in lines[1:])
        assert words([chunk.embed_text])[0] <= 60
        seen += lines[1:]
    assert seen == [" | ".join(row) for row in rows[1:]]  # every row once, in order


def test_slides_are_pages_cited_by_number_with_title_and_notes(tmp_path: Path):
    pages = load(documents.slide_deck(tmp_path / "deck.pptx"))
    assert [(p.number, p.name) for p in pages] == [(1, "slide 1"), (2, "slide 2")]
    assert blocks_of(pages) == [
        ("slide 1", ("Fleet renewal",), "", "The fleet plan adds eleven new tugboats\nTwo pilot boats retire"),
        ("slide 1", ("Fleet renewal", "Speaker notes"), "", "Say that the tugboats come from Gdansk."),
        ("slide 2", ("Budget",), "Year | Budget", "2025 | 7,300"),
    ]  # fmt: skip


def test_sheets_are_pages_cited_by_name_with_cached_formula_values(tmp_path: Path):
    pages = load(documents.workbook(tmp_path / "sheet.xlsx"))
    assert blocks_of(pages) == [
        ("sheet Berth dues", ("Berth dues",), "Berth | Spring | Autumn | Total",
         "Heron | 410 | 390 | 800\nOsprey | 730 | 815 | 1545"),
        ("sheet Shares", ("Shares",), "Owner | Share", "City | 62.5%"),
    ]  # fmt: skip
    assert [p.number for p in pages] == [1, 2]


def test_huge_sheet_is_capped_with_a_note(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from ragchat import office

    monkeypatch.setattr(office, "MAX_ROWS", 50)
    (tmp_path / "big.csv").write_text("id,value\n" + "".join(f"{n},{n * 2}\n" for n in range(80)))
    pages = load(tmp_path / "big.csv")
    assert pages[0].text.count("\n") == 50  # the header and 50 rows
    assert file_notes(pages) == ["capped at 50 rows"]


def test_csv_and_tsv_are_tables(tmp_path: Path):
    (tmp_path / "scores.csv").write_text('name;score;note\nana;3;"fine; really"\nbob;4;\n')
    (tmp_path / "scores.tsv").write_text("name\tscore\nana\t3\n")
    assert blocks_of(load(tmp_path / "scores.csv")) == [
        ("", (), "name | score | note", "ana | 3 | fine; really\nbob | 4")
    ]
    assert blocks_of(load(tmp_path / "scores.tsv")) == [("", (), "name | score", "ana | 3")]


def test_email_headers_body_and_attachments(tmp_path: Path):
    attachment = documents.word_report(tmp_path / "report.docx")
    (tmp_path / "logo.gif").write_bytes(b"GIF89a")
    path = documents.email_message(tmp_path / "letter.eml", attachment)
    pages = load(path)
    first = pages[0]
    assert first.text.startswith(
        "From: Harbour Office <office@harbour.example>\nTo: crew@harbour.example\n"
        "Date: Mon, 02 Jun 2025 09:30:00 +0000\n\nHello crew,"
    )
    assert {b.headings for b in first.blocks} == {("Dredging schedule",)}
    assert "arrives on 14 June at the east basin" in first.text  # the plain part, not the HTML
    rows = [b for b in blocks_of(pages[1:]) if b[2]]
    assert rows[0][:3] == ("report.docx", ("Dredging schedule", "report.docx", "Harbour annual report", "Cargo handled"), "Quay | 2022 | 2023 | 2024")  # fmt: skip


def test_html_only_email_and_unsupported_attachment_is_named(tmp_path: Path):
    from email.message import EmailMessage

    message = EmailMessage()
    message["Subject"] = "Menu"
    message.set_content(
        "<html><body><h2>Lunch</h2><p>Fish soup today.</p></body></html>", subtype="html"
    )
    message.add_attachment(
        b"\x00\x01", maintype="application", subtype="x-thing", filename="data.bin"
    )
    message.add_attachment(b"\x89PNG", maintype="image", subtype="png", filename="logo.png")
    (tmp_path / "menu.eml").write_bytes(bytes(message))
    pages = load(tmp_path / "menu.eml")
    assert blocks_of(pages) == [("", ("Menu", "Lunch"), "", "Fish soup today.")]
    assert file_notes(pages) == [
        "attachments skipped: data.bin (unsupported type .bin), logo.png (an image)"
    ]


def test_mailbox_is_one_page_per_message(tmp_path: Path):
    box = mailbox.mbox(tmp_path / "inbox.mbox")
    for n, subject in enumerate(["Tides", "Buoys"], start=1):
        box.add(f"From: a@b.example\nSubject: {subject}\n\nMessage number {n}.\n")
    box.close()
    pages = load(tmp_path / "inbox.mbox")
    assert [(p.number, p.name, p.blocks[-1].headings) for p in pages] == [
        (1, "message 1", ("Tides",)),
        (2, "message 2", ("Buoys",)),
    ]
    assert "Message number 2." in pages[1].text


def test_opendocument_text_sheet_and_slides(tmp_path: Path):
    assert blocks_of(load(documents.opendocument_text(tmp_path / "plan.odt"))) == [
        ("", ("Harbour plan",), "", "The pilot boats are moored at berth nine."),
        ("", ("Harbour plan", "Tides"), "Day | High | Low", "Monday | 4.2 m | 0.8 m\nTuesday | 4.4 m | 0.6 m"),
    ]  # fmt: skip
    assert blocks_of(load(documents.opendocument_sheet(tmp_path / "cargo.ods"))) == [
        ("sheet Cargo", ("Cargo",), "Ship | Tons", "Albatross | 1200\nPetrel | 900")
    ]
    assert blocks_of(load(documents.opendocument_slides(tmp_path / "brief.odp"))) == [
        ("slide 1", ("Safety briefing",), "", "Life jackets are in locker B.")
    ]


def test_ods_repeated_empty_rows_and_columns_cost_nothing(tmp_path: Path):
    """LibreOffice writes a sheet's unused rest as ~1,048,000 repeated empty rows."""
    content = (
        '<?xml version="1.0"?><office:document-content'
        ' xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"'
        ' xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0"'
        ' xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"><office:body>'
        '<office:spreadsheet><table:table table:name="S">'
        "<table:table-row><table:table-cell><text:p>Name</text:p></table:table-cell>"
        '<table:table-cell table:number-columns-repeated="16383"/></table:table-row>'
        "<table:table-row><table:table-cell><text:p>Tern</text:p></table:table-cell></table:table-row>"
        '<table:table-row table:number-rows-repeated="1048574"><table:table-cell'
        ' table:number-columns-repeated="16384"/></table:table-row>'
        "</table:table></office:spreadsheet></office:body></office:document-content>"
    )
    with zipfile.ZipFile(tmp_path / "wide.ods", "w") as archive:
        archive.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
        archive.writestr("content.xml", content)
    assert blocks_of(load(tmp_path / "wide.ods")) == [("sheet S", ("S",), "Name", "Tern")]


def test_epub_chapters_in_spine_order_titled_by_the_table_of_contents(tmp_path: Path):
    pages = load(documents.epub(tmp_path / "guide.epub"))
    assert blocks_of(pages) == [
        ("", ("The breakwater",), "", "The breakwater is two kilometres long."),
        ("", ("The lighthouse",), "", "The lighthouse keeper's cat is called Barnacle."),
    ]


def test_notebook_cells_without_outputs(tmp_path: Path):
    pages = load(documents.notebook(tmp_path / "tides.ipynb"))
    found = blocks_of(pages)
    assert found[0] == ("", ("Tide model",), "", "Fits the tide tables.")
    assert found[1][1:] == (
        ("Tide model",),
        "",
        "```python\ndef tide(hour):\n    return 2.1 * hour\n```",
    )
    assert found[2][1] == ("Tide model", "Checks")
    assert "SECRET OUTPUT" not in pages[0].text


def test_rtf(tmp_path: Path):
    pages = load(documents.rich_text(tmp_path / "rules.rtf"))
    assert [text for *_, text in blocks_of(pages)] == [
        "Harbour rules",
        "Mooring lines must be doubled in a gale.",
        "Café opens at six.",
    ]


def test_every_new_format_is_read_in_the_worker():
    for suffix in (".docx", ".pptx", ".xlsx", ".csv", ".odt", ".ods", ".odp", ".eml", ".mbox",
                   ".msg", ".epub", ".ipynb", ".rtf", ".png", ".jpg", ".tiff", ".pdf"):  # fmt: skip
        assert suffix in ISOLATED_SUFFIXES, suffix


# Hostile files


def test_zip_bombs_are_refused_before_parsing(tmp_path: Path):
    bomb = tmp_path / "bomb.docx"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("word/document.xml", b"\0" * (64 << 20))  # 64 MiB in ~64 KB
    with pytest.raises(LoadError, match=r"refused: 'word/document.xml' inflates 1,0\d\d:1"):
        load(bomb)
    many = tmp_path / "many.xlsx"
    with zipfile.ZipFile(many, "w") as archive:
        for n in range(10_001):
            archive.writestr(f"x/{n}", b"")
    with pytest.raises(LoadError, match="refused: 10,001 zip entries"):
        load(many)


def test_overlapping_zip_entries_are_refused(tmp_path: Path):
    """A non-recursive zip bomb: many central-directory entries over one compressed stream."""
    path = tmp_path / "overlap.pptx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a.xml", b"a" * 1000)
        archive.writestr("b.xml", b"b" * 1000)
    data = bytearray(path.read_bytes())
    second = data.index(b"PK\x01\x02", data.index(b"PK\x01\x02") + 4)
    data[second + 42 : second + 46] = (0).to_bytes(4, "little")  # b.xml "starts" where a.xml does
    path.write_bytes(bytes(data))
    with pytest.raises(LoadError, match="zip entries overlap"):
        load(path)


def test_broken_and_encrypted_office_files_are_load_errors(tmp_path: Path):
    (tmp_path / "broken.docx").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(LoadError, match="damaged or not a zip archive"):
        load(tmp_path / "broken.docx")
    (tmp_path / "locked.xlsx").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 504)
    with pytest.raises(LoadError, match="encrypted with a password"):
        load(tmp_path / "locked.xlsx")


def test_external_entities_are_never_resolved(tmp_path: Path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-VALUE")
    doctype = f'<!DOCTYPE d [<!ENTITY xxe SYSTEM "file://{secret}">]>'
    # Word (python-docx's parser does not resolve entities)
    source = documents.word_report(tmp_path / "source.docx")
    with zipfile.ZipFile(source) as archive:
        parts = {name: archive.read(name) for name in archive.namelist()}
    xml = parts["word/document.xml"].decode()
    xml = xml.replace("?>", "?>" + doctype.replace("d [", "w:document ["), 1)
    parts["word/document.xml"] = xml.replace("Cargo handled", "Cargo &xxe;").encode()
    with zipfile.ZipFile(tmp_path / "xxe.docx", "w") as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
    try:
        text = "".join(p.text for p in load(tmp_path / "xxe.docx"))
    except LoadError:
        text = ""
    assert "TOP-SECRET" not in text
    # OpenDocument and EPUB (defusedxml refuses the DTD's entities)
    content = (
        f'<?xml version="1.0"?>{doctype.replace("d [", "office:document-content [")}'
        '<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"'
        ' xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"><office:body><office:text>'
        "<text:p>&xxe;</text:p></office:text></office:body></office:document-content>"
    )
    with zipfile.ZipFile(tmp_path / "xxe.odt", "w") as archive:
        archive.writestr("content.xml", content)
    with pytest.raises(LoadError, match=r"refused: content\.xml declares entities"):
        load(tmp_path / "xxe.odt")


def test_billion_laughs_in_a_sheet_is_refused(tmp_path: Path):
    laughs = (
        '<!DOCTYPE worksheet [<!ENTITY a "hahahahahahahahahaha">'
        + "".join(f'<!ENTITY {chr(98 + n)} "{("&" + chr(97 + n) + ";") * 10}">' for n in range(8))
        + "]>"
    )
    source = documents.workbook(tmp_path / "source.xlsx")
    with zipfile.ZipFile(source) as archive:
        parts = {name: archive.read(name) for name in archive.namelist()}
    sheet = parts["xl/worksheets/sheet1.xml"].decode()
    parts["xl/worksheets/sheet1.xml"] = (
        laughs + sheet.replace("<t>Osprey</t>", "<t>&i;</t>")
    ).encode()
    with zipfile.ZipFile(tmp_path / "laughs.xlsx", "w") as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
    with pytest.raises(LoadError, match=r"unreadable xlsx .*could not read worksheets"):
        load(tmp_path / "laughs.xlsx")


def test_messages_nested_in_messages_are_read_to_a_depth(tmp_path: Path):
    from email.message import EmailMessage

    inner = EmailMessage()
    inner["Subject"] = "Level 0"
    inner.set_content("deepest text")
    for level in range(1, 6):
        outer = EmailMessage()
        outer["Subject"] = f"Level {level}"
        outer.set_content(f"text of level {level}")
        outer.add_attachment(inner)
        inner = outer
    (tmp_path / "nested.eml").write_bytes(bytes(inner))
    pages = load(tmp_path / "nested.eml")
    text = "".join(p.text for p in pages)
    assert "text of level 5" in text and "text of level 3" in text
    assert "deepest text" not in text
    assert any("nested 3 deep" in note for note in file_notes(pages))


@pytest.mark.parametrize("name", ["bug53475-password-is-pass.docx", "truncated62886.docx"])
def test_poi_broken_files_are_named(name: str):
    path = POI / "document" / name
    if not path.exists():
        pytest.skip("../shared/eval/office is absent")
    with pytest.raises(LoadError):
        load(path)


def test_poi_outlook_message_with_attachment():
    path = POI / "hsmf" / "58214_with_attachment.msg"
    if not path.exists():
        pytest.skip("../shared/eval/office is absent")
    pages = load(path)
    assert pages[0].text.startswith("From: ")
    assert len(pages) == 2  # the attached message, under the subject of the one it came with
    assert pages[1].blocks[0].headings == ("Master mail", "Test mail attachment")


def test_poi_footnotes():
    path = POI / "document" / "footnotes.docx"
    if not path.exists():
        pytest.skip("../shared/eval/office is absent")
    assert ("", ("Footnotes",), "", "[1] snoska") in blocks_of(load(path))


def test_a_file_without_text_is_named_in_the_notes(tmp_path: Path):
    import docx

    docx.Document().save(str(tmp_path / "empty.docx"))
    app = make_app(tmp_path / "home", collection="notes", chunk_tokens=50)
    report = app.ingest(tmp_path / "empty.docx")
    assert report.notes == [(str(tmp_path / "empty.docx"), "no text found")]
    assert report.note_lines() == ["empty.docx: no text found"]
    assert report.to_dict()["notes"] == [
        {"path": str(tmp_path / "empty.docx"), "note": "no text found"}
    ]


@pytest.mark.slow  # ~40 s on 2 cores: every file through the worker, a real Chroma store
def test_every_poi_file_is_ingested_or_skipped_with_its_reason(tmp_path: Path):
    """Apache POI's real, odd and fuzzer-found files: no traceback, no hang, each one
    either ingested or named with a reason."""
    if not POI.is_dir():
        pytest.skip("../shared/eval/office is absent")
    files = sorted(str(p) for p in POI.rglob("*") if p.is_file())
    app = make_app(tmp_path / "home", collection="poi", chunk_tokens=64)
    started = time.perf_counter()
    report = app.ingest(POI)
    seconds = time.perf_counter() - started
    skipped = dict(report.skipped)
    assert sorted(report.added + list(skipped)) == files
    assert all(reason.strip() for reason in skipped.values())
    # bounded by the worker's limits, but none of these needs them: no crash, no time-out
    assert not [r for r in skipped.values() if "crashed" in r or "took longer" in r]
    assert len(report.added) > 400, skipped
    assert seconds < 180


def test_importing_the_loaders_imports_no_format_library():
    import subprocess
    import sys

    probe = (
        "import sys, ragchat.loaders, ragchat.cli\n"
        "heavy = {'docx', 'pptx', 'openpyxl', 'rapidocr', 'cv2', 'PIL', 'olefile', 'lxml', 'bs4'}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
    )
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "[]"


def test_a_slide_is_cited_by_its_label_in_search_and_on_a_spectrum(tmp_path: Path):
    from ragchat.explore import Axis, place_chunks

    (tmp_path / "docs").mkdir()
    deck = documents.slide_deck(tmp_path / "docs" / "deck.pptx")
    app = make_app(tmp_path / "home")
    app.ingest(deck.parent)
    hit = app.retriever("lexical").retrieve("eleven new tugboats", 1)[0]
    assert (hit.page, hit.page_label, hit.location) == (1, "slide 1", f"{deck}, slide 1")
    axis = Axis.from_examples(app.embedder, ["tugboats"], ["pilot boats"])
    low, high, scored = place_chunks(app.collection, axis, 3)
    assert scored == 3  # slide 1, its speaker notes, slide 2
    assert sorted(p.location for p in low) == [f"{deck}, slide 1"] * 2 + [f"{deck}, slide 2"]
    assert high[0].to_dict()["location"] == f"{deck}, slide 1"  # --json shows it too
