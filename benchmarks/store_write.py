"""Store writes alone (vectors given, no encoder): documents per second and file size, this
checkout against a baseline commit, side by side in one run.

Writes the first N SciFact documents (default 3,000) with fixed random unit vectors into a
fresh store through ``Collection.upsert(..., vectors=...)`` in batches of 256, best of
--runs, each variant in its own child process (the baseline's code from a temporary git
worktree of --baseline, imported first on PYTHONPATH). What it isolates: the write path of
the store (schema, metadata index, change log, any keyword table written on upsert), which
[14/20] changed by dropping FTS5.

    python benchmarks/store_write.py                      # HEAD vs 675532c (before [14/20])
    python benchmarks/store_write.py --baseline HEAD~3 --docs 5000
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import DATA_ROOT, REPO_ROOT, require, write_result  # noqa: E402

CHILD = r"""
import json, sys, tempfile, time
from pathlib import Path
import numpy as np
import nearspace

corpus, n, runs, dim = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), 384
docs = []
with open(corpus, encoding="utf-8") as fh:
    for line in fh:
        r = json.loads(line)
        docs.append((r["_id"], r.get("title", ""), r["text"], {"n": len(docs) % 7, "tags": ["a", "b"][: len(docs) % 3]}))
        if len(docs) == n:
            break
rng = np.random.default_rng(0)
vectors = rng.normal(size=(len(docs), dim)).astype(np.float32)
vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
best, size = float("inf"), 0
for _ in range(runs):
    with tempfile.TemporaryDirectory() as tmp:
        store = nearspace.open_store(Path(tmp) / "w.db")
        coll = store.collection("w", dim=dim)
        started = time.perf_counter()
        for s in range(0, len(docs), 256):
            part = docs[s:s + 256]
            coll.upsert([d[0] for d in part], [d[2] for d in part], titles=[d[1] for d in part],
                        metadatas=[d[3] for d in part], vectors=vectors[s:s + 256])
        best = min(best, time.perf_counter() - started)
        store.close()
        size = sum(p.stat().st_size for p in Path(tmp).iterdir() if p.is_file())
print(json.dumps({"docs": len(docs), "seconds": best, "docs_per_s": len(docs) / best, "bytes": size,
                  "module": nearspace.__file__}))
"""


def run_variant(pythonpath: str | None, corpus: Path, n: int, runs: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    out = subprocess.run([sys.executable, "-c", CHILD, str(corpus), str(n), str(runs)], env=env,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", default="675532c", help="git commit to compare with (default 675532c)")
    parser.add_argument("--docs", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--data", type=Path, default=DATA_ROOT)
    args = parser.parse_args(argv)
    corpus = args.data / "beir" / "scifact" / "corpus.jsonl"
    require(corpus)
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="nearspace-write-") as tmp:
        tree = Path(tmp) / "baseline"
        subprocess.run(["git", "-C", str(REPO_ROOT), "worktree", "add", "--detach", str(tree), args.baseline],
                       check=True, capture_output=True)
        try:
            base = run_variant(str(tree / "src"), corpus, args.docs, args.runs)
            head = run_variant(None, corpus, args.docs, args.runs)
        finally:
            subprocess.run(["git", "-C", str(REPO_ROOT), "worktree", "remove", "--force", str(tree)],
                           capture_output=True)
    print(f"store writes, {head['docs']:,} SciFact documents with given 384-d vectors, batches of 256, "
          f"best of {args.runs}; load average {load[0]:.1f} on {os.cpu_count()} cores")
    print(f"{'variant':<28} {'docs/s':>9} {'file MB':>8}")
    for label, r in ((f"baseline {args.baseline}", base), ("this checkout", head)):
        print(f"{label:<28} {r['docs_per_s']:>9,.0f} {r['bytes'] / 1e6:>8.1f}")
    print(f"ratio (this / baseline): {head['docs_per_s'] / base['docs_per_s']:.2f}x speed, "
          f"{head['bytes'] / base['bytes']:.2f}x size")
    write_result("store_write", {"baseline": args.baseline, "load_average": load, "baseline_result": base,
                                 "result": head})
    return 0


if __name__ == "__main__":
    sys.exit(main())
