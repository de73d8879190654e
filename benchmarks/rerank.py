"""What a reranker adds to a query: ms per hybrid search at rerank_k 20, 50 and 100, side by side
with the same search unreranked, for a tiny cross-encoder and one of the bundled model's size.

Both cross-encoders are randomly initialised BERTs (weights cannot be downloaded here): the
tiny one 2 layers x 32 wide, the "MiniLM-size" one 6 layers x 384 wide with 12 heads, the shape
of cross-encoder/ms-marco-MiniLM-L-6-v2, so its cost is that model's cost (its scores are noise:
quality must be measured with a real model, ``nearspace eval --rerank``). The corpus is SciFact
(first 2,000 documents, NEARSPACE_DATA), queries its test queries; median over --queries.

    python benchmarks/rerank.py --queries 30
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

from _common import DATA_ROOT, require, write_result  # noqa: E402


def make_cross_encoder(folder: Path, layers: int, hidden: int, heads: int) -> Path:
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    from nearspace.encoders.sentence import bundled_model_path

    folder.mkdir(parents=True)
    vocab = len((bundled_model_path() / "vocab.txt").read_text().splitlines())
    torch.manual_seed(0)
    BertForSequenceClassification(BertConfig(vocab_size=vocab, hidden_size=hidden, num_hidden_layers=layers,
                                             num_attention_heads=heads, intermediate_size=4 * hidden,
                                             max_position_embeddings=512, num_labels=1)).save_pretrained(folder)
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(bundled_model_path() / name, folder / name)
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--queries", type=int, default=30)
    parser.add_argument("--docs", type=int, default=2000)
    parser.add_argument("--data", type=Path, default=DATA_ROOT)
    args = parser.parse_args(argv)
    scifact = args.data / "beir" / "scifact"
    require(scifact / "corpus.jsonl")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from nearspace import open_store
    from nearspace.evaluate.beir import load_beir
    from nearspace.rerank import load_reranker

    dataset = load_beir(scifact)
    queries = [dataset.queries[q] for q in sorted(dataset.qrels("test")) if q in dataset.queries][:args.queries]
    load = os.getloadavg()
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="nearspace-rerank-") as tmp:
        tmp = Path(tmp)
        rerankers = {"tiny (2x32)": make_cross_encoder(tmp / "tiny", 2, 32, 2),
                     "MiniLM-size (6x384)": make_cross_encoder(tmp / "minilm", 6, 384, 12)}
        store = open_store(tmp / "s.db")
        coll = store.collection("scifact")
        coll.write_documents(dataset.corpus[:args.docs], show_progress=True)
        for q in queries[:3]:
            coll.search(q, k=10)  # warm: model, indexes

        def per_query(**kw) -> float:
            times = []
            for q in queries:
                started = time.perf_counter()
                coll.search(q, k=10, **kw)
                times.append(time.perf_counter() - started)
            return float(np.median(times) * 1000)

        base = per_query()
        results["hybrid, no rerank"] = {"ms": base}
        print(f"hybrid search over {min(args.docs, len(dataset.corpus)):,} SciFact documents, median of "
              f"{len(queries)} queries; load average {load[0]:.1f} on {os.cpu_count()} cores")
        print(f"{'reranker':<22} {'rerank_k':>8} {'ms/query':>9} {'added ms':>9}")
        print(f"{'(none)':<22} {'':>8} {base:>9.1f} {'':>9}")
        for label, folder in rerankers.items():
            reranker = load_reranker(f"ce:{folder}")
            coll.search(queries[0], k=10, rerank=reranker, rerank_k=20)  # warm
            for depth in (20, 50, 100):
                ms = per_query(rerank=reranker, rerank_k=depth)
                results[f"{label} @ {depth}"] = {"ms": ms, "added_ms": ms - base}
                print(f"{label:<22} {depth:>8} {ms:>9.1f} {ms - base:>9.1f}")
        store.close()
    write_result("rerank", {"load_average": load, "queries": len(queries), "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
