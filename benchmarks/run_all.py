"""Run every nearspace benchmark as a subprocess and print a combined summary.

Smoke sizes by default (each well under a minute on a small CPU; caches in
benchmarks/results/ make reruns faster); --full runs the full sizes (tens of minutes on a
2-core CPU: the ANN pool alone is 8000 passages to encode the first time).

    python benchmarks/run_all.py                 # smoke
    python benchmarks/run_all.py --full          # full sizes
    python benchmarks/run_all.py --only ann cli_help
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import BENCH_DIR, PYTHON, RESULTS_DIR, write_result  # noqa: E402

SMOKE = {
    "encode_throughput": ["--n", "32"],
    "index_overhead": ["--n", "40"],
    "query_latency": ["--n", "100", "--queries", "30"],
    "ann": ["--pool", "200", "--n", "5000", "--queries", "200", "--filter-queries", "100",
            "--exact-threshold", "1000"],
    "cli_help": ["--runs", "3"],
}
FULL = {
    "encode_throughput": ["--n", "2000"],
    "index_overhead": [],
    "query_latency": [],
    "ann": [],
    "cli_help": ["--runs", "10"],
}


def headline(name: str, r: dict) -> str:
    """One line of key figures from a benchmark's JSON summary."""
    try:
        if name == "encode_throughput":
            a, ref = r["results"]["nearspace auto"], r["results"]["reference fp32"]
            return (f"{r['n_texts']} texts: ref {ref['texts_per_s']:.1f}/s, auto({r['auto_precision']}) "
                    f"{a['texts_per_s']:.1f}/s = {a['speedup_vs_reference']:.2f}x, cos mean {a['cosine_mean']:.5f}"
                    f" | target 3x@0.999 {'met' if r['target']['met'] else 'not met'}"
                    f"{'' if r['target']['applicable'] else ' (n/a: no native bf16)'}")
        if name == "index_overhead":
            return (f"{r['n_docs']} docs: index {r['cli_wall_s']:.1f}s vs encode {r['encode_process_wall_s']:.1f}s "
                    f"-> overhead {r['overhead_pct']:+.1f}% (vs encode-only {r['overhead_vs_encode_only_pct']:+.1f}%)"
                    f" | target <=10% {'met' if r['target']['met'] else 'not met'}")
        if name == "query_latency":
            parts = [f"{m} p50 {s['p50_ms']:.1f}/p95 {s['p95_ms']:.1f} ms" for m, s in r["modes"].items()
                     if m in ("keyword", "dense", "hybrid")]
            return f"{r['n_docs']} docs, {r['n_queries']} q: " + "; ".join(parts)
        if name == "ann":
            raw, idx, eng = r["raw_hnswlib"], r["nearspace_index"], r["nearspace_engine_dense"]
            return (f"{r['n']} synth vecs: raw {raw['latency']['qps']:.0f} q/s R@10 {raw['recall_at_k']:.3f}; "
                    f"index {idx['qps_ratio_vs_raw']:.2f}x R@10 {idx['recall_at_k']:.3f}; "
                    f"engine {eng['qps_ratio_vs_raw']:.2f}x R@10 {eng['recall_at_k']:.3f}; "
                    f"ingest {r['ingest_rows_per_s']:.0f} rows/s; cold {r['cold_open_first_query_s'] * 1e3:.0f} ms"
                    f" | target 0.8x@0.95 {'met' if r['target']['met_engine'] else 'not met'} (engine), "
                    f"{'met' if r['target']['met_index'] else 'not met'} (index)")
        if name == "cli_help":
            h = r["results"]["nearspace --help"]
            return (f"--help median {h['median_s']:.3f}s, import {r['results']['python -c import nearspace.cli.app']['median_s']:.3f}s"
                    f" | target <=0.3s {'met' if r['target']['met'] else 'not met'}")
    except (KeyError, TypeError, ZeroDivisionError) as exc:
        return f"(summary unreadable: {exc!r})"
    return ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="full sizes instead of smoke sizes")
    parser.add_argument("--only", nargs="+", choices=list(SMOKE), help="run just these benchmarks")
    args = parser.parse_args(argv)
    sizes = FULL if args.full else SMOKE
    names = args.only or list(sizes)
    outcomes = {}
    for name in names:
        cmd = [PYTHON, str(BENCH_DIR / f"{name}.py"), *sizes[name]]
        print(f"\n{'=' * 78}\n$ {' '.join(cmd[1:])}\n{'=' * 78}", flush=True)
        result_file = RESULTS_DIR / f"{name}.json"
        before = result_file.stat().st_mtime if result_file.exists() else None
        started = time.perf_counter()
        rc = subprocess.call(cmd)
        wall = time.perf_counter() - started
        fresh = result_file.exists() and result_file.stat().st_mtime != before
        summary = json.loads(result_file.read_text()) if fresh else None
        outcomes[name] = {"rc": rc, "wall_s": wall, "args": sizes[name],
                          "headline": headline(name, summary) if summary else
                          ("skipped (no data?)" if rc == 0 else "FAILED")}

    print(f"\n{'=' * 78}\ncombined summary ({'full' if args.full else 'smoke'} sizes)\n{'=' * 78}")
    for name, o in outcomes.items():
        status = "ok" if o["rc"] == 0 else f"rc={o['rc']}"
        print(f"{name:<18} {status:<5} {o['wall_s']:>6.1f}s  {o['headline']}")
    write_result("run_all", {"mode": "full" if args.full else "smoke", "benchmarks": outcomes})
    return 0 if all(o["rc"] == 0 for o in outcomes.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
