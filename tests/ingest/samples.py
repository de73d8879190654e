"""Real files of every supported type, written on the fly for tests."""
from __future__ import annotations

from pathlib import Path

MARKDOWN = """# Gardening Guide

Plants need light, water and nutrients.

## Watering

Water deeply but rarely, so roots grow down into cooler soil.
Morning watering loses less to evaporation than watering at noon.

## Composting

Compost turns kitchen scraps and leaves into humus.
Keep the heap as moist as a wrung-out sponge and turn it every few weeks.
"""

HTML = """<!doctype html><html><head><title>Tea</title></head><body>
<nav><a href="/">Home</a> | <a href="/shop">Shop</a> | <a href="/login">Login</a></nav>
<article><h1>Brewing Green Tea</h1>
<p>Green tea tastes best brewed with water at about 80 degrees Celsius rather than boiling water.</p>
<p>Steep the leaves for two to three minutes; longer steeping releases bitter catechins.</p>
<h2>Storage</h2><p>Keep the leaves in an airtight tin away from light, heat and strong smells.</p></article>
<footer>Copyright 2024 Tea Shop. Cookie settings. Privacy policy.</footer></body></html>"""


def write_pdf(path: Path, pages: list[str]) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
    pdf.output(str(path))


def write_docx(path: Path) -> None:
    import docx

    document = docx.Document()
    document.add_heading("Bicycle Maintenance", level=1)
    document.add_paragraph("Clean and lubricate the chain every few hundred kilometres.")
    document.add_heading("Tyres", level=2)
    document.add_paragraph("Check tyre pressure weekly; underinflated tyres pinch and puncture easily.")
    document.save(str(path))


def make_folder(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "garden.md").write_text(MARKDOWN)
    (root / "tea.html").write_text(HTML)
    (root / "notes.txt").write_text("The Moon's gravity raises ocean tides twice a day.\n")
    write_pdf(root / "astronomy.pdf", ["Jupiter is the largest planet in the solar system.",
                                        "Saturn's rings are made mostly of water ice particles."])
    write_docx(root / "bike.docx")
    (root / "faq.csv").write_text("id,question,category\nq1,How do I reset my password from the login page?,account\n"
                                  "q2,Where can I see my monthly invoices and receipts?,billing\n")
    return root
