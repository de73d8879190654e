import pytest

from nearspace.ingest.chunking import Chunker, split_sentences
from nearspace.ingest.parsers import ParseError, markdown_sections, parse_file
from tests.ingest.samples import HTML, MARKDOWN, write_docx, write_pdf


def test_markdown_sections_keep_heading_paths_and_lines():
    sections = markdown_sections(MARKDOWN)
    assert [s.headings for s in sections] == [["Gardening Guide"], ["Gardening Guide", "Watering"],
                                              ["Gardening Guide", "Composting"]]
    for section in sections:
        assert MARKDOWN[section.offset:section.offset + len(section.text)] == section.text
        assert MARKDOWN.count("\n", 0, section.offset) + 1 == section.line
    assert sections[1].text.strip().startswith("Water deeply")


def test_headings_inside_code_fences_are_text():
    sections = markdown_sections("# Real\n```\n# not a heading\n```\nafter\n")
    assert [s.headings for s in sections] == [["Real"]]


def test_html_keeps_main_content_and_drops_chrome(tmp_path):
    parsed = parse_file(tmp_path / "t.html", HTML.encode())
    text = parsed.full_text
    assert "80 degrees" in text and "airtight tin" in text
    for chrome in ("Login", "Cookie", "Privacy policy"):
        assert chrome not in text
    assert any(s.headings and s.headings[-1] == "Storage" for s in parsed.sections)


def test_pdf_pages_and_docx_headings(tmp_path):
    write_pdf(tmp_path / "a.pdf", ["First page text about comets.", "Second page about meteors."])
    parsed = parse_file(tmp_path / "a.pdf", (tmp_path / "a.pdf").read_bytes())
    assert [s.page for s in parsed.sections] == [1, 2] and "meteors" in parsed.sections[1].text
    write_docx(tmp_path / "b.docx")
    parsed = parse_file(tmp_path / "b.docx", (tmp_path / "b.docx").read_bytes())
    assert ["Bicycle Maintenance", "Tyres"] in [s.headings for s in parsed.sections]


@pytest.mark.parametrize("name, raw, message", [
    ("bad.pdf", b"%PDF-1.4\n garbage that is not a pdf", "corrupt PDF"),
    ("bad.docx", b"PK not really a zip", "corrupt .docx"),
    ("empty.txt", b"", "empty file"),
    ("blob.md", b"\x00\x01\x02binary", "binary content"),
    ("x.exe", b"MZ", "unsupported file type"),
])
def test_bad_files_raise_parse_errors(tmp_path, name, raw, message):
    with pytest.raises(ParseError, match=message):
        parse_file(tmp_path / name, raw)


def test_encrypted_pdf_is_reported(tmp_path):
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_encryption(owner_password="owner", user_password="secret")
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    pdf.cell(0, 10, "classified")
    pdf.output(str(tmp_path / "locked.pdf"))
    with pytest.raises(ParseError, match="encrypted"):
        parse_file(tmp_path / "locked.pdf", (tmp_path / "locked.pdf").read_bytes())


def test_sentence_spans_point_at_the_text():
    text = "First one. Second one!  Third?\n\nNew paragraph here"
    spans = split_sentences(text)
    assert [text[s:e] for s, e in spans] == ["First one.", "Second one!", "Third?", "New paragraph here"]


def test_chunks_fit_the_model_window_and_are_never_truncated(encoder):
    chunker = Chunker(encoder, max_tokens=200, overlap_tokens=40)
    sentence = "Photosynthesis converts light energy into chemical energy stored in glucose molecules. "
    text = sentence * 60 + "supercalifragilistic " * 400  # ends with one enormous 'sentence'
    title = "Biology > Plants > Energy"
    chunks = chunker.chunk(text, title)
    assert len(chunks) > 5
    for chunk in chunks:
        assert text[chunk.start:chunk.end] == chunk.text
        with_title = encoder.tokenizer(f"{title} {chunk.text}")["input_ids"]
        assert len(with_title) <= encoder.max_seq_length, "this chunk would be silently truncated"
    # nothing is lost: every character of text is in some chunk
    covered = set()
    for chunk in chunks:
        covered.update(range(chunk.start, chunk.end))
    assert all(i in covered for i, ch in enumerate(text) if not ch.isspace())
    # consecutive chunks of normal sentences overlap
    assert chunks[1].start < chunks[0].end


def test_chunker_rejects_bad_sizes(encoder):
    with pytest.raises(ValueError, match="at least 16"):
        Chunker(encoder, max_tokens=4)
    with pytest.raises(ValueError, match="overlap"):
        Chunker(encoder, max_tokens=50, overlap_tokens=50)


def test_text_that_is_not_utf8_is_read_as_windows_1252_or_latin1():
    from nearspace.ingest.parsers import decode_text

    assert decode_text("café".encode("utf-8"), "a") == ("café", "utf-8")
    assert decode_text(b"\xef\xbb\xbfBOM", "a") == ("BOM", "utf-8")
    assert decode_text(b"caf\xe9 \x93quoted\x94", "a") == ("café “quoted”", "cp1252")
    assert decode_text(b"\x81 odd", "a") == ("\x81 odd", "latin-1")  # 0x81 is undefined in Windows-1252
    with pytest.raises(ParseError, match="binary"):
        decode_text(b"\x00\x01", "a")
