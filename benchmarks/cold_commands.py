"""Cold CLI commands (search hybrid and keyword, ask, --help): wall time and peak RSS, ONNX vs torch.

benchmarks/cold_cli.py measures search and --help; this adds `ask` and keyword search, one
child per run with its own RSS (os.wait4).


The example corpus (examples/documents.jsonl, 60 documents) is indexed into a temporary store,
then each command is run --runs times (median reported; one untimed warm-up per command so the
page cache and the ONNX graph cache are as a returning user finds them):
  nearspace search "<query>"            (hybrid, the default mode)
  nearspace search "<query>" --mode keyword
  nearspace ask "<question>"
once with the default choice (NEARSPACE_BACKEND unset: ONNX Runtime on CPU) and once with
NEARSPACE_BACKEND=torch (the sentence-transformers path every command used before), plus
`nearspace --help`. Peak RSS is the child's ru_maxrss from os.wait4.

Targets: search and ask <= 1.0 s wall and <= 250 MB RSS on the ONNX path; --help <= 0.3 s.

    python benchmarks/cold_commands.py --runs 1     # smoke
    python benchmarks/cold_commands.py              # default (3 runs)
    python benchmarks/cold_commands.py --baseline 675532c   # also that commit's code, side by side
                                                            # (ONNX path; its own store, same corpus)
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

from _common import NEARSPACE_CLI, REPO_ROOT, verdict, write_result  # noqa: E402

QUERY = "how to reduce overfitting in neural networks"
QUESTION = "How do I reduce overfitting?"
TARGET_WALL_S, TARGET_RSS_MB, TARGET_HELP_S = 1.0, 250.0, 0.3


def run_once(cmd: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """(wall seconds, peak RSS MB, exit code) of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_maxrss / 1024, proc.returncode


def measure(cmd: list[str], env: dict[str, str], runs: int) -> dict:
    run_once(cmd, env)  # warm-up
    samples = [run_once(cmd, env) for _ in range(runs)]
    failed = [code for _, _, code in samples if code != 0]
    return {"cmd": " ".join(cmd[1:]), "wall_s": float(np.median([s[0] for s in samples])),
            "rss_mb": float(np.median([s[1] for s in samples])), "all_wall_s": [s[0] for s in samples],
            "exit_codes_nonzero": failed}


def compare_baseline(ref: str, tmp: Path, commands: dict[str, list[str]], env: dict[str, str], runs: int,
                     results: dict[str, dict]) -> dict[str, dict]:
    """The same commands with ``ref``'s code (a git worktree first on PYTHONPATH), its own store."""
    tree = tmp / "baseline-tree"
    subprocess.run(["git", "-C", str(REPO_ROOT), "worktree", "add", "--detach", str(tree), ref],
                   check=True, capture_output=True)
    out: dict[str, dict] = {}
    try:
        old_env = {**env, "PYTHONPATH": str(tree / "src")}
        cli = [sys.executable, "-m", "nearspace.cli"]
        store = str(tmp / "baseline.db")
        subprocess.run(cli + ["--store", store, "index", str(REPO_ROOT / "examples" / "documents.jsonl")],
                       check=True, capture_output=True, env=old_env)
        print(f"\nbaseline {ref} (ONNX path), against this checkout:")
        for label, cmd in commands.items():
            # both launched the same way (python -m), interleaved per run so drift hits both alike
            old_cmd, new_cmd = cli + ["--store", store] + cmd[3:], cli + cmd[1:]
            run_once(old_cmd, old_env), run_once(new_cmd, env)  # warm-up
            pairs = [(run_once(old_cmd, old_env), run_once(new_cmd, env)) for _ in range(runs)]
            old = [float(np.median([p[0][i] for p in pairs])) for i in (0, 1)]
            new = [float(np.median([p[1][i] for p in pairs])) for i in (0, 1)]
            out[label] = {"baseline_wall_s": old[0], "baseline_rss_mb": old[1], "wall_s": new[0], "rss_mb": new[1]}
            print(f"{label:<24} {ref:>9} {old[0]:>6.2f} s {old[1]:>5.0f} MB   this {new[0]:>6.2f} s {new[1]:>5.0f} MB"
                  f"   ratio {new[0] / old[0]:.2f}x wall, {new[1] / old[1]:.2f}x RSS")
    finally:
        subprocess.run(["git", "-C", str(REPO_ROOT), "worktree", "remove", "--force", str(tree)], capture_output=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="timed runs per command (default 3)")
    parser.add_argument("--baseline", help="a git commit whose code also runs the search commands (ONNX path)")
    args = parser.parse_args(argv)
    if not Path(NEARSPACE_CLI).exists():
        print(f"nearspace CLI not found at {NEARSPACE_CLI}; install the project (make install) first")
        return 0
    runs = max(1, args.runs)
    # a user's first run writes bytecode that later runs load: an environment that forbids it
    # (PYTHONDONTWRITEBYTECODE) would time compiling nearspace's modules on every command (~0.1 s)
    base_env = {k: v for k, v in os.environ.items() if k not in ("NEARSPACE_BACKEND", "PYTHONDONTWRITEBYTECODE")}
    paths = {"onnx (default)": base_env, "torch": {**base_env, "NEARSPACE_BACKEND": "torch"}}
    with tempfile.TemporaryDirectory(prefix="nearspace-cold-") as tmp:
        store = str(Path(tmp) / "example.db")
        subprocess.run([NEARSPACE_CLI, "--store", store, "index", str(REPO_ROOT / "examples" / "documents.jsonl")],
                       check=True, capture_output=True, env=base_env)
        commands = {
            "search (hybrid)": [NEARSPACE_CLI, "--store", store, "search", QUERY],
            "search --mode keyword": [NEARSPACE_CLI, "--store", store, "search", QUERY, "--mode", "keyword"],
            "ask": [NEARSPACE_CLI, "--store", store, "ask", QUESTION],
        }
        load = os.getloadavg()
        print(f"cold CLI on the example store (60 documents), median of {runs} run(s) after a warm-up; "
              f"load average {load[0]:.1f} on {os.cpu_count()} cores (other processes share the CPU)\n")
        results: dict[str, dict] = {}
        print(f"{'command':<24} {'path':<15} {'wall s':>7} {'RSS MB':>7}")
        for label, cmd in commands.items():
            for path, env in paths.items():
                r = results[f"{label} / {path}"] = measure(cmd, env, runs)
                print(f"{label:<24} {path:<15} {r['wall_s']:>7.2f} {r['rss_mb']:>7.0f}"
                      + (f"  (exit codes {r['exit_codes_nonzero']})" if r["exit_codes_nonzero"] else ""))
            onnx_r, torch_r = results[f"{label} / onnx (default)"], results[f"{label} / torch"]
            print(f"{'':<24} {'torch / onnx':<15} {torch_r['wall_s'] / onnx_r['wall_s']:>6.1f}x "
                  f"{torch_r['rss_mb'] / onnx_r['rss_mb']:>6.1f}x")
        help_r = results["--help"] = measure([NEARSPACE_CLI, "--help"], base_env, runs)
        print(f"{'--help':<24} {'':<15} {help_r['wall_s']:>7.2f} {help_r['rss_mb']:>7.0f}")
        if args.baseline:
            results["baseline"] = compare_baseline(args.baseline, Path(tmp), commands, base_env, runs, results)

    verdicts = {}
    for label in ("search (hybrid)", "ask"):
        r = results[f"{label} / onnx (default)"]
        verdicts[label] = r["wall_s"] <= TARGET_WALL_S and r["rss_mb"] <= TARGET_RSS_MB and not r["exit_codes_nonzero"]
        print(f"target: {label} <= {TARGET_WALL_S} s and <= {TARGET_RSS_MB:.0f} MB -> {r['wall_s']:.2f} s, "
              f"{r['rss_mb']:.0f} MB: {verdict(verdicts[label])}")
    verdicts["--help"] = help_r["wall_s"] <= TARGET_HELP_S
    print(f"target: --help <= {TARGET_HELP_S} s -> {help_r['wall_s']:.2f} s: {verdict(verdicts['--help'])}")
    write_result("cold_commands", {"runs": runs, "load_average": load, "results": results, "met": verdicts})
    return 0


if __name__ == "__main__":
    sys.exit(main())
