"""Retrieval quality of every way nearspace can run the bundled model: SciFact and NFCorpus
nDCG@10 (dense, exact search) per encoder variant, side by side in one run.

Variants (as in benchmarks/encoder_variants.py, which measures their speed):
  reference st fp32   plain SentenceTransformer(bundled all-MiniLM-L6-v2, cpu) fp32
  onnx fp32           nearspace OnnxEncoder, the CPU default
  onnx int8           precision="int8" (all-MiniLM-L6-v2-int8): MatMul weights quantised per channel
  torch bf16          nearspace SentenceEncoder(precision="bf16"), what `auto` uses for batches of
                      256+ texts on CPUs with native bf16 (skipped elsewhere unless --include-bf16)
  torch fp32          nearspace SentenceEncoder(precision="fp32")

Documents are ``title + " " + text`` (as `nearspace eval` indexes them), queries as given; the
test split's qrels; scores by exact cosine. Each row prints nDCG@10, its gap to the reference
and the mean cosine of the corpus vectors to the reference's. The int8 rule from the issue:
int8 may be the default only if both gaps stay within 0.005 and mean cosine >= 0.99.

Vectors are cached per (variant, dataset) in benchmarks/results/quality_vectors/ so a rerun
costs only the evaluation; --fresh ignores the cache.

    python benchmarks/encoder_quality.py --datasets scifact --variants "onnx fp32" "onnx int8"   # one set
    python benchmarks/encoder_quality.py                                                          # all
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA_ROOT, RESULTS_DIR  # noqa: E402

VARIANTS = ("reference st fp32", "onnx fp32", "onnx int8", "torch bf16", "torch fp32")
INT8_MAX_GAP = 0.005
INT8_MIN_COSINE = 0.99


def _encoders(names: list[str], include_bf16: bool) -> dict:
    """Lazily built encoders: name -> zero-argument factory of an object with ``encode``."""
    from encoder_variants import _reference

    from nearspace.encoders.cpu import has_native_bf16

    def onnx_fp32():
        from nearspace.encoders.onnx import OnnxEncoder

        return OnnxEncoder()

    def onnx_int8():
        from nearspace.encoders.onnx import OnnxEncoder

        return OnnxEncoder(int8=True)

    def torch(precision):
        def build():
            from nearspace.encoders.sentence import SentenceEncoder

            return SentenceEncoder(precision=precision, device="cpu")
        return build

    class _Reference:
        def __init__(self):
            self.model = _reference()

        def encode(self, texts, **_):
            return self.model.encode(list(texts), batch_size=64, normalize_embeddings=True,
                                     convert_to_numpy=True, show_progress_bar=False)

    factories = {"reference st fp32": _Reference, "onnx fp32": onnx_fp32, "onnx int8": onnx_int8,
                 "torch bf16": torch("bf16"), "torch fp32": torch("fp32")}
    out = {}
    for name in names:
        if name == "torch bf16" and not (include_bf16 or has_native_bf16()):
            print(f"  {name}: skipped (this CPU has no native bf16; --include-bf16 to run it emulated)")
            continue
        out[name] = factories[name]
    return out


def _vectors(variant: str, factory, cache: Path, dataset: str, texts: list[str], fresh: bool,
             built: dict) -> np.ndarray:
    path = cache / f"{variant.replace(' ', '_')}-{dataset}-{len(texts)}.npy"
    if path.exists() and not fresh:
        return np.load(path)
    if variant not in built:
        built[variant] = factory()
    started = time.perf_counter()
    vectors = np.asarray(built[variant].encode(texts, show_progress=True) if variant != "reference st fp32"
                         else built[variant].encode(texts), dtype=np.float32)
    print(f"  {variant} {dataset}: {len(texts)} texts in {time.perf_counter() - started:.0f}s")
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["scifact", "nfcorpus"])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--include-bf16", action="store_true")
    parser.add_argument("--fresh", action="store_true", help="re-encode even when cached vectors exist")
    args = parser.parse_args(argv)

    from nearspace.evaluate.beir import load_beir
    from nearspace.evaluate.metrics import evaluate_run

    variants = list(dict.fromkeys(["reference st fp32", *args.variants]))  # the reference is always measured
    factories = _encoders(variants, args.include_bf16)
    cache = RESULTS_DIR / "quality_vectors"
    built: dict = {}
    table: dict[str, dict[str, dict[str, float]]] = {}
    for name in args.datasets:
        root = DATA_ROOT / "beir" / name
        if not root.exists():
            print(f"{name}: skipped ({root} not found)")
            continue
        data = load_beir(root)
        qrels = data.qrels("test")
        qids = [q for q in qrels if q in data.queries]
        docs = [f"{d.title} {d.text}".strip() for d in data.corpus]
        doc_ids = [d.id for d in data.corpus]
        queries = [data.queries[q] for q in qids]
        reference_docs = None
        for variant, factory in factories.items():
            d = _vectors(variant, factory, cache, name, docs, args.fresh, built)
            q = _vectors(variant, factory, cache, name + "-queries", queries, args.fresh, built)
            scores = q @ d.T
            top = np.argsort(-scores, axis=1, kind="stable")[:, :100]
            run = {qid: [doc_ids[j] for j in row] for qid, row in zip(qids, top)}
            ndcg = evaluate_run(qrels, run)["ndcg@10"]
            if reference_docs is None:
                reference_docs = d
            cosine = float(np.mean(np.sum(d * reference_docs, axis=1)))
            table.setdefault(variant, {})[name] = {"ndcg@10": ndcg, "cosine": cosine}

    names = [n for n in args.datasets if any(n in row for row in table.values())]
    ref = table.get("reference st fp32", {})
    print("\nnDCG@10 (dense, exact cosine), gap to plain sentence-transformers fp32, mean cosine to it")
    print(f"{'variant':20s}" + "".join(f"{n:>28s}" for n in names))
    for variant, row in table.items():
        cells = []
        for n in names:
            got = row[n]
            gap = got["ndcg@10"] - ref[n]["ndcg@10"]
            cells.append(f"{got['ndcg@10']:.4f} ({gap:+.4f}, cos {got['cosine']:.5f})")
        print(f"{variant:20s}" + "".join(f"{c:>28s}" for c in cells))
    if "onnx int8" in table:
        gaps = [abs(table["onnx int8"][n]["ndcg@10"] - ref[n]["ndcg@10"]) for n in names]
        cos = min(table["onnx int8"][n]["cosine"] for n in names)
        ok = all(g <= INT8_MAX_GAP for g in gaps) and cos >= INT8_MIN_COSINE
        print(f"int8 as default needs every gap <= {INT8_MAX_GAP} and cosine >= {INT8_MIN_COSINE}: "
              f"gaps {', '.join(f'{g:.4f}' for g in gaps)}, cosine {cos:.4f} -> {'allowed' if ok else 'NOT allowed'}")
    out = RESULTS_DIR / "encoder_quality.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(table, indent=2))
    print(f"summary written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
