"""Indexing overhead: `nearspace index` vs pure encoding of the same texts.

The first N SciFact documents are written to a temporary .jsonl (id, title, text). Then,
side by side and each in a fresh process (so both pay interpreter start + model load):
  (1) the real CLI:  .venv/bin/nearspace --store <tmp>/store.db index <tmp>/docs.jsonl
  (2) reference: a process that loads the same encoder (nearspace SentenceEncoder,
      precision="auto", via nearspace.encoders.load_encoder) and encodes the same texts
      (title + " " + text) in one call, batch 64, longest-first; nothing is stored.
Overhead % = (wall(1) - wall(2)) / wall(2). Target: <= 10 %.
Also reported: encode-only time inside (2) excluding load, and (1) against that.

    python benchmarks/index_overhead.py --n 100     # smoke
    python benchmarks/index_overhead.py             # full (all 5183 documents)
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

from _common import (NEARSPACE_CLI, PYTHON, SCIFACT, read_corpus, require, timed_run, verdict,  # noqa: E402
                     write_result)

TARGET_OVERHEAD_PCT = 10.0


def encode_worker(path: str, precision: str, batch_size: int, chunk: int) -> None:
    """Runs in the reference subprocess: load the encoder, encode the texts, print timings."""
    started = time.perf_counter()
    from nearspace.encoders import load_encoder

    texts = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            rec = json.loads(line)
            texts.append(f"{rec['title']} {rec['text']}" if rec["title"] else rec["text"])
    encoder = load_encoder("all-MiniLM-L6-v2", precision=precision)
    loaded = time.perf_counter()
    if chunk > 0:  # mimic the CLI's batching: one encode call per committed batch
        parts = [encoder.encode(texts[i:i + chunk], batch_size=batch_size, show_progress=False)
                 for i in range(0, len(texts), chunk)]
        vectors = np.concatenate(parts)
    else:
        vectors = encoder.encode(texts, batch_size=batch_size, show_progress=False)
    done = time.perf_counter()
    print(json.dumps({"n": len(texts), "dim": int(vectors.shape[1]), "precision": getattr(encoder, "precision", None),
                      "load_s": loaded - started, "encode_s": done - loaded}))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=None, help="number of SciFact documents (default: all 5183)")
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    parser.add_argument("--repeats", type=int, default=1, help="interleaved runs of each; medians reported")
    parser.add_argument("--also-chunked", action="store_true",
                        help="also time the reference encoding in 256-text calls (the CLI's batch size), "
                             "to separate batching effects from store overhead")
    parser.add_argument("--worker-encode", help=argparse.SUPPRESS)
    parser.add_argument("--worker-chunk", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker_encode:
        encode_worker(args.worker_encode, args.precision, 64, args.worker_chunk)
        return 0

    corpus_path = SCIFACT / "corpus.jsonl"
    require(corpus_path)
    if not Path(NEARSPACE_CLI).exists():
        print(f"nearspace CLI not found at {NEARSPACE_CLI}; install the project (make install) first")
        return 0
    records = read_corpus(corpus_path, args.n)
    n = len(records)
    print(f"index overhead: {n} SciFact documents, precision {args.precision}, {args.repeats} run(s) each")

    with tempfile.TemporaryDirectory(prefix="nearspace-bench-") as tmp:
        docs = Path(tmp) / "docs.jsonl"
        with docs.open("w", encoding="utf-8") as handle:
            for rec in records:
                handle.write(json.dumps({"id": rec["id"], "title": rec["title"], "text": rec["text"]}) + "\n")
        warm = Path(tmp) / "warm.jsonl"
        warm.write_text("\n".join(docs.read_text(encoding="utf-8").splitlines()[:8]) + "\n", encoding="utf-8")

        worker = [PYTHON, str(Path(__file__).resolve()), "--worker-encode"]
        # warm-up (not timed): page cache for the model files, Python bytecode, the CLI's imports
        timed_run(worker + [str(warm), "--precision", args.precision])
        timed_run([NEARSPACE_CLI, "--store", str(Path(tmp) / "warm.db"), "index", str(warm),
                   "--precision", args.precision])

        cli_walls, cli_internal, enc_walls, enc_loads, enc_only, chunk_only = [], [], [], [], [], []
        for rep in range(max(1, args.repeats)):
            store = Path(tmp) / f"store{rep}.db"
            wall, proc = timed_run([NEARSPACE_CLI, "--store", str(store), "index", str(docs),
                                    "--precision", args.precision])
            cli_walls.append(wall)
            m = re.search(r"in ([0-9.]+)s;", proc.stderr)
            if m:
                cli_internal.append(float(m.group(1)))
            if f"{n} added" not in proc.stderr:
                print(f"warning: unexpected CLI report: {proc.stderr.strip()[-300:]}")

            wall, proc = timed_run(worker + [str(docs), "--precision", args.precision])
            info = json.loads(proc.stdout.strip().splitlines()[-1])
            enc_walls.append(wall)
            enc_loads.append(info["load_s"])
            enc_only.append(info["encode_s"])
            if args.also_chunked:
                _, proc = timed_run(worker + [str(docs), "--precision", args.precision, "--worker-chunk", "256"])
                chunk_only.append(json.loads(proc.stdout.strip().splitlines()[-1])["encode_s"])
        store_bytes = sum(p.stat().st_size for p in Path(tmp).glob("store0.db*") if p.is_file())

    med = lambda xs: float(np.median(xs)) if xs else None  # noqa: E731
    cli_wall, enc_wall, enc_encode = med(cli_walls), med(enc_walls), med(enc_only)
    overhead = (cli_wall - enc_wall) / enc_wall * 100.0
    overhead_vs_encode = (cli_wall - enc_encode) / enc_encode * 100.0
    print(f"\n{'':<40} {'seconds':>8} {'docs/s':>8}")
    print(f"{'nearspace index (CLI process wall)':<40} {cli_wall:>8.2f} {n / cli_wall:>8.1f}")
    if cli_internal:
        print(f"{'  of which CLI-reported (after imports)':<40} {med(cli_internal):>8.2f}")
    print(f"{'reference encode (process wall)':<40} {enc_wall:>8.2f} {n / enc_wall:>8.1f}")
    print(f"{'  import + model load':<40} {med(enc_loads):>8.2f}")
    print(f"{'  encode only (excl. load)':<40} {enc_encode:>8.2f} {n / enc_encode:>8.1f}")
    if chunk_only:
        print(f"{'  encode only, 256-text calls':<40} {med(chunk_only):>8.2f} {n / med(chunk_only):>8.1f}")
    print(f"\nratio index/reference (process walls): {cli_wall / enc_wall:.3f}x  -> overhead {overhead:+.1f} %")
    print(f"ratio index/encode-only (excl. load):  {cli_wall / enc_encode:.3f}x  -> overhead {overhead_vs_encode:+.1f} %")
    met = overhead <= TARGET_OVERHEAD_PCT
    print(f"target: overhead <= {TARGET_OVERHEAD_PCT:.0f} % (process walls): {verdict(met)}")
    if n < 1000:
        print("  (small N: fixed costs such as imports and store creation weigh more than at full size)")
    write_result("index_overhead", {
        "n_docs": n, "precision": args.precision, "repeats": args.repeats,
        "cli_wall_s": cli_wall, "cli_wall_all_s": cli_walls, "cli_reported_s": med(cli_internal),
        "encode_process_wall_s": enc_wall, "encode_process_wall_all_s": enc_walls,
        "encode_load_s": med(enc_loads), "encode_only_s": enc_encode, "encode_only_256_chunks_s": med(chunk_only),
        "overhead_pct": overhead, "overhead_vs_encode_only_pct": overhead_vs_encode,
        "store_bytes": store_bytes,
        "target": {"overhead_pct": TARGET_OVERHEAD_PCT, "met": met},
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
