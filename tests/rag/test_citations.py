"""Citations at the grain of the evidence, on a small mixed folder (PDF, Markdown, text)."""
from __future__ import annotations

import pytest

from nearspace.ingest.folder import FolderIndexer
from tests.ingest.samples import write_pdf

PAGES = [
    "Kestrel 24 Combi Boiler - Owner's Manual\nChapter 1.\nThis manual covers installation checks, daily use "
    "and safety. Read it before switching the appliance on for the first time. Keep it near the unit.",
    "Chapter 2. Water pressure.\nWhen the heating is cold, the pressure gauge on the front panel should read "
    "between 1.0 and 1.5 bar. If it falls below 0.8 bar, open the filling loop slowly until the needle returns "
    "to 1.2 bar, then close it firmly.",
    "Chapter 3. Servicing.\nA registered engineer should service the appliance once a year. Do not remove the "
    "casing yourself; the combustion chamber is sealed.",
]


@pytest.fixture()
def folder_collection(store, tmp_path):
    root = tmp_path / "manuals"
    root.mkdir()
    write_pdf(root / "manual.pdf", PAGES)
    (root / "training.md").write_text(
        "# Training tips\n\nWarm up for ten minutes before lifting. Increase the load slowly each week, "
        "and sleep well so muscles recover.\n")
    (root / "skillet.txt").write_text(
        "Season a cast iron skillet with a thin layer of oil, bake it upside down for an hour, and never "
        "leave it soaking in the sink.\n")
    coll = store.collection("manuals")
    FolderIndexer(coll).index([root], show_progress=False)
    return coll


def test_answer_sentences_cite_their_own_page_and_headings_are_not_answers(folder_collection):
    answer = folder_collection.ask("what should the boiler pressure gauge read", k=5)
    assert answer.answer_sentences, "no answer sentences"
    top = answer.answer_sentences[0]
    assert "bar" in top.text and top.citation == "manuals/manual.pdf#page=2"
    for sentence in answer.answer_sentences:
        assert "Owner's Manual" not in sentence.text and not sentence.text.strip().startswith("Chapter")
        assert sentence.citation.startswith("manuals/manual.pdf#page=")
    # unrelated files are not offered as sources
    sources = {p.source for p in answer.passages}
    assert sources == {"manuals/manual.pdf"}, sources
    # a passage that spans pages says which part is on which page
    for passage in answer.passages:
        covered = [part["citation"] for part in passage.parts]
        assert covered and all(c.startswith("manuals/manual.pdf#page=") for c in covered)
        if "-" in passage.citation.split("page=")[1]:
            assert len(covered) > 1
    as_json = answer.to_dict()
    assert all("citation" in s for s in as_json["answer_sentences"])
    assert all({"start", "end", "citation"} <= set(part) for p in as_json["passages"] for part in p["parts"])


def test_text_files_cite_the_sentence_lines(store, tmp_path):
    root = tmp_path / "notes"
    root.mkdir()
    lines = [f"Line {i} talks about harbour logistics and cargo cranes." for i in range(1, 9)]
    lines[5] = "The night ferry to the island leaves at 22:40 from pier four."
    (root / "port.txt").write_text("\n".join(lines) + "\n")
    coll = store.collection("notes")
    FolderIndexer(coll).index([root], show_progress=False)
    answer = coll.ask("when does the night ferry leave", k=2)
    ferry = next(s for s in answer.answer_sentences if "ferry" in s.text)
    assert ferry.citation == "notes/port.txt:6-6"


INTRANET = """<!doctype html>
<html><head><title>Intranet</title>
<style>body { font-family: sans-serif; }</style>
</head>
<body>
<nav><a href="/">Home</a> | <a href="/hr">HR</a></nav>
<main>
<h1>Travel expenses</h1>
<p>Submit every travel expense claim within thirty days of the trip,
with the original receipts attached to the claim form.</p>
<p>Hotel stays above one hundred and twenty euros a night need
the written approval of your line manager before booking.</p>
</main>
<footer>Company intranet, all rights reserved.</footer>
</body></html>
"""


def _cited_lines(path, citation: str) -> str:
    first, last = (int(n) for n in citation.rsplit(":", 1)[1].split("-"))
    return " ".join(path.read_text().splitlines()[first - 1:last])


def test_html_citations_are_lines_of_the_file_itself(store, tmp_path):
    root = tmp_path / "web"
    root.mkdir()
    (root / "intranet.html").write_text(INTRANET)
    coll = store.collection("web")
    FolderIndexer(coll).index([root], show_progress=False)
    answer = coll.ask("who approves expensive hotel stays", k=2)
    passage = answer.passages[0]
    cited = _cited_lines(root / "intranet.html", passage.citation)
    # the cited lines of the HTML file hold the passage's words (not lines of the extracted text)
    words = passage.text.split()
    assert " ".join(words[:4]) in cited and " ".join(words[-3:]) in cited, (passage.citation, cited)
    first, last = (int(n) for n in passage.citation.rsplit(":", 1)[1].split("-"))
    assert (first, last) == (9, 12)  # the two paragraphs' lines, below the head, styles and navigation
    for sentence in answer.answer_sentences:
        assert sentence.citation.startswith("web/intranet.html:")


def test_csv_citations_name_the_row_and_every_prose_column_is_embedded(store, tmp_path):
    root = tmp_path / "faq"
    root.mkdir()
    (root / "faq.csv").write_text(
        "id,question,answer,team\n"
        "q1,How do I reset my password?,Use the link on the login page and follow the email.,it\n"
        "q2,Where are my invoices?,Open Billing and choose Monthly statements.,finance\n")
    coll = store.collection("faq")
    FolderIndexer(coll).index([root], show_progress=False)
    doc = coll.get("q2")
    assert "Where are my invoices?" in doc.text and "Monthly statements" in doc.text  # question and answer
    assert doc.metadata["team"] == "finance" and "question" not in doc.metadata
    answer = coll.ask("where can I find my invoices", k=1)
    assert answer.passages[0].citation == "faq/faq.csv#row=3"  # the header is row 1, as in a spreadsheet
    import csv

    with open(root / "faq.csv", newline="") as handle:
        row = list(csv.reader(handle))[3 - 1]
    assert row[1] in answer.passages[0].text
    chosen = store.collection("faq-answers")
    FolderIndexer(chosen, text_column="answer").index([root], show_progress=False)
    assert chosen.get("q2").text == "Open Billing and choose Monthly statements."
