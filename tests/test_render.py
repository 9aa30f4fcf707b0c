from __future__ import annotations

import io

from rich.console import Console

from ragchat.render import context_line, sanitize, sources_view
from ragchat.store import Hit


def render(renderable) -> str:
    console = Console(file=io.StringIO(), width=120, color_system=None)
    console.print(renderable)
    return console.file.getvalue()


def test_sanitize_removes_terminal_control_sequences():
    nasty = (
        "a\x1b[31mred\x1b[0m b\x1b]0;title\x07 c\x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\"
        " d\x1b]52;c;ZXZpbA==\x07 e\x07\x08 f\rg\x9b2J h\x00i\r\nj\tk"
    )
    assert sanitize(nasty) == "ared b clink d e fg hi\nj\tk"


def test_sources_render_as_plain_text_not_markup():
    hits = [
        Hit(
            id="1", text="t", path="/x/[bold]evil[/bold].md", headings="Intro", end=1, score=0.8123
        ),
        Hit(id="2", text="t", path="/x/report.pdf", page=3, end=1, score=0.5),
    ]
    assert render(sources_view(hits)) == (
        "Sources\n[1] /x/[bold]evil[/bold].md — Intro  (0.81)\n[2] /x/report.pdf, page 3  (0.50)\n"
    )


def test_context_line_marks_truncation():
    assert render(context_line(3, 2, 900, 2048, True)) == (
        "[answer cut off at --max-tokens] 3 excerpts, 900 of 2048 context tokens, 2 dropped for space\n"
    )


def test_markdown_answer_shows_image_and_link_urls_as_text():
    from ragchat.render import safe_markdown

    text = "See ![chart](http://evil.example/x.png?leak=1) and [docs](http://evil.example/d) \x1b]52;c;AAAA\x07now."
    console = Console(file=io.StringIO(), width=120, color_system="truecolor", force_terminal=True)
    console.print(safe_markdown(text))
    output = console.file.getvalue()
    assert "chart (http://evil.example/x.png?leak=1)" in output
    assert "http://evil.example/d" in output
    assert "\x1b]8;" not in output and "\x1b]52" not in output  # no hyperlink, no clipboard write


def test_document_markup_is_shown_literally():
    hit = Hit(
        id="1", text="[red]alarm[/red] [link=http://x]y[/link]", path="/d/a.md", end=1, score=0.5
    )
    from ragchat.render import search_view

    assert "[red]alarm[/red] [link=http://x]y[/link]" in render(search_view([hit]))


def test_sources_link_to_their_files_on_a_terminal():
    hit = Hit(id="1", text="t", path="/x/a\x1b[2Jb.md", end=1, score=0.5)
    console = Console(file=io.StringIO(), width=120, color_system="truecolor", force_terminal=True)
    console.print(sources_view([hit]))
    output = console.file.getvalue()
    assert "\x1b]8;id=" in output and "file:///x/a%1B%5B2Jb.md" in output
    assert "\x1b[2J" not in output


def test_sources_name_slides_sheets_and_messages_by_their_label():
    from ragchat.prompting import source_label
    from ragchat.repl import transcript
    from ragchat.store import chunk_metadata

    deck = Hit.candidate("1", "dense", 0.9).with_metadata(
        "t", chunk_metadata("/x/deck.pptx", 3, "Budget", 0, 1, page_label="slide 3")
    )
    sheet = Hit(id="2", path="/x/book.xlsx", page=2, end=1, score=0.5, page_label="sheet Revenue")
    pdf = Hit(id="3", path="/x/a.pdf", page=4, end=1, score=0.1)
    hits = [deck, sheet, pdf]
    assert render(sources_view(hits)) == (
        "Sources\n[1] /x/deck.pptx, slide 3 — Budget  (0.90)\n"
        "[2] /x/book.xlsx, sheet Revenue  (0.50)\n"
        "[3] /x/a.pdf, page 4  (0.10)\n"
    )
    assert source_label(deck) == "/x/deck.pptx, slide 3 — Budget"
    assert [h.location for h in hits] == [
        "/x/deck.pptx, slide 3",
        "/x/book.xlsx, sheet Revenue",
        "/x/a.pdf, page 4",
    ]
    assert (sheet.to_dict(1)["page_label"], sheet.to_dict(1)["page"]) == ("sheet Revenue", 2)
    assert "page_label" not in pdf.to_dict(1)

    class Answer:
        question, text, sources = "q", "a [1]", hits

    assert "1. /x/deck.pptx, slide 3\n2. /x/book.xlsx, sheet Revenue\n3. /x/a.pdf, page 4" in (
        transcript([Answer()])
    )
