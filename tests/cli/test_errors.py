"""Real faults at the CLI: disk full (a small tmpfs), a read-only mount, a lock held past the
timeout, no permission, a corrupt file. Each must end in one ``error:`` line that says what
happened and what to do, exit status 1, no traceback, and a consistent store.

Mounting needs root and mount rights (CAP_SYS_ADMIN); those tests skip with the reason otherwise.
"""
from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ROOT

ENCODER, DIM = "all-MiniLM-L6-v2", 384


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 300,
        preexec_fn=None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "200", **(env or {})}
    full_env.pop("NEARSPACE_STORE", None)
    return subprocess.run([sys.executable, "-m", "nearspace.cli", *args], capture_output=True, text=True,
                          env=full_env, timeout=timeout, cwd=ROOT, preexec_fn=preexec_fn)


def one_error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 1, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def make_store(path: Path, n: int = 20) -> None:
    """A store written through the storage layer with given vectors (no model needed)."""
    from nearspace.store.sqlite.database import Database, Document

    db = Database(path)
    data = db.collection("c", encoder=ENCODER, dim=DIM, create=True)
    rng = np.random.default_rng(0)
    docs = [Document(f"d{i}", f"document number {i} about tides and planets", {"n": i}) for i in range(n)]
    data.write(docs, rng.standard_normal((n, DIM)).astype(np.float32), replace=True)
    db.close()


@pytest.fixture
def tmpfs(tmp_path):
    """A 3 MB tmpfs mount, unmounted afterwards (skips where mounting is not permitted)."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root and CAP_SYS_ADMIN): {done.stderr.strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def integrity(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


def count(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT count(*) FROM docs").fetchone()[0]
    finally:
        conn.close()


def test_disk_full_is_one_line_with_progress_and_resumes(tmpfs, tmp_path):
    total = 300
    # 20 KB of metadata per record fills 3 MB within a few batches while encoding stays cheap
    records = tmp_path / "big.jsonl"
    with records.open("w") as handle:
        for i in range(total):
            handle.write(json.dumps({"id": f"r{i}", "text": f"record {i} about tides",
                                     "metadata": {"blob": "x" * 20_000, "i": i}}) + "\n")
    store = tmpfs / "s.db"
    result = cli("--store", str(store), "-c", "c", "index", str(records), "--batch-size", "25")
    line = one_error_line(result)
    assert "disk full" in line and f"of {total:,} documents were stored" in line, line
    assert "re-run" in line, line
    stored = int(line.split(" after ")[1].split(" of ")[0].replace(",", ""))
    assert integrity(store) == "ok"
    assert count(store) == stored and 0 < stored < total  # every committed batch kept, nothing half-written
    # free space, re-run: it resumes and completes
    subprocess.run(["mount", "-o", "remount,size=64m", str(tmpfs)], check=True)
    again = cli("--store", str(store), "-c", "c", "index", str(records), "--batch-size", "25")
    assert again.returncode == 0, again.stderr[-2000:]
    assert count(store) == total and integrity(store) == "ok"


def test_read_only_mount_is_one_line(tmpfs):
    store = tmpfs / "s.db"
    make_store(store)
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
    line = one_error_line(cli("--store", str(store), "-c", "c", "delete", "d1"))
    assert "read-only" in line, line
    subprocess.run(["mount", "-o", "remount,rw", str(tmpfs)], check=True)
    assert count(store) == 20


def test_lock_held_past_the_timeout_is_one_line(tmp_path):
    store = tmp_path / "s.db"
    make_store(store)
    holder = sqlite3.connect(store, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    try:
        result = cli("--store", str(store), "-c", "c", "delete", "d1", env={"NEARSPACE_LOCK_TIMEOUT": "0.5"})
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    line = one_error_line(result)
    assert "locked" in line and "retry" in line, line
    assert count(store) == 20


def test_permission_denied_is_one_line(tmp_path):
    # root ignores file modes; setpriv drops the capabilities that let it, so modes apply again
    setpriv = shutil.which("setpriv")
    if setpriv is None or os.geteuid() != 0:
        pytest.skip("needs root and util-linux setpriv to take away root's override of file modes")
    store = tmp_path / "s.db"
    make_store(store)
    os.chmod(store, 0o000)
    try:
        result = subprocess.run([setpriv, "--bounding-set", "-dac_override,-dac_read_search", sys.executable,
                                 "-m", "nearspace.cli", "--store", str(store), "-c", "c", "delete", "d1"],
                                capture_output=True, text=True, timeout=120, cwd=ROOT,
                                env={**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "200"})
    finally:
        os.chmod(store, 0o644)
    line = one_error_line(result)
    assert "permission" in line.lower(), line
    assert count(store) == 20


def test_corrupt_file_is_one_line(tmp_path):
    store = tmp_path / "s.db"
    make_store(store, n=200)
    conn = sqlite3.connect(store)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    size = store.stat().st_size
    with store.open("r+b") as handle:  # keep the header, scramble the b-tree pages
        handle.seek(4096)
        handle.write(np.random.default_rng(1).integers(0, 256, size - 4096, dtype=np.uint8).tobytes())
    line = one_error_line(cli("--store", str(store), "-c", "c", "search", "tides", "--mode", "keyword"))
    assert "corrupt" in line and "backup" in line, line


def test_not_a_store_is_one_line(tmp_path):
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not sqlite at all " * 500)
    line = one_error_line(cli("--store", str(junk), "info"))
    assert "not a nearspace store" in line or "corrupt" in line, line
    assert junk.read_bytes() == b"not sqlite at all " * 500


def test_long_records_are_chunked_or_refused_never_truncated(tmp_path):
    sentence = "The tide rises because the moon pulls the ocean toward it while the earth spins. "
    records = tmp_path / "r.jsonl"
    records.write_text(json.dumps({"id": "long", "text": sentence * 120 + "Zanzibar closes the record.",
                                   "metadata": {"k": 1}}) + "\n" + json.dumps({"id": "short", "text": "a short one"}) + "\n")
    store = tmp_path / "s.db"
    line = one_error_line(cli("--store", str(store), "index", str(records), "--no-chunk-records"))
    assert "'long'" in line and "--chunk-records" in line, line
    assert not store.exists() or count(store) == 0
    done = cli("--store", str(store), "index", str(records))
    assert done.returncode == 0, done.stderr[-2000:]
    conn = sqlite3.connect(store)
    got = dict(conn.execute("SELECT doc_id, text FROM docs"))
    conn.close()
    chunks = sorted((k for k in got if k.startswith("long#")), key=lambda k: int(k.split("#")[1]))
    assert "long" not in got and "short" in got and len(chunks) > 1
    assert "Zanzibar closes the record." in got[chunks[-1]]  # the end of the record is indexed, not cut off
    # a shorter version replaces the chunks: none are left over
    records.write_text(json.dumps({"id": "long", "text": "now it is short"}) + "\n")
    assert cli("--store", str(store), "index", str(records)).returncode == 0
    conn = sqlite3.connect(store)
    ids = {r[0] for r in conn.execute("SELECT doc_id FROM docs")}
    conn.close()
    assert ids == {"long", "short"}
