"""Encoding the same passages in one process and on a local Ray cluster, side by side.

DATA: the first ``--n`` SciFact corpus passages (title + text, as nearspace embeds them) from
../shared/data/beir/scifact; the bundled all-MiniLM-L6-v2 at ``--precision`` (fp32 by default:
bf16 output depends on which texts share a padded batch, so only fp32 can be compared for
identity).

What runs, in this order, in one process:
  single       the encoder loaded once, ``encode(texts)`` (longest-first batches, ONNX Runtime
               using every core through its own intra-op threads)
  ray          ``ray.init(num_cpus=<cores>)``, then the same texts through Ray Data
               ``map_batches`` over an ``ActorPoolStrategy(size=A)`` of nearspace's own
               ``_EncodeActor`` (what ``nearspace index --ray`` runs; each actor loads the model
               once), for each A in ``--actors``
  identical    max |ray - single| over every vector (must be < 1e-5 at fp32)
  write rate   committing the vectors into a SQLite collection through upsert(vectors=...): the
               driver's ceiling on how many workers can be fed (see the scaling note printed)

    python benchmarks/ray_encode.py --n 300          # smoke
    python benchmarks/ray_encode.py                  # the issue's 2,000 passages
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS_DIR, SCIFACT, passage_text, read_corpus, require  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--actors", default="1,2", help="actor pool sizes to run, comma-separated")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--json", type=Path, default=RESULTS_DIR / "ray_encode.json")
    args = parser.parse_args()
    require(SCIFACT / "corpus.jsonl")
    try:
        import ray
    except ImportError as exc:
        print(f"Ray is not installed ({exc}): pip install 'nearspace[ray]'. Skipping this benchmark.")
        return
    from nearspace.encoders import load_encoder
    from nearspace.ingest.distributed import _EncodeActor

    cores = os.cpu_count() or 1
    load_before = os.getloadavg()
    records = read_corpus(SCIFACT / "corpus.jsonl", args.n)
    texts = [passage_text(r) for r in records]
    print(f"data: the first {len(texts)} SciFact passages (title + text), {args.precision}, {cores} cores "
          f"(load average {load_before[0]:.1f}: the cores are shared with other work)")

    started = time.perf_counter()
    encoder = load_encoder(precision=args.precision)
    encoder.encode(texts[:2], show_progress=False)  # first call initialises the runtime
    load_s = time.perf_counter() - started
    started = time.perf_counter()
    single = encoder.encode(texts, batch_size=args.batch_size, show_progress=False)
    single_s = time.perf_counter() - started
    print(f"single process: model load {load_s:.1f}s, encode {single_s:.1f}s ({len(texts) / single_s:.1f} texts/s)")

    started = time.perf_counter()
    ray.init(num_cpus=cores, include_dashboard=False, log_to_driver=False)
    init_s = time.perf_counter() - started
    import logging

    ray.data.DataContext.get_current().enable_progress_bars = False  # the figures, not Ray's progress log
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    print(f"ray.init (local cluster, num_cpus={cores}): {init_s:.1f}s")
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))  # longest first, as index_with_ray does
    runs = {}
    try:
        for size in [int(a) for a in args.actors.split(",")]:
            started = time.perf_counter()
            dataset = ray.data.from_items([{"i": i, "text": texts[i]} for i in order])
            encoded = dataset.map_batches(_EncodeActor, batch_size=args.batch_size, batch_format="numpy",
                                          compute=ray.data.ActorPoolStrategy(size=size),
                                          fn_constructor_kwargs={"encoder": encoder.name, "precision": args.precision})
            out = np.zeros_like(single)
            seen = 0
            for batch in encoded.iter_batches(batch_size=args.batch_size, batch_format="numpy"):
                out[np.asarray(batch["i"], dtype=np.int64)] = batch["vector"]
                seen += len(batch["i"])
            took = time.perf_counter() - started
            diff = float(np.abs(out - single).max())
            runs[size] = {"seconds": took, "texts_per_s": len(texts) / took, "max_abs_diff": diff,
                          "all_returned": seen == len(texts)}
            print(f"ray, {size} actor(s): {took:.1f}s ({len(texts) / took:.1f} texts/s), "
                  f"max |ray - single| = {diff:.2e}, {seen}/{len(texts)} returned")
    finally:
        ray.shutdown()
    # the cores are shared: the single process runs again after Ray, and the ratio uses both runs,
    # so a change in the machine's load during the run shows instead of passing as a Ray effect
    started = time.perf_counter()
    again = encoder.encode(texts, batch_size=args.batch_size, show_progress=False)
    single_after_s = time.perf_counter() - started
    assert float(np.abs(again - single).max()) == 0.0  # the same process gives the same vectors
    print(f"single process again, after Ray: {single_after_s:.1f}s (before: {single_s:.1f}s)")
    single_before_s, single_s = single_s, (single_s + single_after_s) / 2
    for size, run in runs.items():
        run["ratio_to_single_mean"] = run["seconds"] / single_s
        print(f"ray, {size} actor(s) / mean single: {run['ratio_to_single_mean']:.2f}x "
              f"(single ranged {min(single_before_s, single_after_s):.1f}-{max(single_before_s, single_after_s):.1f}s)")

    # the driver commits what the workers return: its write rate caps how many workers help
    from nearspace import open_store

    with tempfile.TemporaryDirectory() as tmp, open_store(Path(tmp) / "w.db") as store:
        coll = store.collection("w", dim=single.shape[1])
        started = time.perf_counter()
        for start in range(0, len(texts), args.batch_size):
            end = min(start + args.batch_size, len(texts))
            coll.upsert([r["id"] for r in records[start:end]], texts[start:end], vectors=single[start:end],
                        batch_size=args.batch_size, show_progress=False)
        write_s = time.perf_counter() - started
    write_rate = len(texts) / write_s
    rate = len(texts) / single_s
    load_after = os.getloadavg()
    best = min(runs, key=lambda a: runs[a]["seconds"])
    print(f"driver write rate (SQLite upsert with vectors, batches of {args.batch_size}): {write_rate:.0f} rows/s")
    print(f"load average after: {load_after[0]:.1f}")
    print(f"""
Scaling per added worker (from the figures above):
  Here one process already keeps all {cores} cores busy (ONNX Runtime's intra-op threads), so Ray
  actors on the same machine only share those cores: the expected ratio is ~1.0x plus Ray's fixed
  costs: its cluster start ({init_s:.1f}s, once per cluster), one model load per actor (~{load_s:.1f}s
  each, in parallel) and the Arrow round trip of texts and vectors (384 floats per text: small next
  to the forward pass). Measured: the best pool ({best} actor(s)) took {runs[best]['seconds'] - single_s:+.1f}s
  against the mean single run ({runs[best]['ratio_to_single_mean']:.2f}x); on shared cores a
  difference inside the spread of the two single runs is load noise, not a Ray effect.
  On a cluster, each added worker with C cores brings its own ~{rate / cores:.0f} texts/s per core
  measured here (the encode is embarrassingly parallel: no shared state between batches), so time
  ~ start + model load + N / (workers x {rate:.0f} texts/s per {cores}-core worker), near-linear until
  the driver's single writer saturates at ~{write_rate:.0f} rows/s: about {write_rate / rate:.0f}
  such workers. Past that, write to Milvus (its own distributed write path) or shard the input.
  Below ~{max(1, int(rate * (init_s + load_s)))} passages the fixed costs alone exceed a local run.""")
    summary = {"n": len(texts), "precision": args.precision, "cores": cores, "model_load_s": load_s,
               "single_s": single_s, "single_texts_per_s": rate, "ray_init_s": init_s,
               "ray": {str(k): v for k, v in runs.items()}, "driver_write_rows_per_s": write_rate,
               "load_average": {"before": load_before, "after": load_after}}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(summary, indent=2))
    print(f"\nwritten to {args.json}")


if __name__ == "__main__":
    main()
