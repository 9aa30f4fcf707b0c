"""Build the sample PDF(s) for the ragchat test corpora.

Usage:
    python corpora/build_pdfs.py

Regenerates ``corpora/harbor/annual-report-2024.pdf`` from the text below.
The output is deterministic: the creation date is fixed, so running the
script twice yields byte-identical files. Only the core Helvetica font is
used, so every character must be Latin-1.

Requires fpdf2 (``pip install fpdf2``).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from fpdf import FPDF

HERE = Path(__file__).resolve().parent
OUT = HERE / "harbor" / "annual-report-2024.pdf"

FIXED_DATE = dt.datetime(2025, 1, 31, 12, 0, 0, tzinfo=dt.timezone.utc)

TITLE = "Harbor Lights Community Solar Cooperative - Annual Report 2024"

# One entry per page: (heading, [paragraphs]).
PAGES: list[tuple[str, list[str]]] = [
    (
        "1. Overview of the Year",
        [
            "This report describes the work of Harbor Lights Community Solar "
            "Cooperative in Wrenmouth during the calendar year 2024. It was "
            "prepared by the board and is presented to members for approval.",
            "In 2024 the cooperative had 412 member households, an increase of "
            "37 on the previous year. Most of the new members came from the "
            "streets around the harbour and from the Ropewalk Gardens estate, "
            "where the first houses were occupied in the spring.",
            "The year was the cooperative's sixth full year of operation. The "
            "board met eleven times, and the spring open day at the harbour "
            "attracted around 290 visitors, the largest crowd so far. The "
            "cooperative also welcomed its first paid employee, a part-time "
            "operations coordinator named Jessamy Ortolan, who started work "
            "in August.",
            "The board thanks every volunteer who gave time during the year, "
            "and in particular the members who kept the cooperative desk open "
            "through the winter storms of January and February.",
        ],
    ),
    (
        "2. Electricity Production",
        [
            "The array produced 1.94 gigawatt-hours in 2024, and the battery "
            "bank stores 480 kilowatt-hours. Production was about four per cent "
            "higher than in 2023, mainly because of an unusually sunny May and "
            "June.",
            "The best single day of the year was 14 June, when the array "
            "delivered 11,870 kilowatt-hours. The weakest month was December, "
            "which produced less than a fifth of the output of June.",
            "The battery bank was installed in 2022 in the brick store behind "
            "the harbour car park. It charges from the array during the middle "
            "of the day and releases electricity in the early evening, when "
            "demand in Wrenmouth is highest. In 2024 the battery completed 301 "
            "full charge cycles.",
            "Planned maintenance took the array partly offline for a total of "
            "nine days. There were no unplanned outages during 2024.",
        ],
    ),
    (
        "3. Finances",
        [
            "The solar tariff paid to members was 11.5 pence per kilowatt-hour. "
            "The tariff is reviewed each year by the board and applies to "
            "electricity bought by member households directly from the "
            "cooperative.",
            "Total income for the year was 214,600 crowns, made up mainly of "
            "electricity sales to members and export payments from the grid "
            "operator. Total expenditure was 188,950 crowns, of which the "
            "largest items were loan repayments, insurance, maintenance and "
            "the salary of the operations coordinator.",
            "The board proposes a dividend of 3.2 per cent on members' shares "
            "for 2024, to be paid in June 2025 if approved by the members. "
            "A further 9,000 crowns will be transferred to the equipment "
            "reserve to pay for future replacements.",
            "The accounts were examined by the independent examiner, Hollis "
            "Vantreight of Vantreight and Daughters, who found them to be a "
            "true and fair record of the cooperative's affairs.",
        ],
    ),
]


class ReportPDF(FPDF):
    def header(self) -> None:
        self.set_font("Helvetica", "I", 9)
        self.cell(0, 8, TITLE, align="C", new_x="LMARGIN", new_y="NEXT")
        self.ln(4)

    def footer(self) -> None:
        self.set_y(-15)
        self.set_font("Helvetica", "I", 9)
        self.cell(0, 10, f"Page {self.page_no()} of {{nb}}", align="C")


def build(out: Path = OUT) -> Path:
    pdf = ReportPDF(format="A4")
    pdf.set_creation_date(FIXED_DATE)
    pdf.set_title(TITLE)
    pdf.set_author("Harbor Lights Community Solar Cooperative")
    pdf.set_subject("Annual report for the year 2024")
    pdf.set_creator("corpora/build_pdfs.py")
    pdf.set_margins(20, 15, 20)
    pdf.set_auto_page_break(auto=True, margin=20)

    for heading, paragraphs in PAGES:
        pdf.add_page()
        pdf.set_font("Helvetica", "B", 16)
        pdf.cell(0, 10, heading, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(3)
        pdf.set_font("Helvetica", "", 11)
        for para in paragraphs:
            para.encode("latin-1")  # fail loudly on non-Latin-1 text
            pdf.multi_cell(0, 6, para, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(3)

    if pdf.page_no() != len(PAGES):
        raise RuntimeError(f"expected {len(PAGES)} pages, got {pdf.page_no()}")

    out.parent.mkdir(parents=True, exist_ok=True)
    pdf.output(str(out))
    return out


if __name__ == "__main__":
    path = build()
    print(f"wrote {path} ({path.stat().st_size} bytes)")
