"""Real ``nearspace serve`` processes on loopback ports, started and stopped by the tests."""
from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.conftest import ROOT

#: screenshots and server logs land here (git-ignored), so a failed run can be inspected
ARTIFACTS = Path(os.environ.get("NEARSPACE_TEST_ARTIFACTS", ROOT / ".nearspace" / "test-artifacts"))
API_KEY = "test-key-5f1c0e"
#: small limits keep the schema fuzzing fast and make the limits cheap to hit
LIMITS = ["--max-body-mb", "1", "--max-batch", "16", "--max-k", "50"]


@dataclass
class Server:
    proc: subprocess.Popen
    url: str
    store: Path
    log: Path

    def stop(self, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""


def server_env(api_key: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NEARSPACE_API_KEY", "NEARSPACE_STORE")}
    if api_key:
        env["NEARSPACE_API_KEY"] = api_key
    return env


def start_server(store: Path, *args: str, api_key: str | None = None, log: Path | None = None,
                 timeout: float = 180) -> Server:
    """Start ``nearspace serve --port 0`` and wait until /health answers."""
    log = log or store.with_suffix(".log")
    with log.open("w") as handle:
        proc = subprocess.Popen([sys.executable, "-m", "nearspace.cli", "--store", str(store), "serve",
                                 "--port", "0", "--no-access-log", *args],
                                stdout=handle, stderr=subprocess.STDOUT, env=server_env(api_key))
    deadline = time.monotonic() + timeout
    url = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        match = re.search(r"Uvicorn running on (http://\S+)", log.read_text(errors="replace"))
        if match:
            url = match.group(1)
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=5) as response:
                    if response.status == 200:
                        return Server(proc, url, store, log)
            except (urllib.error.URLError, OSError):
                pass
        time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"server did not become healthy in {timeout}s (url {url}):\n{log.read_text()[-3000:]}")


def index_examples(store: Path, encoder, example_docs: list[dict], example_vectors, name: str = "examples") -> None:
    from nearspace import open_store

    with open_store(store, encoder=encoder) as opened:
        coll = opened.collection(name)
        coll.upsert(ids=[d["id"] for d in example_docs], texts=[d["text"] for d in example_docs],
                    titles=[d["title"] for d in example_docs], metadatas=[d["metadata"] for d in example_docs],
                    vectors=example_vectors)


def snapshot(db: Path) -> list[tuple]:
    """Everything a write could change: collections, documents and vectors."""
    with sqlite3.connect(db) as conn:
        return (conn.execute("SELECT id, name, encoder, dim, config FROM collections ORDER BY id").fetchall()
                + conn.execute("SELECT collection_id, doc_id, title, text, metadata, hash, vector FROM docs "
                               "ORDER BY doc_row").fetchall())


def call(url: str, method: str = "GET", body: Any = None, *, raw: bytes | None = None,
         headers: dict[str, str] | None = None, timeout: float = 120) -> tuple[int, Any, dict[str, str]]:
    """One HTTP request with the standard library; returns (status, parsed JSON or text, headers)."""
    data = raw if raw is not None else None if body is None else json.dumps(body).encode()
    all_headers = {"Content-Type": "application/json"} if data is not None else {}
    all_headers.update(headers or {})
    request = urllib.request.Request(url, data=data, method=method, headers=all_headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, payload, got = response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as exc:
        status, payload, got = exc.code, exc.read(), dict(exc.headers)
    try:
        return status, json.loads(payload), got
    except ValueError:
        return status, payload.decode(errors="replace"), got


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="module")
def server(tmp_path_factory, encoder, example_docs, example_vectors) -> Iterator[Server]:
    """An open server (no key) over a store holding the example corpus as 'examples'."""
    store = tmp_path_factory.mktemp("served") / "store.db"
    index_examples(store, encoder, example_docs, example_vectors)
    served = start_server(store, *LIMITS)
    yield served
    code = served.stop()
    assert code == 0, f"server exit status {code} after SIGTERM:\n{served.log_tail()}"
    assert "Traceback" not in served.log.read_text(), served.log_tail()


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory, encoder, example_docs, example_vectors) -> Iterator[Server]:
    store = tmp_path_factory.mktemp("keyed") / "store.db"
    index_examples(store, encoder, example_docs, example_vectors)
    served = start_server(store, *LIMITS, api_key=API_KEY)
    yield served
    assert served.stop() == 0, served.log_tail()
