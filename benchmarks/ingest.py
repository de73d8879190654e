"""Folder ingestion: throughput, incremental re-index cost, and chunked retrieval quality.

Part 1 (always): a folder of --files mixed files (Markdown, text, HTML, PDF, .docx, CSV)
made from real SciFact abstracts is indexed through the folder path; then 1% of the files
are edited and the folder re-indexed. Target: the incremental run takes <= 5% of the full.

Part 2 (--chunked-eval): every NFCorpus document is written as a Markdown file and indexed
through the chunking path; each test query ranks documents by their best chunk and the
document-level nDCG@10 is compared with the unchunked collection from `nearspace eval`
(--unchunked-store, collection `nfcorpus`).

    python benchmarks/ingest.py --files 40                    # smoke
    python benchmarks/ingest.py                               # 300 files
    python benchmarks/ingest.py --files 0 --chunked-eval --unchunked-store .nearspace/eval.db
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from _common import NFCORPUS, SCIFACT, read_corpus, require, verdict, write_result  # noqa: E402


def make_mixed_folder(root: Path, n_files: int) -> None:
    import docx
    from fpdf import FPDF

    records = read_corpus(SCIFACT / "corpus.jsonl", n_files * 2)
    kinds = ["md", "txt", "html", "pdf", "docx", "csv"]
    for i in range(n_files):
        a, b = records[2 * i], records[2 * i + 1]
        kind = kinds[i % len(kinds)]
        path = root / f"{i // 50:02d}" / f"doc{i:04d}.{kind}"
        path.parent.mkdir(parents=True, exist_ok=True)
        if kind == "md":
            path.write_text(f"# {a['title']}\n\n{a['text']}\n\n## {b['title']}\n\n{b['text']}\n")
        elif kind == "txt":
            path.write_text(f"{a['title']}\n\n{a['text']}\n\n{b['text']}\n")
        elif kind == "html":
            path.write_text(f"<html><body><nav>Home | About | Login</nav><article><h1>{a['title']}</h1>"
                            f"<p>{a['text']}</p><h2>{b['title']}</h2><p>{b['text']}</p></article>"
                            f"<footer>Copyright</footer></body></html>")
        elif kind == "pdf":
            pdf = FPDF()
            pdf.set_font("Helvetica", size=11)
            for rec in (a, b):
                pdf.add_page()
                pdf.multi_cell(0, 6, (rec["title"] + "\n" + rec["text"]).encode("latin-1", "replace").decode("latin-1"))
            pdf.output(str(path))
        elif kind == "docx":
            document = docx.Document()
            document.add_heading(a["title"], level=1)
            document.add_paragraph(a["text"])
            document.add_heading(b["title"], level=2)
            document.add_paragraph(b["text"])
            document.save(str(path))
        else:
            import csv

            with path.open("w", newline="") as handle:
                writer = csv.writer(handle)
                writer.writerow(["id", "text", "title"])
                writer.writerow([f"csv{i}-a", a["text"], a["title"]])
                writer.writerow([f"csv{i}-b", b["text"], b["title"]])


def throughput(n_files: int) -> dict:
    from nearspace.api import open_store
    from nearspace.ingest.folder import FolderIndexer

    work = Path(tempfile.mkdtemp(prefix="ns-ingest-"))
    try:
        folder = work / "mixed"
        make_mixed_folder(folder, n_files)
        store = open_store(work / "s.db")
        coll = store.collection("mixed")
        coll.encoder.encode(["warm-up"])  # model loading is not ingest time
        full = FolderIndexer(coll).index([folder], show_progress=True)
        noop = FolderIndexer(coll).index([folder], show_progress=False)
        edited = sorted(folder.rglob("*.md"))[: max(1, n_files // 100)]
        for path in edited:
            path.write_text(path.read_text() + "\n\nAn added closing remark about methods and limitations.\n")
        incremental = FolderIndexer(coll).index([folder], show_progress=False)
        store.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ratio = incremental.seconds / full.seconds
    print(f"full index: {full.files_seen} files, {full.chunks_written} chunks in {full.seconds:.1f}s "
          f"({full.files_seen / full.seconds:.1f} files/s, {full.chunks_written / full.seconds:.1f} chunks/s); "
          f"failed {len(full.failed)}, skipped {len(full.skipped)}")
    print(f"no-op re-run: {noop.seconds:.2f}s ({noop.unchanged} unchanged)")
    print(f"after editing {len(edited)} file(s) ({len(edited) / n_files:.1%}): {incremental.seconds:.2f}s, "
          f"{incremental.changed} changed, {incremental.chunks_written} chunks written = {ratio:.1%} of the full run "
          f"(target <= 5%: {verdict(ratio <= 0.05)})")
    return {"files": full.files_seen, "chunks": full.chunks_written, "full_s": full.seconds,
            "files_per_s": full.files_seen / full.seconds, "chunks_per_s": full.chunks_written / full.seconds,
            "noop_s": noop.seconds, "edited_files": len(edited), "incremental_s": incremental.seconds,
            "incremental_ratio": ratio, "failed": full.failed, "skipped": full.skipped}


def chunked_eval(unchunked_store: Path | None, limit: int | None) -> dict:
    import json

    from nearspace.api import open_store
    from nearspace.evaluate.beir import load_qrels
    from nearspace.evaluate.metrics import evaluate_run
    from nearspace.ingest.folder import FolderIndexer

    require(NFCORPUS / "corpus.jsonl")
    records = read_corpus(NFCORPUS / "corpus.jsonl", limit)
    queries = {json.loads(l)["_id"]: json.loads(l)["text"] for l in (NFCORPUS / "queries.jsonl").open()}
    qrels = load_qrels(NFCORPUS / "qrels" / "test.tsv")
    work = Path(tempfile.mkdtemp(prefix="ns-chunked-"))
    folder = work / "nfcorpus"
    folder.mkdir()
    for rec in records:
        (folder / f"{rec['id']}.md").write_text(f"# {rec['title']}\n\n{rec['text']}\n")
    store = open_store(work / "chunked.db")
    coll = store.collection("chunked")
    summary = FolderIndexer(coll).index([folder], show_progress=True)
    print(f"NFCorpus as {summary.files_seen} files -> {summary.chunks_written} chunks in {summary.seconds:.0f}s")
    results = {}
    for mode in ("keyword", "dense", "hybrid"):
        run = {}
        for qid in qrels:
            best: dict[str, float] = {}
            for hit in coll.search(queries[qid], k=300, mode=mode):
                doc = Path(hit.metadata["source"]).stem
                best.setdefault(doc, hit.score)  # results are best first: the first chunk is the best
            run[qid] = list(best)[:100]
        results[f"chunked-{mode}"] = evaluate_run(qrels, run)["ndcg@10"]
    store.close()
    shutil.rmtree(work, ignore_errors=True)
    if unchunked_store is not None and unchunked_store.exists():
        base = open_store(unchunked_store).get_collection("nfcorpus")
        for mode in ("keyword", "dense", "hybrid"):
            run = {qid: [h.id for h in base.search(queries[qid], k=100, mode=mode, use_adapter=False,
                                                   fusion={"method": "rrf"})] for qid in qrels}
            results[f"unchunked-{mode}"] = evaluate_run(qrels, run)["ndcg@10"]
    for mode in ("keyword", "dense", "hybrid"):
        line = f"{mode:8s} document nDCG@10: chunked {results[f'chunked-{mode}']:.4f}"
        if f"unchunked-{mode}" in results:
            gap = results[f"chunked-{mode}"] - results[f"unchunked-{mode}"]
            line += f", unchunked {results[f'unchunked-{mode}']:.4f} (gap {gap:+.4f})"
        print(line)
    return {"chunks": summary.chunks_written, "index_s": summary.seconds, "ndcg@10": results}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=300, help="mixed files to generate (0 skips part 1)")
    parser.add_argument("--chunked-eval", action="store_true", help="run part 2 (NFCorpus through chunking)")
    parser.add_argument("--unchunked-store", type=Path, default=None,
                        help="store whose collection 'nfcorpus' holds the unchunked corpus (from nearspace eval)")
    parser.add_argument("--limit", type=int, default=None, help="NFCorpus documents for part 2 (default all)")
    args = parser.parse_args(argv)
    require(SCIFACT / "corpus.jsonl")
    result = {}
    if args.files:
        result["throughput"] = throughput(args.files)
    if args.chunked_eval:
        result["chunked"] = chunked_eval(args.unchunked_store, args.limit)
    write_result("ingest", result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
