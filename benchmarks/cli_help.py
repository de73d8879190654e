"""CLI start-up: wall time of `nearspace --help` (the .venv/bin/nearspace executable).

Median of --runs runs (default 10) after one untimed warm-up; target <= 0.3 s. Measured in
the same run for reference: `python -c "pass"` (the interpreter's own floor) and
`python -c "import nearspace.cli.app"` (module import without running typer).

    python benchmarks/cli_help.py --runs 3     # smoke
    python benchmarks/cli_help.py              # full (10 runs)
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

from _common import NEARSPACE_CLI, PYTHON, timed_run, verdict, write_result  # noqa: E402

TARGET_S = 0.3


def measure(cmd: list[str], runs: int) -> dict:
    timed_run(cmd)  # warm-up: page cache, .pyc files
    walls = [timed_run(cmd)[0] for _ in range(runs)]
    return {"cmd": " ".join(cmd), "median_s": float(np.median(walls)), "min_s": float(min(walls)),
            "max_s": float(max(walls)), "all_s": walls}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10, help="timed runs per command (default 10)")
    args = parser.parse_args(argv)
    if not Path(NEARSPACE_CLI).exists():
        print(f"nearspace CLI not found at {NEARSPACE_CLI}; install the project (make install) first")
        return 0
    runs = max(1, args.runs)
    results = {
        "nearspace --help": measure([NEARSPACE_CLI, "--help"], runs),
        "python -c import nearspace.cli.app": measure([PYTHON, "-c", "import nearspace.cli.app"], runs),
        "python -c pass (floor)": measure([PYTHON, "-c", "pass"], runs),
    }
    floor = results["python -c pass (floor)"]["median_s"]
    print(f"CLI start-up, median of {runs} run(s) after a warm-up\n")
    print(f"{'command':<38} {'median s':>9} {'min s':>7} {'max s':>7} {'over floor':>11}")
    for label, r in results.items():
        r["over_floor_s"] = r["median_s"] - floor
        print(f"{label:<38} {r['median_s']:>9.3f} {r['min_s']:>7.3f} {r['max_s']:>7.3f} {r['over_floor_s']:>10.3f}s")
    helped = results["nearspace --help"]["median_s"]
    met = helped <= TARGET_S
    print(f"\ntarget: nearspace --help <= {TARGET_S} s -> {helped:.3f} s ({helped / floor:.1f}x the bare "
          f"interpreter): {verdict(met)}")
    write_result("cli_help", {"runs": runs, "results": results, "target": {"seconds": TARGET_S, "met": met}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
