"""Single-query encode latency (p50/p95), per encoder variant, at 1 and 2 threads.

Variants: ONNX Runtime fp32 (the CPU default), torch fp32, torch bf16 (where the CPU has
native bf16), plain sentence-transformers fp32 as the reference. Queries are the SciFact test
queries (or built-in ones when the data is absent). Goal ([9/13]): ONNX p50 <= 5 ms.

    python benchmarks/query_encode.py --n 200
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUERIES = ROOT.parent / "shared" / "data" / "beir" / "scifact" / "queries.jsonl"


def percentiles(times: list[float]) -> tuple[float, float]:
    ordered = sorted(times)
    return statistics.median(ordered) * 1e3, ordered[int(0.95 * (len(ordered) - 1))] * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=200)
    args = parser.parse_args()
    if QUERIES.exists():
        queries = [json.loads(line)["text"] for line in QUERIES.read_text().splitlines()[: args.n]]
    else:
        queries = [f"what is the effect of treatment {i} on outcome {i % 7}" for i in range(args.n)]
    import torch
    from sentence_transformers import SentenceTransformer

    from nearspace.encoders.cpu import has_native_bf16
    from nearspace.encoders.onnx import OnnxEncoder
    from nearspace.encoders.sentence import SentenceEncoder, bundled_model_path

    rows = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        variants = {
            "onnx fp32": OnnxEncoder(threads=threads),
            "torch fp32": SentenceEncoder(precision="fp32", device="cpu"),
        }
        if has_native_bf16():
            variants["torch bf16"] = SentenceEncoder(precision="bf16", device="cpu")
        reference = SentenceTransformer(str(bundled_model_path()), device="cpu", local_files_only=True)
        runners = {name: (lambda q, e=enc: e.encode([q], show_progress=False)) for name, enc in variants.items()}
        runners["sentence-transformers fp32"] = lambda q: reference.encode([q], show_progress_bar=False)
        import nearspace.encoders.onnx as onnx_module

        # the encoder sends short inputs to its one-thread session; measure both on purpose
        onnx_module.SHORT_INPUT_TOKENS = 64 if threads == 1 else 0
        for name, run in runners.items():
            for q in queries[:10]:
                run(q)
            times = []
            for q in queries:
                started = time.perf_counter()
                run(q)
                times.append(time.perf_counter() - started)
            p50, p95 = percentiles(times)
            rows.append((name, threads, p50, p95))
    ref = {t: p for n, t, p, _ in rows if n == "sentence-transformers fp32"}
    print(f"{'variant':28} {'threads':>7} {'p50 ms':>8} {'p95 ms':>8} {'vs ref':>7}")
    for name, threads, p50, p95 in rows:
        print(f"{name:28} {threads:7d} {p50:8.2f} {p95:8.2f} {ref[threads] / p50:6.1f}x")


if __name__ == "__main__":
    sys.exit(main())
