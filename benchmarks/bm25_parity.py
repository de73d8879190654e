"""Keyword search against bm25s, side by side, on every BEIR-format set in ../shared/data/beir.

nearspace's keyword mode (``store/sqlite/keywords.py``: Lucene BM25 over a sparse matrix derived from
SQLite, Snowball stemming, query term frequency kept) and bm25s with the reference settings the datasets' SOURCE.md files give (bm25s ``BM25()`` defaults,
method lucene, k1=1.5, b=0.75; ``title + " " + text``; PyStemmer English; stopwords "en") score
the same judged queries, top 100, nDCG@10 from the same evaluator. Prints the gap, the ratio and
the keyword latency per query (p50, query parsing included).

    python benchmarks/bm25_parity.py                  # every set found
    python benchmarks/bm25_parity.py --sets lisa cacm
    python benchmarks/bm25_parity.py --sets scifact --scale 100000   # latency at 100k documents

``--scale N`` repeats the corpus (ids suffixed) until it holds N documents, for the latency
figures only (the nDCG of a repeated corpus means nothing); the index build time is printed too.

Needs the ``bench`` extra (bm25s, PyStemmer). No model is loaded: the store gets one constant
unit vector per document, which keyword mode never reads.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "beir"
sys.path.insert(0, str(ROOT / "src"))


class ConstantEncoder:
    """Keyword mode never reads vectors; this avoids loading a model for a keyword benchmark."""

    name, dim = "constant", 4

    def encode(self, texts, **_):
        return np.full((len(texts), self.dim), 0.5, dtype=np.float32)


def nearspace_run(dataset, qrels, store_dir: Path) -> tuple[dict, list[tuple[float, float]]]:
    from nearspace.api import Store

    store = Store(store_dir / f"{dataset.name}.db", encoder=ConstantEncoder())
    coll = store.collection(dataset.name)
    docs = [d for d in dataset.corpus if (d.title or d.text).strip()]
    coll.upsert([d.id for d in docs], [d.text for d in docs], titles=[d.title for d in docs], batch_size=5000)
    started = time.perf_counter()
    coll.backend.keywords.refresh()  # tokenising the corpus once per process is indexing, not query time
    print(f"  {dataset.name}: nearspace keyword index of {len(docs):,} documents built in "
          f"{time.perf_counter() - started:.1f}s", flush=True)
    run, times = {}, []
    for qid in qrels:
        started, cpu = time.perf_counter(), time.process_time()
        hits = coll.search(dataset.queries[qid], k=100, mode="keyword")
        times.append((time.perf_counter() - started, time.process_time() - cpu))
        run[qid] = [h.id for h in hits]
    store.close()
    return run, times


def bm25s_run(dataset, qrels) -> tuple[dict, list[tuple[float, float]]]:
    import bm25s
    import Stemmer

    stemmer = Stemmer.Stemmer("english")
    ids = [d.id for d in dataset.corpus]
    corpus = [f"{d.title} {d.text}" for d in dataset.corpus]
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(corpus, stopwords="en", stemmer=stemmer, show_progress=False), show_progress=False)
    run, times = {}, []
    for qid in qrels:
        started, cpu = time.perf_counter(), time.process_time()
        tokens = bm25s.tokenize([dataset.queries[qid]], stopwords="en", stemmer=stemmer, show_progress=False)
        docs, _ = retriever.retrieve(tokens, k=min(100, len(ids)), show_progress=False)
        times.append((time.perf_counter() - started, time.process_time() - cpu))
        run[qid] = [ids[i] for i in docs[0]]
    return run, times


def _p50(times: list[tuple[float, float]], which: int) -> float:
    return statistics.median(t[which] for t in times) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sets", nargs="*", help="dataset folder names (default: all found)")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--scale", type=int, default=0, help="repeat each corpus to this many documents (latency)")
    args = parser.parse_args()
    from nearspace.evaluate.beir import load_beir
    from nearspace.evaluate.metrics import evaluate_run

    names = args.sets or sorted(p.name for p in args.data.iterdir() if (p / "corpus.jsonl").exists())
    # p50 wall time per query, and CPU time (what a query costs when the cores are shared)
    print(f"{'set':10} {'bm25s':>7} {'nearspace':>9} {'gap':>7} {'ratio':>6} {'p50 bm25s':>10} {'p50 ours':>9}"
          f" {'cpu bm25s':>10} {'cpu ours':>9}")
    gaps = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            dataset = load_beir(args.data / name)
            if args.scale > len(dataset.corpus):
                import dataclasses

                base = dataset.corpus
                dataset.corpus = [dataclasses.replace(d, id=f"{d.id}~{i // len(base)}") if i >= len(base) else d
                                  for i, d in ((i, base[i % len(base)]) for i in range(args.scale))]
            qrels = {q: r for q, r in dataset.qrels("test").items() if q in dataset.queries}
            theirs, their_t = bm25s_run(dataset, qrels)
            ours, our_t = nearspace_run(dataset, qrels, Path(tmp))
            a = evaluate_run(qrels, theirs)["ndcg@10"]
            b = evaluate_run(qrels, ours)["ndcg@10"]
            gaps.append(b - a)
            print(f"{name:10} {a:7.4f} {b:9.4f} {b - a:+7.4f} {b / a:6.3f} "
                  f"{_p50(their_t, 0):8.1f}ms {_p50(our_t, 0):7.1f}ms {_p50(their_t, 1):8.1f}ms {_p50(our_t, 1):7.1f}ms",
                  flush=True)
    print(f"worst gap {min(gaps):+.4f} (target >= -0.010); mean gap {statistics.mean(gaps):+.4f}")


if __name__ == "__main__":
    main()
