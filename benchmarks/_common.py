"""Shared helpers for the benchmark scripts (data loading, timing summaries, JSON output).

Not part of the nearspace package: the scripts put this folder on ``sys.path`` themselves
(running ``python benchmarks/<name>.py`` does that already).
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterable

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
#: the shared evaluation data: NEARSPACE_BENCH_DATA, else NEARSPACE_DATA (what the tests read), else ../shared/data
DATA_ROOT = Path(os.environ.get("NEARSPACE_BENCH_DATA") or os.environ.get("NEARSPACE_DATA")
                 or REPO_ROOT.parent / "shared" / "data")
SCIFACT = DATA_ROOT / "beir" / "scifact"
NFCORPUS = DATA_ROOT / "beir" / "nfcorpus"
#: the project's own interpreter and CLI (falls back to the running interpreter)
VENV_BIN = REPO_ROOT / ".venv" / "bin"
PYTHON = str(VENV_BIN / "python") if (VENV_BIN / "python").exists() else sys.executable
NEARSPACE_CLI = str(VENV_BIN / "nearspace")


def require(*paths: Path) -> None:
    """Exit 0 with a clear message when benchmark data is missing (never a crash)."""
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        print("benchmark data not found: " + ", ".join(missing))
        print(f"(expected the BEIR copies under {DATA_ROOT}; set NEARSPACE_BENCH_DATA or NEARSPACE_DATA to point "
              "elsewhere). "
              "Skipping this benchmark.")
        sys.exit(0)


def read_corpus(path: Path, n: int | None = None) -> list[dict[str, str]]:
    """First ``n`` BEIR corpus records as ``{"id", "title", "text"}`` (file order)."""
    out: list[dict[str, str]] = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            rec = json.loads(line)
            out.append({"id": str(rec["_id"]), "title": rec.get("title") or "", "text": rec.get("text") or ""})
            if n is not None and len(out) >= n:
                break
    return out


def passage_text(rec: dict[str, str]) -> str:
    """``title + " " + text`` (what nearspace embeds for a titled document)."""
    return f"{rec['title']} {rec['text']}" if rec["title"] else rec["text"]


def scifact_test_queries(limit: int | None = None) -> list[tuple[str, str]]:
    """``(query_id, text)`` for the SciFact test queries (ids from qrels/test.tsv, file order)."""
    ids: list[str] = []
    with (SCIFACT / "qrels" / "test.tsv").open(encoding="utf-8") as handle:
        next(handle)  # header
        for line in handle:
            parts = line.strip().split("\t")
            if len(parts) >= 2 and parts[0] not in ids:
                ids.append(parts[0])
    texts: dict[str, str] = {}
    with (SCIFACT / "queries.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                rec = json.loads(line)
                texts[str(rec["_id"])] = rec["text"]
    out = [(qid, texts[qid]) for qid in ids if qid in texts]
    return out[:limit] if limit is not None else out


def scifact_test_qrels() -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    with (SCIFACT / "qrels" / "test.tsv").open(encoding="utf-8") as handle:
        next(handle)
        for line in handle:
            parts = line.strip().split("\t")
            if len(parts) >= 3:
                qrels.setdefault(parts[0], {})[parts[1]] = int(parts[2])
    return qrels


def latency_summary(seconds: Iterable[float]) -> dict[str, float]:
    """p50/p95/mean/max in milliseconds plus queries per second (serial)."""
    arr = np.asarray(list(seconds), dtype=np.float64)
    if arr.size == 0:
        return {"n": 0}
    return {"n": int(arr.size),
            "p50_ms": float(np.percentile(arr, 50) * 1e3),
            "p95_ms": float(np.percentile(arr, 95) * 1e3),
            "mean_ms": float(arr.mean() * 1e3),
            "max_ms": float(arr.max() * 1e3),
            "qps": float(arr.size / arr.sum()) if arr.sum() > 0 else float("inf")}


def fmt_latency(s: dict[str, float]) -> str:
    return (f"p50 {s['p50_ms']:.2f} ms  p95 {s['p95_ms']:.2f} ms  mean {s['mean_ms']:.2f} ms  "
            f"{s['qps']:.1f} q/s (n={s['n']})")


def environment() -> dict[str, Any]:
    """Machine facts that figures depend on."""
    info: dict[str, Any] = {"python": platform.python_version(), "machine": platform.machine(),
                            "cpu_count": os.cpu_count()}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        if os.environ.get(var):
            info[var] = os.environ[var]
    return info


def torch_environment() -> dict[str, Any]:
    """CPU capabilities that decide nearspace's precision="auto" (imports torch)."""
    import torch

    from nearspace.encoders.cpu import cpu_flags, has_native_bf16

    flags = cpu_flags()
    return {"torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "has_native_bf16": has_native_bf16(),
            "cpu_flags_bf16_related": sorted(f for f in flags if "bf16" in f or f.startswith("amx")
                                             or f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni"))}


def write_result(name: str, payload: dict[str, Any]) -> Path:
    """Write ``benchmarks/results/<name>.json`` (the folder is git-ignored)."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    payload = {"benchmark": name, "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
               "environment": environment(), **payload}
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, default=_jsonable) + "\n")
    print(f"\nsummary written to {path.relative_to(REPO_ROOT)}")
    return path


def _jsonable(value: Any) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    return str(value)


def timed_run(cmd: list[str], *, env: dict[str, str] | None = None, cwd: str | Path | None = None,
              check: bool = True) -> tuple[float, subprocess.CompletedProcess]:
    """Wall time (perf_counter) of a subprocess, including interpreter start."""
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd)
    elapsed = time.perf_counter() - started
    if check and proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise SystemExit(f"command failed ({proc.returncode}): {' '.join(cmd)}")
    return elapsed, proc


def verdict(ok: bool) -> str:
    return "MET" if ok else "NOT MET"
