"""Encoding throughput: nearspace's encoders vs plain sentence-transformers (fp32).

Candidates: the ONNX Runtime encoder (the CPU default), the torch path in fp32, and the torch
path in bf16 where the CPU has native bf16 (AMX / AVX512-BF16). Target for the default on CPU:
>= 2.0x the reference at mean cosine >= 0.9999.


The first N SciFact passages (title + " " + text) are encoded, side by side in one run, by
  (a) reference: SentenceTransformer(bundled all-MiniLM-L6-v2, device="cpu"), fp32,
      model.encode(texts, batch_size=64, normalize_embeddings=True)
  (b) nearspace SentenceEncoder(precision="auto")  (bf16 only where the CPU has native bf16)
  (c) nearspace SentenceEncoder(precision="bf16")  (only with --include-bf16: very slow on
      CPUs that emulate bf16)
Reports texts/s, speed-up vs (a), mean/min cosine vs (a)'s vectors.

Target: >= 3.0x at mean cosine >= 0.999; reachable only on CPUs with native bf16
(AMX / AVX512-BF16); elsewhere "auto" is fp32 and the expected ratio is ~1.0x.

    python benchmarks/encode_throughput.py --n 64        # smoke
    python benchmarks/encode_throughput.py               # full (2000 passages)
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

from _common import SCIFACT, passage_text, read_corpus, require, torch_environment, verdict, write_result  # noqa: E402

TARGET_SPEEDUP = 2.0
TARGET_COSINE = 0.9999


def load_reference(device: str):
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    from nearspace.encoders.sentence import bundled_model_path

    hf_logging.disable_progress_bar()

    previous = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        return SentenceTransformer(str(bundled_model_path()), device=device, local_files_only=True)
    finally:
        if previous is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = previous


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2000, help="number of SciFact passages (default 2000)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=1,
                        help="timed passes per encoder, interleaved; the median is reported (default 1)")
    parser.add_argument("--warmup", type=int, default=16, help="texts encoded once before timing (default 16)")
    parser.add_argument("--include-bf16", action="store_true",
                        help="also time explicit precision='bf16' (very slow without native bf16)")
    args = parser.parse_args(argv)

    corpus_path = SCIFACT / "corpus.jsonl"
    require(corpus_path)
    texts = [passage_text(r) for r in read_corpus(corpus_path, args.n)]
    if not texts:
        print("no passages read")
        return 0

    from nearspace.encoders.sentence import SentenceEncoder, resolve_precision

    env = torch_environment()
    auto_choice = resolve_precision("auto", "cpu")
    print(f"encode throughput: {len(texts)} SciFact passages (title + text), batch {args.batch_size}, "
          f"{args.repeats} timed pass(es) each")
    print(f"torch {env['torch']} | cpu capability {env['torch_cpu_capability']} | "
          f"has_native_bf16 {env['has_native_bf16']} | relevant flags {env['cpu_flags_bf16_related']} | "
          f"torch threads {env['torch_threads']}")
    print(f"precision='auto' resolves to {auto_choice!r} on this CPU")

    import sentence_transformers  # noqa: F401  (import cost kept out of the load times below)

    t0 = time.perf_counter()
    reference = load_reference("cpu")
    load_ref = time.perf_counter() - t0
    t0 = time.perf_counter()
    from nearspace.encoders.onnx import OnnxEncoder

    candidates = {"nearspace onnx": OnnxEncoder()}
    loads = {"reference fp32": load_ref, "nearspace onnx": time.perf_counter() - t0}
    t0 = time.perf_counter()
    candidates["torch fp32"] = SentenceEncoder(precision="fp32", device="cpu")
    loads["torch fp32"] = time.perf_counter() - t0
    if args.include_bf16 or env["has_native_bf16"]:
        t0 = time.perf_counter()
        candidates["nearspace bf16"] = SentenceEncoder(precision="bf16", device="cpu")
        loads["nearspace bf16"] = time.perf_counter() - t0

    def run_reference() -> np.ndarray:
        return reference.encode(texts, batch_size=args.batch_size, normalize_embeddings=True,
                                show_progress_bar=False, convert_to_numpy=True)

    runners = {"reference fp32": run_reference}
    for label, enc in candidates.items():
        runners[label] = (lambda e=enc: e.encode(texts, batch_size=args.batch_size, show_progress=False))

    # warm-up: first calls allocate buffers / pick kernels
    warm = texts[: max(1, args.warmup)]
    reference.encode(warm, batch_size=args.batch_size, show_progress_bar=False)
    for enc in candidates.values():
        enc.encode(warm, batch_size=args.batch_size, show_progress=False)

    times: dict[str, list[float]] = {label: [] for label in runners}
    vectors: dict[str, np.ndarray] = {}
    for _ in range(max(1, args.repeats)):
        for label, run in runners.items():  # interleaved so drift hits every encoder alike
            start = time.perf_counter()
            out = run()
            times[label].append(time.perf_counter() - start)
            vectors[label] = np.asarray(out, dtype=np.float32)

    ref_vec = vectors["reference fp32"]
    ref_time = float(np.median(times["reference fp32"]))
    rows = {}
    for label in runners:
        seconds = float(np.median(times[label]))
        vec = vectors[label]
        cos = np.sum(vec * ref_vec, axis=1) / (np.linalg.norm(vec, axis=1) * np.linalg.norm(ref_vec, axis=1))
        rows[label] = {"seconds": seconds, "all_seconds": times[label], "texts_per_s": len(texts) / seconds,
                       "speedup_vs_reference": ref_time / seconds, "cosine_mean": float(cos.mean()),
                       "cosine_min": float(cos.min()), "load_seconds": loads[label],
                       "precision": "fp32" if label == "reference fp32" else candidates[label].precision}

    print(f"\n{'encoder':<16} {'precision':>9} {'texts/s':>9} {'seconds':>8} {'vs ref':>7} "
          f"{'cos mean':>9} {'cos min':>9} {'load s':>7}")
    for label, r in rows.items():
        print(f"{label:<16} {r['precision']:>9} {r['texts_per_s']:>9.1f} {r['seconds']:>8.2f} "
              f"{r['speedup_vs_reference']:>6.2f}x {r['cosine_mean']:>9.6f} {r['cosine_min']:>9.6f} "
              f"{r['load_seconds']:>7.2f}")

    auto = rows["nearspace onnx"]
    met = auto["speedup_vs_reference"] >= TARGET_SPEEDUP and auto["cosine_mean"] >= TARGET_COSINE
    print(f"\ntarget: nearspace onnx (the CPU default) >= {TARGET_SPEEDUP:.1f}x reference at mean cosine >= {TARGET_COSINE} "
          f"-> {auto['speedup_vs_reference']:.2f}x at {auto['cosine_mean']:.6f}: {verdict(met)}")
    write_result("encode_throughput", {
        "n_texts": len(texts), "batch_size": args.batch_size, "repeats": args.repeats,
        "auto_precision": auto_choice, "cpu": env, "results": rows,
        "target": {"speedup": TARGET_SPEEDUP, "cosine_mean": TARGET_COSINE, "met": met,
                   "applicable": True},
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
