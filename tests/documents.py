"""Real documents of every format ragchat reads, written by the writing side of real
libraries (python-docx, python-pptx, openpyxl, odfdo, the email package, Pillow) or, where
there is none to hand, laid out by hand as the format's specification says (EPUB, RTF).

Each holds a fact that only it holds, so a search can be checked to find the right file.
"""

from __future__ import annotations

import json
import re
import zipfile
from email.message import EmailMessage
from pathlib import Path
from typing import Any

# (file, query, the text the best chunk must hold)
FACTS = {
    "report.docx": (
        "Kestrel quay tonnage in 2022, 2023 and 2024",
        "Kestrel quay | 4,118 | 4,377 | 4,902",
    ),
    "deck.pptx": ("How many tugboats does the fleet plan add?", "eleven new tugboats"),
    "sheet.xlsx": ("Osprey berth dues", "Osprey | 730 | 815 | 1545"),
    "letter.eml": ("When does the dredger Marlin arrive?", "dredger Marlin arrives on 14 June"),
    "plan.odt": ("Which berth are the pilot boats moored at?", "moored at berth nine"),
    "guide.epub": ("lighthouse keeper's cat name", "keeper's cat is called Barnacle"),
    "scan.pdf": ("What is the crane load limit?", "load limit is 42 tonnes"),
}


def word_report(path: Path) -> Path:
    """A Word report: title, headings, a paragraph, a table, a text box and a comment."""
    import docx
    from docx.oxml import parse_xml

    document = docx.Document()
    document.add_heading("Harbour annual report", 0)
    document.add_heading("Cargo handled", 1)
    document.add_paragraph("The quays of the harbour handled more cargo every year.")
    table = document.add_table(rows=4, cols=4)
    rows = [
        ["Quay", "2022", "2023", "2024"],
        ["Heron quay", "1,577", "1,373", "1,420"],
        ["Kestrel quay", "4,118", "4,377", "4,902"],
        ["Plover quay", "880", "912", "1,004"],
    ]
    for r, values in enumerate(rows):
        for c, value in enumerate(values):
            table.cell(r, c).text = value
    document.add_heading("Outlook", 2)
    outlook = document.add_paragraph("Traffic will grow again next year.")
    document.add_comment(outlook.runs, text="Source: the port authority", author="Ana")
    boxed = document.add_paragraph("See the box.")
    boxed._p.append(
        parse_xml(
            '<w:r xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
            ' xmlns:v="urn:schemas-microsoft-com:vml"><w:pict><v:shape><v:textbox>'
            "<w:txbxContent><w:p><w:r><w:t>The harbour master signs every manifest.</w:t></w:r>"
            "</w:p></w:txbxContent></v:textbox></v:shape></w:pict></w:r>"
        )
    )
    document.save(str(path))
    return path


def slide_deck(path: Path) -> Path:
    """Two slides: a title and bullets with speaker notes; a title and a table."""
    import pptx
    from pptx.util import Inches

    deck = pptx.Presentation()
    first = deck.slides.add_slide(deck.slide_layouts[1])
    first.shapes.title.text = "Fleet renewal"
    first.placeholders[1].text = "The fleet plan adds eleven new tugboats\nTwo pilot boats retire"
    first.notes_slide.notes_text_frame.text = "Say that the tugboats come from Gdansk."
    second = deck.slides.add_slide(deck.slide_layouts[5])
    second.shapes.title.text = "Budget"
    table = second.shapes.add_table(2, 2, Inches(1), Inches(2), Inches(4), Inches(1)).table
    for (r, c), value in {
        (0, 0): "Year",
        (0, 1): "Budget",
        (1, 0): "2025",
        (1, 1): "7,300",
    }.items():
        table.cell(r, c).text = value
    deck.save(str(path))
    return path


def workbook(path: Path) -> Path:
    """Two sheets; a SUM formula whose cached value (what Excel saved) is written in, since
    openpyxl writes formulas without one."""
    import openpyxl

    book = openpyxl.Workbook()
    dues = book.active
    dues.title = "Berth dues"
    dues.append(["Berth", "Spring", "Autumn", "Total"])
    dues.append(["Heron", 410, 390, "=B2+C2"])
    dues.append(["Osprey", 730, 815, "=B3+C3"])
    share = book.create_sheet("Shares")
    share.append(["Owner", "Share"])
    share.append(["City", 0.625])
    share["B2"].number_format = "0.0%"
    book.save(str(path))
    cached = {"D2": "800", "D3": "1545"}
    with zipfile.ZipFile(path) as archive:
        parts = {name: archive.read(name) for name in archive.namelist()}
    sheet = parts["xl/worksheets/sheet1.xml"].decode()
    for cell, value in cached.items():
        sheet, n = re.subn(
            rf'(<c r="{cell}"[^>]*>)<f>([^<]*)</f>(<v\s*/>|<v></v>)?',
            rf"\g<1><f>\g<2></f><v>{value}</v>",
            sheet,
        )
        assert n == 1, cell
    parts["xl/worksheets/sheet1.xml"] = sheet.encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
    return path


def email_message(path: Path, attachment: Path | None = None) -> Path:
    """A saved e-mail with a plain body, an HTML alternative and (optionally) an attachment."""
    message = EmailMessage()
    message["Subject"] = "Dredging schedule"
    message["From"] = "Harbour Office <office@harbour.example>"
    message["To"] = "crew@harbour.example"
    message["Date"] = "Mon, 02 Jun 2025 09:30:00 +0000"
    message.set_content("Hello crew,\n\nThe dredger Marlin arrives on 14 June at the east basin.\n")
    message.add_alternative("<p>The dredger <b>Marlin</b> arrives on 14 June.</p>", subtype="html")
    if attachment is not None:
        message.add_attachment(
            attachment.read_bytes(),
            maintype="application",
            subtype="octet-stream",
            filename=attachment.name,
        )
    path.write_bytes(bytes(message))
    return path


def opendocument_text(path: Path) -> Path:
    from odfdo import Document, Header, Paragraph, Table

    document = Document("text")
    document.body.append(Header(1, "Harbour plan"))
    document.body.append(Paragraph("The pilot boats are moored at berth nine."))
    document.body.append(Header(2, "Tides"))
    table = Table("Tides", width=3, height=3)
    table.set_values(
        [["Day", "High", "Low"], ["Monday", "4.2 m", "0.8 m"], ["Tuesday", "4.4 m", "0.6 m"]]
    )
    document.body.append(table)
    document.save(str(path))
    return path


def opendocument_sheet(path: Path) -> Path:
    from odfdo import Document, Table

    document = Document("spreadsheet")
    document.body.clear()
    table = Table("Cargo")
    table.set_values([["Ship", "Tons"], ["Albatross", 1200], ["Petrel", 900]])
    document.body.append(table)
    document.save(str(path))
    return path


def opendocument_slides(path: Path) -> Path:
    from odfdo import Document, DrawPage, Frame

    document = Document("presentation")
    document.body.clear()
    page = DrawPage("p1", name="Safety")
    page.append(
        Frame.text_frame(
            "Safety briefing",
            size=("20cm", "3cm"),
            position=("1cm", "1cm"),
            presentation_class="title",
        )
    )
    page.append(
        Frame.text_frame(
            "Life jackets are in locker B.", size=("20cm", "9cm"), position=("1cm", "5cm")
        )
    )
    document.body.append(page)
    document.save(str(path))
    return path


def epub(path: Path) -> Path:
    """An EPUB 3 with a navigation document; its spine lists the chapters out of file order."""
    container = (
        '<?xml version="1.0"?><container version="1.0"'
        ' xmlns="urn:oasis:names:tc:opendocument:xmlns:container"><rootfiles>'
        '<rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/>'
        "</rootfiles></container>"
    )
    package = (
        '<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0"'
        ' unique-identifier="id"><metadata xmlns:dc="http://purl.org/dc/elements/1.1/">'
        '<dc:identifier id="id">urn:test:guide</dc:identifier><dc:title>Harbour guide</dc:title>'
        "</metadata><manifest>"
        '<item id="nav" href="nav.xhtml" media-type="application/xhtml+xml" properties="nav"/>'
        '<item id="a" href="text/b.xhtml" media-type="application/xhtml+xml"/>'
        '<item id="b" href="text/a.xhtml" media-type="application/xhtml+xml"/>'
        '</manifest><spine><itemref idref="a"/><itemref idref="b"/></spine></package>'
    )
    nav = (
        '<html xmlns="http://www.w3.org/1999/xhtml" xmlns:epub="http://www.idpf.org/2007/ops">'
        '<body><nav epub:type="toc"><ol><li><a href="text/b.xhtml">The breakwater</a></li>'
        '<li><a href="text/a.xhtml#top">The lighthouse</a></li></ol></nav></body></html>'
    )
    chapter = (
        '<html xmlns="http://www.w3.org/1999/xhtml"><head><title>{0}</title></head><body>'
        "<h1>{0}</h1><p>{1}</p></body></html>"
    )
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mimetype", "application/epub+zip", compress_type=zipfile.ZIP_STORED)
        archive.writestr("META-INF/container.xml", container)
        archive.writestr("OEBPS/content.opf", package)
        archive.writestr("OEBPS/nav.xhtml", nav)
        archive.writestr(
            "OEBPS/text/b.xhtml",
            chapter.format("The breakwater", "The breakwater is two kilometres long."),
        )
        archive.writestr(
            "OEBPS/text/a.xhtml",
            chapter.format("The lighthouse", "The lighthouse keeper's cat is called Barnacle."),
        )
    return path


def notebook(path: Path) -> Path:
    cells = [
        {"cell_type": "markdown", "source": ["# Tide model\n", "Fits the tide tables."]},
        {
            "cell_type": "code",
            "source": "def tide(hour):\n    return 2.1 * hour\n",
            "outputs": [{"text": "SECRET OUTPUT"}],
        },
        {"cell_type": "markdown", "source": "## Checks"},
        {"cell_type": "code", "source": ["assert tide(1) == 2.1"], "outputs": []},
    ]
    notebook = {
        "cells": cells,
        "metadata": {"language_info": {"name": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path.write_text(json.dumps(notebook))
    return path


def rich_text(path: Path) -> Path:
    path.write_text(
        r"{\rtf1\ansi\deff0{\fonttbl{\f0 Times;}}\f0 Harbour rules\par"
        r" Mooring lines must be doubled in a gale.\par"
        r" Caf\'e9 opens at six.\par}"
    )
    return path


def page_image(lines: list[str]) -> Any:
    """A page as a scanner sees it: black text on white, A4 at 150 dpi."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=30)
    image = Image.new("RGB", (1240, 1754), "white")
    draw = ImageDraw.Draw(image)
    for number, line in enumerate(lines):
        draw.text((120, 150 + 60 * number), line, fill="black", font=font)
    return image


def scanned_pdf(path: Path, pages: list[list[str]]) -> Path:
    """An image-only PDF (no text layer), one page image per page, as a scanner makes them."""
    images = [page_image(lines) for lines in pages]
    images[0].save(path, save_all=True, append_images=images[1:], resolution=150)
    return path


SCAN_PAGES = [
    [
        "Crane inspection",
        "",
        "Crane number 7 was inspected in March.",
        "Its load limit is 42 tonnes.",
    ],
    ["Second page", "", "The cable was replaced by Mariana Okafor."],
]


def folder_of_documents(folder: Path) -> Path:
    """One file of each format the held-out check names, each with its fact."""
    folder.mkdir(parents=True, exist_ok=True)
    word_report(folder / "report.docx")
    slide_deck(folder / "deck.pptx")
    workbook(folder / "sheet.xlsx")
    email_message(folder / "letter.eml")
    opendocument_text(folder / "plan.odt")
    epub(folder / "guide.epub")
    scanned_pdf(folder / "scan.pdf", SCAN_PAGES)
    return folder
