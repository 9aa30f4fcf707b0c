from __future__ import annotations

from pathlib import Path

import pytest
from helpers import text_pdf

from ragchat.errors import LoadError
from ragchat.loaders import load
from ragchat.pages import html_page, markdown_page, paragraph_blocks


def texts(page):
    return [page.text[b.start : b.end] for b in page.blocks]


def test_paragraph_blocks_keep_spans():
    text = "First para\nstill first.\n\n  Second para.\n\n\n\nThird."
    blocks = paragraph_blocks(text)
    assert [text[b.start : b.end] for b in blocks] == [
        "First para\nstill first.",
        "Second para.",
        "Third.",
    ]


def test_markdown_blocks_carry_heading_path_and_keep_code_fences_whole():
    text = (
        "# Guide\n\nIntro text.\n\n## Setup\n\n- one\n- two\n\n```\n# not a heading\n\nstill code\n```\n\n"
        "### Deep\n\nDeep text.\n\n## Usage\n\nUse it.\n"
    )
    page = markdown_page(text)
    assert texts(page) == [
        "Intro text.",
        "- one\n- two",
        "```\n# not a heading\n\nstill code\n```",
        "Deep text.",
        "Use it.",
    ]
    assert [b.headings for b in page.blocks] == [
        ("Guide",),
        ("Guide", "Setup"),
        ("Guide", "Setup"),
        ("Guide", "Setup", "Deep"),
        ("Guide", "Usage"),
    ]


def test_html_drops_scripts_and_styles_and_keeps_headings():
    markup = """<html><head><title>T</title><style>p{color:red} zzstyle</style></head>
    <body><script>var zzscript = 1;</script><h1>Top</h1><p>Hello <b>bold</b>
    world.</p><div>Loose text<p>Inner para</p></div><h2>Sub</h2><ul><li>Item one</li><li>Item two</li></ul>
    <pre>code  keeps
  spacing</pre></body></html>"""
    page = html_page(markup)
    assert "zzstyle" not in page.text and "zzscript" not in page.text
    assert texts(page) == [
        "Hello bold world.",
        "Loose text",
        "Inner para",
        "Item one",
        "Item two",
        "code  keeps\n  spacing",
    ]
    assert page.blocks[0].headings == ("Top",)
    assert page.blocks[3].headings == ("Top", "Sub")


def test_binary_and_unknown_files_are_refused_with_reason(tmp_path: Path):
    binary = tmp_path / "x.bin"
    binary.write_bytes(b"\x00\x01\x02abc")
    unknown = tmp_path / "x.weird"
    unknown.write_text("hello")
    with pytest.raises(LoadError, match="binary"):
        load(binary)
    with pytest.raises(LoadError, match=r"unsupported type \(\.weird\)"):
        load(unknown)


def test_text_in_latin1_is_decoded(tmp_path: Path):
    path = tmp_path / "old.txt"
    path.write_bytes("Café crème, déjà vu, naïve façade — les élèves étaient là.".encode("cp1252"))
    page = load(path)[0]
    assert "déjà" in page.text


def test_broken_pdf_is_a_load_error(tmp_path: Path):
    path = tmp_path / "broken.pdf"
    path.write_bytes(b"%PDF-1.4\n garbage garbage")
    with pytest.raises(LoadError):
        load(path)


def test_sample_pdf_has_page_numbers():
    from helpers import CORPUS

    pages = load(CORPUS / "annual-report-2024.pdf")
    assert [p.number for p in pages] == [1, 2, 3]
    assert "412" in pages[0].text
    assert "480" in pages[1].text


def test_shared_pdfs_load_with_page_numbers(eval_pdfs: Path):
    pdfs = sorted(eval_pdfs.glob("*.pdf"))
    assert pdfs
    for path in pdfs:
        pages = load(path)
        assert [p.number for p in pages] == list(range(1, len(pages) + 1)), path.name
        assert sum(len(p.blocks) for p in pages) > 0, path.name


def test_aes_encrypted_pdf_opens_with_empty_password(eval_pdfs: Path):
    from pypdf import PdfReader

    path = eval_pdfs / "ADOBE_2022_10K.pdf"
    if not path.exists():
        pytest.skip("ADOBE_2022_10K.pdf is not in ../shared/eval/pdfs")
    assert PdfReader(path).is_encrypted
    pages = load(path)
    assert len(pages) > 10
    assert any("Adobe" in p.text for p in pages[:3])


def test_pdf_text_cleanup():
    from ragchat.loaders import clean_pdf_pages

    words = ["alpha", "beta", "gamma", "delta"]

    def body(word: str) -> str:
        return "\n".join(f"A {word} line, number {i}." for i in range(5))

    pages = [
        f"ACME Corp Annual Report\nThe ﬁrst {w} ﬁnding is impor-\ntant.\n{body(w)}\nPage {n} of 4"
        for n, w in enumerate(words, start=1)
    ]
    cleaned = clean_pdf_pages(pages)
    assert cleaned[2] == "The first gamma finding is important.\n" + body("gamma")


def test_text_control_characters_become_spaces_keeping_offsets(tmp_path: Path):
    path = tmp_path / "c.txt"
    path.write_bytes(b"ab\x07cd\x1b[31mef")
    page = load(path)[0]
    assert page.text == "ab cd [31mef" and len(page.text) == 12


def test_sample_pdf_has_no_running_header_or_footer():
    from helpers import CORPUS

    pages = load(CORPUS / "annual-report-2024.pdf")
    assert all(
        "Page 1 of 3" not in p.text and "Annual Report 2024\n" not in p.text[:80] for p in pages[1:]
    )


def test_layout_rows_keep_a_table_row_with_its_label():
    from ragchat.loaders import layout_rows

    layout = (
        "          CONSOLIDATED STATEMENTS OF CASH FLOWS\n"
        "  Purchases of property and equipment ..........     (184,936   )      (148,332)"
        "      $   (188,358)\n"
        "  Net cash used           12 %\n"
    )
    assert layout_rows(layout).split("\n") == [
        "CONSOLIDATED STATEMENTS OF CASH FLOWS",
        "Purchases of property and equipment | (184,936) | (148,332) | $(188,358)",
        "Net cash used | 12%",
        "",
    ]


def two_column_pdf(path: Path) -> None:
    """One page with two columns of prose."""
    columns = [
        (50, ["The harbour lights were installed in", "the spring of 1998 by the council,"]),
        (320, ["Solar panels on the boathouse roof", "now supply most of the power the"]),
    ]
    columns = [(x, lines + [f"line {n} of the column at {x} says more" for n in range(4)])
               for x, lines in columns]  # fmt: skip
    text_pdf(path, [columns])


def test_side_by_side_prose_columns_are_not_interleaved(tmp_path: Path):
    path = tmp_path / "columns.pdf"
    two_column_pdf(path)
    text = load(path)[0].text
    assert "installed in\nthe spring of 1998" in text
    assert "boathouse roof\nnow supply" in text
    assert "|" not in text


def test_cash_flow_row_of_a_real_10k_stays_on_one_line(eval_pdfs: Path):
    path = eval_pdfs / "MICROSOFT_2023_10K.pdf"
    if not path.exists():
        pytest.skip("MICROSOFT_2023_10K.pdf is not in ../shared/eval/pdfs")
    page = load(path)[60]  # page 61: the cash flows statement
    assert "Additions to property and equipment | (28,107) | (23,886) | (20,622)" in page.text
    assert "Year Ended June 30, | 2023 | 2022 | 2021" in page.text
    assert "CASH FLOWS STATEMENTS" in page.text


def test_html_titles_come_from_title_or_h1_and_boilerplate_is_dropped():
    markup = """<html><head><title>Fixing the heat pump</title></head><body>
    <header><a href="/">Home</a> | <a href="/blog">Blog</a></header>
    <nav><ul><li>Home</li><li>Blog</li><li>Contact</li></ul></nav>
    <main><article><header><h1>Heat pump notes</h1><p>By Ana, 3 March</p></header>
    <p>The compressor hums at night.</p></article></main>
    <aside>Subscribe to the newsletter</aside><footer>Copyright 2024, all rights reserved</footer>
    </body></html>"""
    page = html_page(markup)
    assert page.title == "Fixing the heat pump"
    assert texts(page) == ["By Ana, 3 March", "The compressor hums at night."]
    assert page.blocks[0].headings == ("Heat pump notes",)
    for boilerplate in ("Home", "Blog", "Subscribe", "Copyright"):
        assert boilerplate not in page.text
    untitled = html_page("<body><nav>Home | Blog</nav><h1>Sourdough</h1><p>Flour and water.</p>")
    assert untitled.title == "Sourdough"
    assert html_page("<p>Just text.</p>").title == ""


def pdf_with_title(tmp_path: Path, name: str, title: str | None) -> Path:
    from helpers import CORPUS
    from pypdf import PdfWriter

    writer = PdfWriter(clone_from=CORPUS / "annual-report-2024.pdf")
    writer.add_metadata({"/Title": title} if title is not None else {"/Title": ""})
    path = tmp_path / name
    with path.open("wb") as handle:
        writer.write(handle)
    return path


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("Energy Audit of the Old Mill", "Energy Audit of the Old Mill"),
        ("Microsoft Word - audit_final.doc", "report.pdf"),
        ("audit_final.docx", "report.pdf"),
        ("untitled", "report.pdf"),
        ("", "report.pdf"),
        ("  ", "report.pdf"),
        ("2024", "report.pdf"),
    ],
)
def test_pdf_titles_come_from_real_metadata_titles_else_the_file_name(
    tmp_path: Path, title, expected
):
    pages = load(pdf_with_title(tmp_path, "report.pdf", title))
    assert pages[0].title == expected
    assert all(page.title == "" for page in pages[1:])
