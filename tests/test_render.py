from __future__ import annotations

import io

import pytest
from rich.console import Console
from rich.text import Text

from ragchat.render import context_line, sanitize, sources_view
from ragchat.store import Hit


def render(renderable, width: int = 120) -> str:
    console = Console(file=io.StringIO(), width=width, color_system=None)
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


# 80 columns, streaming, and pipes (issue 18, items 1, 3 and 10)

LONG = (
    "The electrician quoted 1,800 euros for moving the sockets and adding a circuit for the"
    " induction hob, and the plumber asked for a second visit before the kitchen is fitted."
)


def screen_lines(output: str, width: int) -> list[str]:
    """What a terminal of ``width`` columns shows after ``output``: its non-empty lines."""
    import pyte

    screen = pyte.Screen(width, 50)
    pyte.Stream(screen).feed(output.replace("\n", "\r\n"))
    return [line.rstrip() for line in screen.display if line.strip()]


def assert_whole_words(lines: list[str], text: str, width: int) -> None:
    """The lines show the start of ``text``, no word split across two lines (the last may
    still be arriving)."""
    words, shown = text.split(), " ".join(lines).split()
    assert shown[:-1] == words[: len(shown) - 1], lines
    assert words[len(shown) - 1].startswith(shown[-1]), lines
    assert all(len(line) <= width for line in lines)


@pytest.mark.parametrize("width", [80, 120])
def test_a_streamed_answer_wraps_at_words_while_streaming_and_after(width: int):
    import time

    from ragchat.cli_options import make_console
    from ragchat.render import stream_markdown

    text = f"{LONG} {LONG}"
    out = io.StringIO()
    console = make_console(file=out, width=width, force_terminal=True, color_system=None)
    pieces = [text[i : i + 40] for i in range(0, len(text), 40)]
    frames = []

    def slowly():
        for piece in pieces:
            yield piece
            time.sleep(0.12)  # past the next refresh (12 a second)
            frames.append(screen_lines(out.getvalue(), width))

    assert stream_markdown(console, slowly()) == text
    assert len({tuple(f) for f in frames}) > 3  # it was drawn while streaming
    for lines in frames:
        assert_whole_words(lines, text, width)
    final = screen_lines(out.getvalue(), width)
    assert " ".join(final).split() == text.split()  # after: the whole answer
    assert len(final) > 2


def test_an_answer_of_list_markers_is_shown_not_blank():
    from ragchat.render import AnswerView

    assert render(AnswerView("1. 1. 1. 2. 3. 4.")).strip() == "1. 1. 1. 2. 3. 4."
    assert "<b>kept</b>" in render(AnswerView("Raw <b>kept</b> HTML."))  # dropped by Markdown
    markdown = render(AnswerView("Some **bold** text.\n\n1. apples\n1. pears"))
    assert "Some bold text." in markdown and "2 pears" in markdown  # Markdown: it loses nothing


def test_tables_fold_values_users_must_read_at_80_columns():
    from ragchat.render import collections_table, eval_table, key_value_table

    model = "sentence-transformers/all-MiniLM-L6-v2"
    rows = [
        {
            "name": "a-collection-with-a-long-name",
            "documents": 1200,
            "chunks": 34567,
            "embedder": model,
            "dimension": 384,
        }
    ]
    path = "/home/someone/models/" + "a-very-long-folder-name/" * 4 + "llama-3.2-3b.Q4_K_M.gguf"
    metrics = {"source_recall@5": 0.5, "source_recall@10": 0.6, "span_recall@5": 0.7}
    metrics |= {"span_precision@5": 0.1, "span_recall@10": 0.2, "span_precision@10": 0.3}
    for table, wanted in (
        (collections_table(rows), [model, "a-collection-with-a-long-name", "34567"]),
        (key_value_table([("LLM", path)]), [path]),
        (eval_table("gold", {"hybrid": metrics}), [m.replace("_", "") for m in metrics]),
    ):
        output = render(table, width=80)
        assert "…" not in output
        assert all(len(line) <= 80 for line in output.splitlines())
        rows_ = [line.replace("┃", "│").split("│") for line in output.splitlines()]
        rows_ = [cells for cells in rows_ if len(cells) > 1]
        columns = ["".join(c.strip() for c in cells) for cells in zip(*rows_, strict=True)]
        joined = columns or ["".join(output.split())]
        assert all(any(value in c for c in joined) for value in wanted), output


def test_the_ingest_progress_bar_fits_one_line_at_80_columns():
    from ragchat.render import IngestProgress, counting_progress

    console = Console(file=io.StringIO(), width=80, force_terminal=True, color_system=None)
    progress = IngestProgress(console)
    progress.start(20_000)
    for note in ("Loading the embedding model…", ""):
        progress.note(note)
        lines = console.render_lines(progress.bar.get_renderable(), console.options)
        assert len(lines) == 1, lines
    progress.bar.tasks[0].start_time -= 1300  # 123,456 chunks in 21 minutes: 95 a second
    progress.advance(files=19_999, chunks=123_456)
    line = console.render_lines(progress.bar.get_renderable(), console.options)
    assert len(line) == 1 and "19999/20000" in "".join(s.text for s in line[0])
    progress.advance(files=1, chunks=0)
    assert "1 chunk" not in "".join(s.text for s in line[0])  # plural forms
    with counting_progress(console, "Querying", 1000) as advance:
        advance()


def test_piped_output_has_no_width_limit():
    from ragchat.cli_options import make_console
    from ragchat.render import key_value_table

    out = io.StringIO()
    console = make_console(file=out)  # not a terminal
    console.print(key_value_table([("LLM", "x" * 300)]))
    console.print(Text(LONG * 3))
    assert out.getvalue().splitlines() == ["LLM  " + "x" * 300, LONG * 3]


def test_source_lines_label_the_score_and_link_pdfs_to_their_page():
    hybrid = Hit(id="1", text="t", path="/x/r.pdf", page=2, end=1, score=1.0)
    hybrid.scores = {"dense": 0.8, "lexical": 7.5, "fused": 1.0}
    dense = Hit(id="2", text="t", path="/x/a.md", end=1, score=0.61, scores={"dense": 0.61})
    assert render(sources_view([hybrid, dense])) == (
        "Sources\n[1] /x/r.pdf, page 2  (fused 1.00)\n[2] /x/a.md  (dense 0.61)\n"
    )
    console = Console(file=io.StringIO(), width=120, color_system="truecolor", force_terminal=True)
    console.print(sources_view([hybrid, dense]))
    output = console.file.getvalue()
    assert "file:///x/r.pdf#page=2" in output and "file:///x/a.md\x1b" in output


def test_search_snippets_are_centred_on_the_matched_words():
    from ragchat.render import search_view

    text = "Filler words about nothing in particular. " * 12 + (
        "The spring tide rises two metres at the quay."
    )
    hit = Hit(id="1", text=text, path="/d/tides.md", end=1, score=1.0)
    output = render(search_view([hit], "spring tides"), width=300)
    snippet = output.splitlines()[1].strip()
    assert "The spring tide rises two metres at the quay." in snippet
    assert snippet.startswith("…") and len(snippet) <= 240
    assert render(search_view([hit], ""), width=300).splitlines()[1].strip().startswith("Filler")


# invisible characters and odd file names (issue 19, item 15)

INVISIBLE = "\u202e\u2066\u2067\u2068\u2069\u200b\u200d\ufeff\u200e\u061c"


def test_sanitize_drops_bidi_and_zero_width_characters():
    assert sanitize(f"pay{INVISIBLE}ment\n\tdue") == "payment\n\tdue"


def test_odd_file_names_are_shown_escaped_not_stripped():
    from ragchat.text import escaped, shown_path

    assert shown_path("/d/a\n[9] forged.txt") == "/d/a\\n[9] forged.txt"
    assert escaped("cv\u202efdp.md") == "cv\\u202efdp.md"
    assert escaped("bad\udcffname\x1b[2J\t.md") == "bad\\xffname\\x1b[2J\\t.md"  # not UTF-8
    assert escaped("Trip to Lisboa — día 1.md") == "Trip to Lisboa — día 1.md"
    hit = Hit(
        id="1", text="t", path="/d/a\n[9] forged.txt", headings=f"H{INVISIBLE}", end=1, score=1
    )
    assert render(sources_view([hit])) == "Sources\n[1] /d/a\\n[9] forged.txt — H  (1.00)\n"


def test_map_data_has_no_invisible_characters():
    from ragchat.map_drawing import DocumentMap, Point

    document_map = DocumentMap(
        "t",
        "s",
        ("x", "y"),
        [f"group{INVISIBLE}"],
        [Point(0, 0, f"ti{INVISIBLE}tle", "/d/a\n.md", 0)],
    )
    data = document_map.to_dict()
    assert data["groups"][0]["label"] == "group" and data["points"][0]["title"] == "title"
    assert data["points"][0]["path"] == "/d/a\\n.md"


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
        "Sources\n[1] /x/deck.pptx, slide 3 — Budget  (dense 0.90)\n"
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
        question, text, sources, found = "q", "a [1]", hits, True

    assert "1. /x/deck.pptx, slide 3\n2. /x/book.xlsx, sheet Revenue\n3. /x/a.pdf, page 4" in (
        transcript([Answer()])
    )
