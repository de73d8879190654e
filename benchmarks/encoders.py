"""Encoding throughput and query latency per model kind, side by side in one run.

The same weights (the bundled all-MiniLM-L6-v2) through every kind of model string, so the
figures show what each path costs, not which model is better:

  bundled            the built-in path (ONNX Runtime on CPU by default)
  st:FOLDER          the generic sentence-transformers path (torch, fp32)
  onnx:FOLDER        the generic ONNX-folder path (the bundled verified graph copied to a folder)
  openai:MODEL@URL   an OpenAI-compatible endpoint: ``nearspace serve`` on loopback (HTTP + JSON
                     on top of the server's own encoding)

Throughput: --docs SciFact passages (default 500) in batches of 64, best of 2. Query latency:
one query per call, median and p90 over --queries SciFact test queries (default 50).

    python benchmarks/encoders.py
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

from _common import DATA_ROOT, require, write_result  # noqa: E402


def start_server(store: Path) -> tuple[subprocess.Popen, str]:
    log = store.with_suffix(".log")
    handle = log.open("w")
    proc = subprocess.Popen([sys.executable, "-m", "nearspace.cli", "--store", str(store), "serve", "--port", "0",
                             "--no-access-log", "--precision", "fp32"], stdout=handle, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        match = re.search(r"Uvicorn running on (http://\S+)", log.read_text(errors="replace"))
        if match:
            try:
                with urllib.request.urlopen(f"{match.group(1)}/health", timeout=5):
                    return proc, match.group(1)
            except OSError:
                pass
        time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"the server did not start:\n{log.read_text()[-2000:]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=500)
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--data", type=Path, default=DATA_ROOT)
    args = parser.parse_args(argv)
    scifact = args.data / "beir" / "scifact"
    require(scifact / "corpus.jsonl")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from nearspace.encoders import load_encoder
    from nearspace.encoders.onnx import OnnxEncoder
    from nearspace.encoders.sentence import bundled_model_path
    from nearspace.evaluate.beir import load_beir
    from nearspace.types import embedding_text

    dataset = load_beir(scifact)
    passages = [embedding_text(d) for d in dataset.corpus[:args.docs]]
    queries = [dataset.queries[q] for q in sorted(dataset.qrels("test")) if q in dataset.queries][:args.queries]
    load = os.getloadavg()
    rows: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="nearspace-encoders-") as tmp:
        tmp = Path(tmp)
        folder = tmp / "onnx-minilm"
        folder.mkdir()
        shutil.copy(OnnxEncoder().graph_path, folder / "model.onnx")
        for name in ("tokenizer.json", "sentence_bert_config.json"):
            shutil.copy(bundled_model_path() / name, folder / name)
        proc, url = start_server(tmp / "served.db")
        try:
            kinds = {"bundled (default)": lambda: load_encoder(),
                     "st:FOLDER (torch fp32)": lambda: load_encoder(f"st:{bundled_model_path()}", precision="fp32"),
                     "onnx:FOLDER": lambda: load_encoder(f"onnx:{folder}"),
                     "openai: (nearspace serve)": lambda: load_encoder(
                         f"openai:sentence-transformers/all-MiniLM-L6-v2@{url}/v1")}
            print(f"{len(passages)} SciFact passages (batches of 64, best of 2) and {len(queries)} single queries; "
                  f"load average {load[0]:.1f} on {os.cpu_count()} cores (the server shares them)")
            print(f"{'kind':<28} {'docs/s':>8} {'query p50 ms':>13} {'p90 ms':>8} {'vs bundled':>11}")
            reference = None
            for label, make in kinds.items():
                enc = make()
                enc.encode_documents(passages[:64])  # warm
                best = min(_timed(lambda: enc.encode_documents(passages, batch_size=64)) for _ in range(2))
                for q in queries[:5]:
                    enc.encode_queries([q])
                lat = [_timed(lambda q=q: enc.encode_queries([q])) * 1000 for q in queries]
                vectors = enc.encode_documents(passages[:32])
                if reference is None:
                    reference = vectors
                agreement = float(np.min(np.sum(vectors * reference, axis=1)))
                rows[label] = {"docs_per_s": len(passages) / best, "query_p50_ms": float(np.median(lat)),
                               "query_p90_ms": float(np.percentile(lat, 90)), "min_cosine_to_bundled": agreement}
                ratio = rows[label]["docs_per_s"] / rows["bundled (default)"]["docs_per_s"]
                print(f"{label:<28} {rows[label]['docs_per_s']:>8.0f} {rows[label]['query_p50_ms']:>13.1f} "
                      f"{rows[label]['query_p90_ms']:>8.1f} {ratio:>10.2f}x   (min cosine to bundled {agreement:.5f})")
        finally:
            proc.terminate()
            proc.wait(30)
    write_result("encoders", {"load_average": load, "docs": len(passages), "queries": len(queries), "results": rows})
    return 0


def _timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


if __name__ == "__main__":
    sys.exit(main())
