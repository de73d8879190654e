"""A newcomer's first query: cold `nearspace search` wall time and peak RSS, ONNX vs torch path.

Each run is a fresh process (`nearspace --store S search "..."`, hybrid by default), so it
pays every import, the model load and the query, as a user at a shell does. Both backends
run side by side in one run, interleaved; the medians and their ratio are printed, plus
`nearspace --help`. Goals ([9/13]): search <= 1.0 s and <= 250 MB RSS; --help <= 0.3 s.

    python benchmarks/cold_cli.py --repeats 5
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NEARSPACE = [sys.executable, "-m", "nearspace.cli"]
QUERY = "how to reduce overfitting in neural networks"


def timed(args: list[str], env: dict) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of one child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    wrapper = [sys.executable, "-c",
               "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL);"
               "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)", *args]
    out = subprocess.run(wrapper, env=env, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - started
    del before
    return wall, int(out.stdout.strip().splitlines()[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = str(Path(tmp) / "demo.db")
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        subprocess.run([*NEARSPACE, "--store", store, "index", str(ROOT / "examples" / "documents.jsonl")],
                       env=env, check=True, capture_output=True)
        runs: dict[str, list[tuple[float, float]]] = {"onnx": [], "torch": [], "help": []}
        for _ in range(args.repeats):
            for backend in ("onnx", "torch"):
                runs[backend].append(timed([*NEARSPACE, "--store", store, "search", QUERY],
                                           {**env, "NEARSPACE_BACKEND": backend}))
            runs["help"].append(timed([*NEARSPACE, "--help"], env))
    med = {k: (statistics.median(w for w, _ in v), max(r for _, r in v)) for k, v in runs.items()}
    print(f"cold `nearspace search` (hybrid), median of {args.repeats}:")
    for backend in ("onnx", "torch"):
        wall, rss = med[backend]
        print(f"  {backend:6} {wall:6.2f} s  peak RSS {rss:6.0f} MB")
    print(f"  ratio torch/onnx: {med['torch'][0] / med['onnx'][0]:.1f}x wall, {med['torch'][1] / med['onnx'][1]:.1f}x RSS")
    print(f"  goal: <= 1.0 s and <= 250 MB -> {'met' if med['onnx'][0] <= 1.0 and med['onnx'][1] <= 250 else 'not met'}")
    print(f"`nearspace --help`: {med['help'][0]:.2f} s (goal 0.3 s)")


if __name__ == "__main__":
    main()
