"""Every way nearspace can run the bundled model, side by side in one run.

Batch encoding of the first N SciFact passages (title + " " + text, default N=500; the issue's
figure uses --n 2000) by:
  reference    plain SentenceTransformer(bundled all-MiniLM-L6-v2, cpu) fp32, batch 64
  torch fp32   nearspace SentenceEncoder(precision="fp32")
  torch bf16   nearspace SentenceEncoder(precision="bf16")   (only where the CPU has native bf16,
               or with --include-bf16)
  onnx fp32    nearspace OnnxEncoder (the CPU default), batch 64, longest-first batches
  onnx int8    precision="int8": the same graph, MatMul weights quantised per channel (onnxruntime.quantization,
               dynamic), written to a temporary file: an option, not the default
and ONNX fp32 knobs measured one at a time: file-order batches (no length bucketing),
graph optimisation BASIC instead of ALL, IO binding, batch 16 and 128, 1 intra-op thread.
Each row: passages/s, ratio to the reference, mean/min cosine and max abs diff vs the reference.

fp32 ceiling: the fastest fp32 matrix multiply available here (numpy's BLAS, torch, ONNX Runtime's
MatMul), timed on the model's own layer shapes, and the passages/s the encoder could reach if every
multiply-add of the model (its dense layers and attention scores over the passages' real token
counts) ran at that rate and nothing else took time. Its ratio to the reference bounds any fp32
path on this CPU: below the 2.0x target, no fp32 graph can meet it here.

Query encoding: p50/p95 of one SciFact query at a time, per variant, with 1 and 2 threads
(torch.set_num_threads / an ONNX session per thread count).

    python benchmarks/encoder_variants.py --n 64 --queries 20      # smoke
    python benchmarks/encoder_variants.py                           # default (500 passages)
    python benchmarks/encoder_variants.py --n 2000                  # the issue's figure
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

from _common import (SCIFACT, latency_summary, passage_text, read_corpus, require,  # noqa: E402
                     scifact_test_queries, torch_environment, verdict, write_result)

TARGET_SPEEDUP = 2.0
TARGET_COSINE = 0.9999
TARGET_QUERY_P50_MS = 5.0


def _reference():
    from encode_throughput import load_reference

    return load_reference("cpu")


def _session(graph: Path, threads: int, level: str = "ALL"):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, f"ORT_ENABLE_{level}")
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])


def _with_session(base, session):
    """A copy of an OnnxEncoder that runs on ``session`` (same tokenizer, pooling, normalisation)."""
    import copy

    clone = copy.copy(base)
    clone._session = session
    return clone


def _onnx_file_order(enc, texts: list[str], batch_size: int) -> np.ndarray:
    from nearspace.encoders.base import normalize_rows

    parts = [enc._forward(texts[i:i + batch_size]) for i in range(0, len(texts), batch_size)]
    return normalize_rows(np.concatenate(parts))


def _onnx_iobinding(enc, texts: list[str], batch_size: int) -> np.ndarray:
    from nearspace.encoders.base import normalize_rows

    session = enc._session
    order = np.argsort([-len(t) for t in texts], kind="stable")
    out = np.empty((len(texts), enc.dim), dtype=np.float32)
    for start in range(0, len(texts), batch_size):
        idx = order[start:start + batch_size]
        ids, mask = enc.tokenizer.batch([texts[i] for i in idx])
        binding = session.io_binding()
        binding.bind_cpu_input("input_ids", ids)
        binding.bind_cpu_input("attention_mask", mask)
        if "token_type_ids" in enc._input_names:
            binding.bind_cpu_input("token_type_ids", np.zeros_like(ids))
        binding.bind_output(session.get_outputs()[0].name)
        session.run_with_iobinding(binding)
        hidden = binding.copy_outputs_to_cpu()[0]
        weights = mask[..., None].astype(np.float32)
        out[idx] = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
    return normalize_rows(out)


#: (in, out) of MiniLM-L6's dense layers, per transformer layer: Q, K and V as one matmul (as the
#: fused graph runs them; the larger product is the faster one), attention output, FFN up, down
LAYER_SHAPES = [(384, 1152), (384, 384), (384, 1536), (1536, 384)]
LAYERS = 6


def model_flops(token_counts: np.ndarray) -> float:
    """Floating-point operations of one forward pass over passages of these token counts."""
    lengths = token_counts.astype(np.float64)
    dense = sum(k * n for k, n in LAYER_SHAPES) * lengths.sum()
    attention = 2 * 384 * np.square(lengths).sum()  # scores QK^T and the weighted sum of V
    return 2.0 * LAYERS * (dense + attention)


def gemm_rates(rows: int = 64 * 240, repeats: int = 3) -> dict[str, float]:
    """GFLOP/s of each fp32 matmul library here, over the model's layer shapes at ``rows`` tokens."""
    import onnxruntime as ort
    import torch
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inputs = {k: rng.standard_normal((rows, k), dtype=np.float32) for k in {k for k, _ in LAYER_SHAPES}}
    weights = [rng.standard_normal(shape, dtype=np.float32) for shape in LAYER_SHAPES]
    flops = 2.0 * rows * sum(k * n for k, n in LAYER_SHAPES)
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    sessions = []
    for w in weights:
        graph = helper.make_graph(
            [helper.make_node("MatMul", ["x", "w"], ["y"])], "matmul",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, w.shape[0]])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, w.shape[1]])],
            [numpy_helper.from_array(w, "w")])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        sessions.append(ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"]))
    torch_weights = [torch.from_numpy(w) for w in weights]
    torch_inputs = {k: torch.from_numpy(v) for k, v in inputs.items()}
    libraries: dict[str, Callable[[], None]] = {
        "numpy": lambda: [inputs[w.shape[0]] @ w for w in weights],
        "torch": lambda: [torch_inputs[w.shape[0]] @ w for w in torch_weights],
        "onnxruntime": lambda: [s.run(None, {"x": inputs[w.shape[0]]}) for s, w in zip(sessions, weights)],
    }
    rates = {}
    for name, run in libraries.items():
        run()
        best = min(_timed(run) for _ in range(repeats))
        rates[name] = flops / best / 1e9
    return rates


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=500, help="SciFact passages to encode (default 500)")
    parser.add_argument("--queries", type=int, default=100, help="queries timed per variant and thread count")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--include-bf16", action="store_true", help="time torch bf16 even without native bf16")
    parser.add_argument("--no-knobs", action="store_true", help="skip the one-knob-at-a-time ONNX rows")
    args = parser.parse_args(argv)
    require(SCIFACT / "corpus.jsonl", SCIFACT / "queries.jsonl")
    texts = [passage_text(r) for r in read_corpus(SCIFACT / "corpus.jsonl", args.n)]
    queries = [q for _, q in scifact_test_queries()][: max(1, args.queries)]
    env = torch_environment()
    load = os.getloadavg()
    print(f"encoder variants: {len(texts)} SciFact passages, batch {args.batch_size}; {len(queries)} queries")
    print(f"torch {env['torch']} | has_native_bf16 {env['has_native_bf16']} | flags {env['cpu_flags_bf16_related']} | "
          f"cores {os.cpu_count()} | load average {load[0]:.1f} {load[1]:.1f} (other processes share the CPU)")

    import torch

    from nearspace.encoders.onnx import OnnxEncoder
    from nearspace.encoders.registry import choose_backend
    from nearspace.encoders.sentence import SentenceEncoder

    print(f"auto backend on this machine: {choose_backend()}")
    reference = _reference()
    onnx = OnnxEncoder()
    int8 = OnnxEncoder(int8=True)  # precision="int8": the cached quantised graph
    bs = args.batch_size
    batch: dict[str, Callable[[], np.ndarray]] = {
        "reference st fp32": lambda: reference.encode(texts, batch_size=bs, normalize_embeddings=True,
                                                      show_progress_bar=False, convert_to_numpy=True),
    }
    torch_fp32 = SentenceEncoder(precision="fp32", device="cpu")
    batch["torch fp32"] = lambda: torch_fp32.encode(texts, batch_size=bs, show_progress=False)
    encoders: dict[str, Callable[[list[str]], np.ndarray]] = {"torch fp32": lambda q: torch_fp32.encode(q, show_progress=False)}
    if env["has_native_bf16"] or args.include_bf16:
        torch_bf16 = SentenceEncoder(precision="bf16", device="cpu")
        batch["torch bf16"] = lambda: torch_bf16.encode(texts, batch_size=bs, show_progress=False)
        encoders["torch bf16"] = lambda q: torch_bf16.encode(q, show_progress=False)
    batch["onnx fp32 (default)"] = lambda: onnx.encode(texts, batch_size=bs, show_progress=False)
    batch["onnx int8"] = lambda: int8.encode(texts, batch_size=bs, show_progress=False)
    if not args.no_knobs:
        basic = _with_session(onnx, _session(onnx.graph_path, onnx.threads, "BASIC"))
        one = _with_session(onnx, _session(onnx.graph_path, 1))
        batch["onnx fp32 file order"] = lambda: _onnx_file_order(onnx, texts, bs)
        batch["onnx fp32 opt BASIC"] = lambda: basic.encode(texts, batch_size=bs, show_progress=False)
        batch["onnx fp32 iobinding"] = lambda: _onnx_iobinding(onnx, texts, bs)
        batch["onnx fp32 batch 16"] = lambda: onnx.encode(texts, batch_size=16, show_progress=False)
        batch["onnx fp32 batch 128"] = lambda: onnx.encode(texts, batch_size=128, show_progress=False)
        batch["onnx fp32 1 thread"] = lambda: one.encode(texts, batch_size=bs, show_progress=False)

    warm = texts[:16]  # warm-up: kernels chosen, buffers allocated
    reference.encode(warm, show_progress_bar=False)
    for enc in [torch_fp32, onnx, int8] + ([] if args.no_knobs else [basic, one]):
        enc.encode(warm, show_progress=False)

    rows: dict[str, dict] = {}
    ref_vec: np.ndarray | None = None
    for label, run in batch.items():
        start = time.perf_counter()
        vec = np.asarray(run(), dtype=np.float32)
        seconds = time.perf_counter() - start
        if ref_vec is None:
            ref_vec = vec
        cos = np.sum(vec * ref_vec, axis=1) / (np.linalg.norm(vec, axis=1) * np.linalg.norm(ref_vec, axis=1))
        rows[label] = {"seconds": seconds, "per_s": len(texts) / seconds, "cos_mean": float(cos.mean()),
                       "cos_min": float(cos.min()), "max_abs_diff": float(np.abs(vec - ref_vec).max())}
    ref_s = rows["reference st fp32"]["seconds"]
    print(f"\n{'batch encode':<22} {'passages/s':>10} {'vs ref':>7} {'cos mean':>9} {'cos min':>9} {'max|diff|':>9}")
    for label, r in rows.items():
        r["ratio"] = ref_s / r["seconds"]
        print(f"{label:<22} {r['per_s']:>10.1f} {r['ratio']:>6.2f}x {r['cos_mean']:>9.6f} {r['cos_min']:>9.6f} "
              f"{r['max_abs_diff']:>9.2e}")

    # what fp32 could reach at best here: every multiply-add at the fastest library's matmul rate
    token_counts = np.concatenate([onnx.tokenizer.batch(texts[i:i + 256])[1].sum(axis=1)
                                   for i in range(0, len(texts), 256)])
    flops = model_flops(token_counts)
    rates = gemm_rates()
    best_lib = max(rates, key=rates.get)
    ceiling_per_s = len(texts) / (flops / (rates[best_lib] * 1e9))
    ceiling = {"model_gflop": flops / 1e9, "mean_tokens": float(token_counts.mean()), "gemm_gflops": rates,
               "best_library": best_lib, "ceiling_per_s": ceiling_per_s,
               "ceiling_ratio": ceiling_per_s / rows["reference st fp32"]["per_s"],
               "achieved_gflops": {label: flops / r["seconds"] / 1e9 for label, r in rows.items()}}
    print(f"\nfp32 ceiling: {flops / 1e9:,.0f} GFLOP for {len(texts)} passages (mean {token_counts.mean():.0f} tokens); "
          "matmul GFLOP/s on the model's shapes: " + ", ".join(f"{k} {v:.0f}" for k, v in rates.items()))
    print(f"  every multiply-add at {best_lib}'s rate: {ceiling_per_s:.1f} passages/s = "
          f"{ceiling['ceiling_ratio']:.2f}x the reference (an upper bound for any fp32 path on this CPU)")
    print("  achieved GFLOP/s: " + ", ".join(f"{k} {v:.0f}" for k, v in ceiling["achieved_gflops"].items()))

    # single queries, 1 and 2 threads
    latency: dict[str, dict] = {}
    onnx_by_threads = {t: _with_session(onnx, _session(onnx.graph_path, t)) for t in (1, 2)}
    int8_by_threads = {t: _with_session(int8, _session(int8.graph_path, t)) for t in (1, 2)}
    variants: dict[str, Callable[[int], Callable[[list[str]], np.ndarray]]] = {
        "reference st fp32": lambda t: (lambda q: reference.encode(q, show_progress_bar=False)),
        **{name: (lambda t, f=f: f) for name, f in encoders.items()},
        "onnx fp32 (default)": lambda t: (lambda q: onnx_by_threads[t].encode(q, show_progress=False)),
        "onnx int8": lambda t: (lambda q: int8_by_threads[t].encode(q, show_progress=False)),
    }
    default_threads = torch.get_num_threads()
    print(f"\n{'query encode':<22} {'threads':>7} {'p50 ms':>8} {'p95 ms':>8}")
    for label, make in variants.items():
        for threads in (1, 2):
            torch.set_num_threads(threads)
            fn = make(threads)
            fn(queries[:3])
            times = []
            for q in queries:
                start = time.perf_counter()
                fn([q])
                times.append(time.perf_counter() - start)
            s = latency_summary(times)
            latency[f"{label} / {threads}"] = s
            print(f"{label:<22} {threads:>7} {s['p50_ms']:>8.2f} {s['p95_ms']:>8.2f}")
    torch.set_num_threads(default_threads)

    default = rows["onnx fp32 (default)"]
    met_batch = default["ratio"] >= TARGET_SPEEDUP and default["cos_mean"] >= TARGET_COSINE
    best_p50 = min(latency[f"onnx fp32 (default) / {t}"]["p50_ms"] for t in (1, 2))
    print(f"\ntarget: onnx fp32 >= {TARGET_SPEEDUP}x reference at mean cosine >= {TARGET_COSINE} -> "
          f"{default['ratio']:.2f}x at {default['cos_mean']:.6f}: {verdict(met_batch)}")
    print(f"target: query encode p50 <= {TARGET_QUERY_P50_MS} ms -> {best_p50:.2f} ms: "
          f"{verdict(best_p50 <= TARGET_QUERY_P50_MS)}")
    write_result("encoder_variants", {"n_texts": len(texts), "batch_size": bs, "load_average": load, "cpu": env,
                                      "batch": rows, "fp32_ceiling": ceiling, "query_latency": latency,
                                      "target": {"batch_met": met_batch, "query_p50_ms": best_p50}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
