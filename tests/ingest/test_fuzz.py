"""Parsers fuzzed with Hypothesis (bounded, deterministic): truncated and mutated PDF, DOCX, HTML,
CSV and JSONL files end in a per-file error or in documents, never in an exception that escapes
the file, a hang (a time limit per file), or the end of the whole run."""
from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nearspace.ingest.folder import FolderIndexer, IngestSummary
from nearspace.ingest.timeout import ParseTimeout, time_limit
from tests.ingest.samples import HTML, write_docx, write_pdf

#: examples per file type (500 in all, ~20 s here): bounded, deterministic (derandomize)
EXAMPLES = 100
LIMIT_S = 5.0
OUTCOMES: Counter = Counter()


@pytest.fixture(scope="module")
def seeds(tmp_path_factory) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp("seeds")
    write_pdf(folder / "a.pdf", ["Jupiter is the largest planet.", "Saturn's rings are mostly water ice."])
    write_docx(folder / "a.docx")
    csv = ("id,question,category\nq1,How do I reset my password?,account\n"
           "q2,Where are my invoices?,billing\n")
    jsonl = "\n".join(json.dumps({"id": f"r{i}", "text": f"record {i} about tides", "metadata": {"n": i}})
                      for i in range(3)) + "\n"
    return {".pdf": (folder / "a.pdf").read_bytes(), ".docx": (folder / "a.docx").read_bytes(),
            ".html": HTML.encode(), ".csv": csv.encode(), ".jsonl": jsonl.encode()}


@pytest.fixture(scope="module")
def indexer(tmp_path_factory, encoder):
    import nearspace

    store = nearspace.open_store(tmp_path_factory.mktemp("fuzz") / "s.db", encoder=encoder)
    yield FolderIndexer(store.collection("fuzz"))
    store.close()


@st.composite
def mutated(draw, seed: bytes) -> bytes:
    data = bytearray(seed)
    kind = draw(st.sampled_from(["truncate", "flip", "insert", "splice", "mixed"]))
    if kind in ("truncate", "mixed"):
        data = data[:draw(st.integers(0, len(data)))]
    if kind in ("flip", "mixed") and data:
        for _ in range(draw(st.integers(1, 16))):
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    if kind == "insert":
        at = draw(st.integers(0, len(data)))
        data[at:at] = draw(st.binary(min_size=1, max_size=64))
    if kind == "splice" and len(data) > 2:
        a, b = sorted(draw(st.lists(st.integers(0, len(data)), min_size=2, max_size=2)))
        at = draw(st.integers(0, len(data)))
        data[at:at] = data[a:b]  # repeated structure: nested objects, duplicated xref entries...
    return bytes(data)


def examine(indexer: FolderIndexer, folder: Path, suffix: str, raw: bytes) -> tuple[str, float]:
    path = folder / f"f{suffix}"
    path.write_bytes(raw)
    summary = IngestSummary()
    started = time.perf_counter()
    item = indexer._examine(path, path.name, {}, {}, {}, summary)  # the per-file boundary of a real run
    elapsed = time.perf_counter() - started
    if item is not None:
        return "documents", elapsed
    reason = (summary.failed or summary.skipped)[0][1]
    return ("timeout" if "longer than" in reason else "per-file error"), elapsed


@pytest.mark.parametrize("suffix", [".pdf", ".docx", ".html", ".csv", ".jsonl"])
def test_mutated_files_end_in_a_per_file_result(suffix, seeds, indexer, tmp_path, monkeypatch):
    monkeypatch.setenv("NEARSPACE_PARSE_TIMEOUT", str(LIMIT_S))
    outcomes: Counter = Counter()

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(raw=mutated(seeds[suffix]))
    def run(raw: bytes) -> None:
        outcome, _ = examine(indexer, tmp_path, suffix, raw)  # raises if anything escapes (a hang: the time limit)
        outcomes[outcome] += 1

    run()
    OUTCOMES.update({f"{suffix} {k}": v for k, v in outcomes.items()})
    print(f"{suffix}: {dict(outcomes)}")
    assert sum(outcomes.values()) >= EXAMPLES
    assert outcomes["per-file error"] + outcomes["timeout"] > 0 or suffix in (".html", ".csv")


def test_a_run_over_broken_files_goes_on(seeds, indexer, tmp_path, monkeypatch):
    monkeypatch.setenv("NEARSPACE_PARSE_TIMEOUT", str(LIMIT_S))
    folder = tmp_path / "docs"
    folder.mkdir()
    for suffix, raw in seeds.items():
        (folder / f"cut{suffix}").write_bytes(raw[: len(raw) // 3])
        (folder / f"junk{suffix}").write_bytes(bytes(range(256)) * 4)
    (folder / "good.txt").write_text("The Moon's gravity raises ocean tides twice a day.\n")
    summary = indexer.index([folder], show_progress=False)
    failed = {Path(path).name for path, _ in summary.failed}
    assert {"junk.pdf", "junk.docx", "cut.pdf", "cut.docx"} <= failed, summary.failed
    assert indexer.collection.get("docs/good.txt#0") is not None


def test_the_time_limit_interrupts_a_stuck_parser():
    with pytest.raises(ParseTimeout, match="longer than 0.3s"):  # the loop never ends unless interrupted
        with time_limit(0.3):
            while True:  # a parser looping on a hostile file
                pass
    with time_limit(0.3):  # and a normal parse is not disturbed, nor left with a timer armed
        pass
    time.sleep(0.5)
