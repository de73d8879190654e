"""One set of validation rules (nearspace.validation) for the library, the readers and the server.

Regression tests for the defects [14/20] names: table cells that changed meaning (``007`` -> 7,
``nan``/``inf`` -> non-finite floats that made ``search --json`` print bare ``NaN``), CSV rows that
skipped document validation, and filters / query texts that reached SQLite unchecked (a lone
surrogate escaped as a raw ``UnicodeEncodeError``).
"""
from __future__ import annotations

import json
import math

import pytest

from nearspace.errors import InputError, LimitError
from nearspace.ingest.folder import FolderIndexer
from nearspace.limits import MAX_ID_CHARS
from nearspace.validation import check_metadata, check_query, check_where, parse_cell
from tests.cli.test_errors import cli


@pytest.mark.parametrize("cell, want", [
    ("7", 7), ("-3", -3), ("0", 0), ("2.5", 2.5), ("1e3", 1000.0), (" 12 ", 12),
    ("007", "007"), ("1_000", "1_000"), ("nan", "nan"), ("NaN", "NaN"), ("inf", "inf"),
    ("-Infinity", "-Infinity"), ("1e999", "1e999"), ("+5", "+5"), ("0x10", "0x10"), ("", ""),
    ("3.", "3."), (".5", ".5"), ("12 apples", "12 apples"),
    (str(2 ** 63 - 1), 2 ** 63 - 1), (str(2 ** 63), str(2 ** 63)), (str(-2 ** 63), -2 ** 63),
])
def test_a_cell_becomes_a_number_only_when_written_as_a_json_number(cell, want):
    got = parse_cell(cell)
    assert got == want and type(got) is type(want)


def test_parsed_cells_are_always_valid_json():
    for cell in ["nan", "inf", "-inf", "1e400", "1" * 30, "007", "1_0"]:
        value = parse_cell(cell)
        assert not (isinstance(value, float) and not math.isfinite(value))
        json.dumps(value, allow_nan=False)


@pytest.mark.parametrize("metadata, phrase", [
    ({"x": float("nan")}, "x"), ({"deep": {"y": float("inf")}}, "y"),
    ({"n": 2 ** 63}, "too large"), ({"n": -2 ** 63 - 1}, "too large"),
])
def test_non_finite_and_out_of_range_numbers_are_refused_with_the_field_named(metadata, phrase):
    with pytest.raises(InputError, match=phrase):
        check_metadata(metadata, "doc 1 metadata")


@pytest.mark.parametrize("where", [{"topic": "bad \ud800"}, {"\udfff": 1}, {"year": {"$gt": float("nan")}},
                                   {"year": {"$in": [1, 2 ** 64]}}])
def test_bad_filters_are_input_errors(where):
    with pytest.raises(InputError):
        check_where(where)


def test_bad_query_texts_are_input_errors():
    with pytest.raises(InputError, match="query"):
        check_query("lone \ud800 surrogate")
    with pytest.raises(InputError, match="NUL"):
        check_query("a\x00b")
    with pytest.raises(InputError, match="string"):
        check_query(42)
    with pytest.raises(LimitError, match="limit"):
        check_query("x" * 10_000_000)


def test_collection_search_checks_its_filter_and_query_before_the_store(examples):
    before = examples.count()
    with pytest.raises(InputError, match="where"):
        examples.search("tides", where={"topic": "bad \ud800"})
    with pytest.raises(InputError, match="query"):
        examples.search("tides \udc80")
    with pytest.raises(InputError, match="where"):
        examples.ids(where={"n": float("inf")})
    with pytest.raises(InputError, match="where"):
        examples.search("tides", where=["topic", "ml"])
    assert examples.count() == before and examples.search("tides", k=1)


def _csv_folder(tmp_path):
    root = tmp_path / "tables"
    root.mkdir()
    (root / "codes.csv").write_text("id,text,code,score,ratio,count\n"
                                    "a,the tide rises twice a day,007,nan,inf,1_000\n"
                                    "b,the moon pulls the sea,42,2.5,-Infinity,12\n")
    return root


def test_csv_cells_keep_their_meaning(store, tmp_path):
    coll = store.collection("tables")
    summary = FolderIndexer(coll).index([_csv_folder(tmp_path)], show_progress=False)
    assert not summary.failed, summary
    a, b = coll.get("a"), coll.get("b")
    cells = {key: a.metadata[key] for key in ("code", "score", "ratio", "count")}
    assert cells == {"code": "007", "score": "nan", "ratio": "inf", "count": "1_000"}
    assert b.metadata["code"] == 42 and b.metadata["score"] == 2.5 and b.metadata["ratio"] == "-Infinity"


def test_csv_rows_are_validated_like_every_document(store, tmp_path):
    root = tmp_path / "bad"
    root.mkdir()
    (root / "rows.csv").write_text(f"id,text\n{'x' * (MAX_ID_CHARS + 1)},an id that is too long\nok,a fine row\n")
    coll = store.collection("bad_rows")
    summary = FolderIndexer(coll).index([root], show_progress=False)
    assert summary.failed, "a row with an over-long id must be reported, not stored"
    assert "rows.csv row 2: id is" in str(summary.failed) and coll.count() == 0


def test_search_json_of_csv_cells_is_valid_json(tmp_path):
    db = tmp_path / "s.db"
    indexed = cli("--store", str(db), "index", str(_csv_folder(tmp_path)))
    assert indexed.returncode == 0, indexed.stderr[-2000:]
    result = cli("--store", str(db), "search", "tide", "--json", "-k", "2")
    assert result.returncode == 0, result.stderr[-2000:]
    rows = json.loads(result.stdout, parse_constant=lambda c: pytest.fail(f"{c} is not JSON"))
    by_id = {row["id"]: row for row in rows}
    assert by_id["a"]["metadata"]["score"] == "nan" and by_id["a"]["metadata"]["code"] == "007"


# -- one JSONL reader ----------------------------------------------------------------------------
def test_jsonl_splits_records_on_newline_only():
    """U+2028, U+2029 and U+0085 are legal raw inside JSON strings; str.splitlines() broke them."""
    from nearspace.jsonl import iter_jsonl

    texts = ["line\u2028separator", "para\u2029graph", "next\u0085line", "form\x0cfeed"]
    raw = "\r\n".join(json.dumps({"id": str(i), "text": t}, ensure_ascii=False) for i, t in enumerate(texts))
    got = [(n, r["text"]) for n, r in iter_jsonl(raw.encode("utf-8"), "t.jsonl", objects=True)]
    assert got == [(i + 1, t) for i, t in enumerate(texts)]


def test_every_jsonl_input_keeps_unicode_line_separators(tmp_path):
    from nearspace.analyze.data import read_labelled
    from nearspace.evaluate.beir import load_beir
    from nearspace.ingest.readers import read_jsonl

    text = "tides\u2028rise\u0085twice"
    docs = tmp_path / "docs.jsonl"
    docs.write_text(json.dumps({"id": "a", "text": text}, ensure_ascii=False) + "\n", encoding="utf-8")
    assert [d.text for d in read_jsonl(docs)] == [text]
    labelled = tmp_path / "train.jsonl"
    labelled.write_text(json.dumps({"text": text, "label": 1}, ensure_ascii=False) + "\n", encoding="utf-8")
    assert read_labelled(labelled) == ([text], ["1"])
    beir = tmp_path / "beir"
    (beir / "qrels").mkdir(parents=True)
    (beir / "corpus.jsonl").write_text(json.dumps({"_id": "a", "text": text}, ensure_ascii=False) + "\n")
    (beir / "queries.jsonl").write_text(json.dumps({"_id": "q", "text": text}, ensure_ascii=False) + "\n")
    (beir / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq\ta\t1\n")
    assert load_beir(beir).queries == {"q": text}


def test_no_jsonl_loop_is_written_by_hand_outside_the_reader():
    from tests.conftest import ROOT

    offenders = []
    for path in (ROOT / "src" / "nearspace").rglob("*.py"):
        source = path.read_text(encoding="utf-8")
        if path.name != "jsonl.py" and "json.loads(line" in source:
            offenders.append(str(path.relative_to(ROOT)))
    assert not offenders, offenders
