"""A hardened server, tested over real HTTP against real ``nearspace serve`` processes: Host
allow-list (DNS rebinding), read-only and read-write keys, strict bearer parsing, deep bodies
answered 422, store faults answered 503 in the error shape, a slow client that cannot hold the
writer, and 16 concurrent clients mixing every operation with counted writes and flat memory."""
from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from nearspace.server.config import ServerConfig, host_allow_list, host_of
from nearspace.store.sqlite.audit import audit
from tests.server.conftest import LIMITS, call, index_examples, start_server

RW, RO = "rw-key-8d1f", "ro-key-27a9"


def error_of(payload):
    assert isinstance(payload, dict) and set(payload) == {"error"}, payload
    return payload["error"]


@pytest.fixture(scope="module")
def two_key_server(tmp_path_factory, encoder, example_docs, example_vectors):
    store = tmp_path_factory.mktemp("two-keys") / "store.db"
    index_examples(store, encoder, example_docs, example_vectors)
    served = start_server(store, *LIMITS, "--read-api-key", RO, api_key=RW)
    yield served
    assert served.stop() == 0, served.log_tail()
    assert "Traceback" not in served.log.read_text(), served.log_tail()


def test_host_allow_list_defaults():
    config = ServerConfig(store=Path("x.db"))
    assert host_allow_list(config) >= {"localhost", "127.0.0.1", "::1"}
    assert "attacker.example" not in host_allow_list(config)
    assert host_allow_list(ServerConfig(store=Path("x.db"), allowed_hosts=("*",))) is None
    assert host_allow_list(ServerConfig(store=Path("x.db"), allowed_hosts=("Search.Example",))) == {"search.example"}
    assert host_allow_list(ServerConfig(store=Path("x.db"), bind_host="0.0.0.0", api_key="k")) is None
    assert host_of("[::1]:8000") == "::1" and host_of("LocalHost:80") == "localhost" and host_of("::1") == "::1"


def test_dns_rebinding_host_is_refused(two_key_server):
    url = two_key_server.url
    port = urlsplit(url).port
    good = {"Authorization": f"Bearer {RW}"}
    for host in ("attacker.example", f"attacker.example:{port}", "127.0.0.1.nip.io", "localhost.attacker.example"):
        for path in ("/health", "/v1/collections"):
            status, payload, _ = call(f"{url}{path}", headers={**good, "Host": host})
            assert status == 421, (host, path, payload)
            assert error_of(payload)["code"] == "host_not_allowed"
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", "localhost"):
        assert call(f"{url}/v1/collections", headers={**good, "Host": host})[0] == 200


def test_read_only_and_read_write_keys(two_key_server):
    url = two_key_server.url
    ro, rw = {"Authorization": f"Bearer {RO}"}, {"Authorization": f"Bearer {RW}"}
    doc = {"documents": [{"id": "hardening-1", "text": "a note about tides"}]}
    status, payload, _ = call(f"{url}/v1/collections/examples/documents", "POST", doc, headers=ro)
    assert status == 403 and error_of(payload)["code"] == "read_only_key"
    assert call(f"{url}/v1/collections/examples/documents/hardening-1", headers=ro)[0] == 404  # nothing written
    assert call(f"{url}/v1/collections/examples/documents", "POST", doc, headers=rw)[0] == 200
    assert call(f"{url}/v1/collections/examples/documents/hardening-1", headers=ro)[0] == 200
    assert call(f"{url}/v1/collections/examples/search", "POST", {"query": "tides"}, headers=ro)[0] == 200
    assert call(f"{url}/v1/collections/examples/ask", "POST", {"question": "tides?"}, headers=ro)[0] == 200
    status, payload, _ = call(f"{url}/v1/collections/examples/documents/hardening-1", "DELETE", headers=ro)
    assert status == 403
    assert call(f"{url}/v1/collections/examples/documents/hardening-1", "DELETE", headers=rw)[0] == 200
    for header in (f"Bearer\t{RW}", f"Bearer\t{RO}", f"Bearer {RW} extra", "Bearer", f"Basic {RW}"):
        status, payload, _ = call(f"{url}/v1/collections", headers={"Authorization": header})
        assert status == 401 and error_of(payload)["message"] == "invalid API key", (header, payload)
    status, payload, _ = call(f"{url}/v1/collections")
    assert status == 401 and error_of(payload)["message"].startswith("missing API key")


def test_deep_and_huge_bodies_are_422(two_key_server):
    url = f"{two_key_server.url}/v1/collections/examples"
    rw = {"Authorization": f"Bearer {RW}"}
    for depth in (500, 100_000):
        body = '{"query": "tides", "where": ' + '{"$and": [' * depth + '{"n": 1}' + ']}' * depth + '}'
        if len(body) > 1_000_000:
            depth, body = 60_000, '{"query": "tides", "where": {"n": ' + "[" * 60_000 + "]" * 60_000 + "}}"
        status, payload, _ = call(f"{url}/search", "POST", raw=body.encode(), headers=rw)
        assert status == 422, (depth, payload)
    raw = b'{"documents": [{"id": "x", "text": "x", "metadata": {"n": ' + b"9" * 5000 + b'}}]}'
    status, payload, _ = call(f"{url}/documents", "POST", raw=raw, headers=rw)
    assert status == 422 and "64 bits" in error_of(payload)["message"]
    status, payload, _ = call(f"{url}/search", "POST", {"query": "tides", "where": {"$in": list(range(100_000))}},
                              headers=rw)
    assert status in (413, 422), payload  # refused clearly: over the body limit or the value limit


def test_a_slow_client_cannot_hold_the_writer(two_key_server):
    """A client that sends headers and half a body, then stalls, holds only its own connection:
    the body is read before a write is queued, so other writers go ahead."""
    parts = urlsplit(two_key_server.url)
    stalled = socket.create_connection((parts.hostname, parts.port), timeout=30)
    try:
        stalled.sendall(b"POST /v1/collections/examples/documents HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                        b"Content-Type: application/json\r\nContent-Length: 1000\r\n"
                        b"Authorization: Bearer " + RW.encode() + b"\r\n\r\n" + b'{"documents": [')
        doc = {"documents": [{"id": "while-stalled", "text": "written while another client stalls"}]}
        # a write blocked behind the stalled body would time out here (a hang guard, not a speed check)
        status, _, _ = call(f"{two_key_server.url}/v1/collections/examples/documents", "POST", doc,
                            headers={"Authorization": f"Bearer {RW}"}, timeout=60)
        assert status == 200
    finally:
        stalled.close()


@pytest.fixture
def tmpfs(tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root and CAP_SYS_ADMIN): {done.stderr.strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_disk_full_at_the_server_is_503_and_reads_go_on(tmpfs, tmp_path):
    served = start_server(tmpfs / "store.db", "--max-batch", "64", log=tmp_path / "server.log")
    try:
        url = f"{served.url}/v1/collections/full"
        seed = {"documents": [{"id": "seed", "text": "tides and the moon"}]}
        assert call(f"{url}/documents", "POST", seed)[0] == 200
        status, payload, n = 200, None, 0
        while status == 200 and n < 200:
            docs = [{"id": f"b{n}-{i}", "text": f"filler {i}", "metadata": {"blob": "x" * 20_000}} for i in range(16)]
            status, payload, _ = call(f"{url}/documents", "POST", {"documents": docs})
            n += 1
        assert status == 503, payload
        error = error_of(payload)
        assert error["code"] == "disk_full" and "free space" in error["message"], error
        status, payload, _ = call(f"{url}/search", "POST", {"query": "tides", "mode": "keyword"})
        assert status == 200 and payload["results"][0]["id"] == "seed"
        subprocess.run(["mount", "-o", "remount,size=64m", str(tmpfs)], check=True)
        assert call(f"{url}/documents", "POST", {"documents": docs})[0] == 200  # the same batch, now it fits
    finally:
        code = served.stop()
    assert code == 0 and "Traceback" not in served.log.read_text(), served.log_tail()
    conn = sqlite3.connect(tmpfs / "store.db")
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()


def test_sixteen_clients_mixing_everything(tmp_path, artifacts):
    from nearspace.server.loadtest import run_load

    seconds = float(os.environ.get("NEARSPACE_LOAD_SECONDS", "30"))
    served = start_server(tmp_path / "store.db", log=tmp_path / "server.log")
    try:
        seed = [{"id": f"seed-{i}", "text": t} for i, t in enumerate(["dropout and weight decay", "bread and yeast",
                                                                       "comets and planets", "rivers and valleys"])]
        assert call(f"{served.url}/v1/collections/load/documents", "POST", {"documents": seed})[0] == 200
        backups: list[dict] = []

        def back_up_mid_run() -> None:  # a consistent copy while 16 clients read and the server writes
            from nearspace.store.sqlite.backup import backup

            time.sleep(seconds / 2)
            backups.append(backup(served.store, tmp_path / "mid-run-backup.db"))

        backer = threading.Thread(target=back_up_mid_run)
        backer.start()
        report = run_load(served.url, "load", clients=16, seconds=seconds, write_share=0.3, read_share=0.1,
                          delete_share=0.1, ask_share=0.1, memory_pid=served.proc.pid, max_requests=50_000)
        backer.join()
        summary = report.summary()
        copy = tmp_path / "mid-run-backup.db"
        with sqlite3.connect(copy) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            copied = {row[0] for row in conn.execute("SELECT doc_id FROM docs WHERE doc_id LIKE 'load-%'")}
            problems = audit(conn)
        assert problems == []  # documents, metadata index and change log from the same committed state
        assert copied <= report.written, "the backup holds a document no client wrote"
        summary["backup_under_load"] = {k: backups[0][k] for k in ("bytes", "seconds", "documents")}
        with sqlite3.connect(served.store) as conn:
            stored = {row[0] for row in conn.execute(
                "SELECT doc_id FROM docs JOIN collections ON collections.id = docs.collection_id "
                "WHERE name = 'load' AND doc_id LIKE 'load-%'")}
        counted = report.check(stored)
        growth = report.memory_growth(warmup=seconds / 3)
        summary.update(counted, memory_growth_after_warmup=growth)
        (artifacts / "load-16-clients.json").write_text(json.dumps(summary, indent=2))
        print(json.dumps(summary, indent=2))
    finally:
        code = served.stop()
    assert code == 0, served.log_tail()
    assert not report.server_errors, report.server_errors[:5]
    assert not report.transport_errors, report.transport_errors[:5]
    assert not report.missing_reads, report.missing_reads[:5]
    assert counted == {"lost": 0, "resurrected": 0}, counted
    assert report.kinds["upsert"] >= 20 and report.kinds["delete"] >= 5 and report.kinds["ask"] >= 5, summary
    assert set(report.statuses) == {200}, summary
    # the collection itself grows during the run (~1,700 documents written at 2 cores) and its
    # indexes with it, once for all reader threads (they share them): 0.04 here, 0.12-0.13 when
    # every thread held its own copy; a leak per request would pass 0.1 within the 30 s
    assert growth is not None and growth < 0.10, (growth, summary["memory_mb"])


def test_openapi_coverage_phase_finds_nothing(two_key_server, artifacts, tmp_path):
    """schemathesis's coverage phase (boundary values and each way to violate the schema), over
    every operation: no 5xx, every status, content type, header and body documented. Bounded: it
    is deterministic (about 800 cases here, ~40 s on two busy cores)."""
    import re
    import sys

    from tests.server.conftest import server_env

    st = Path(sys.executable).with_name("st")
    started = time.monotonic()
    report = artifacts / "schemathesis-coverage.xml"
    proc = subprocess.run(
        [str(st), "run", f"{two_key_server.url}/openapi.json", "-H", f"Authorization: Bearer {RW}",
         "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,"
                     "response_schema_conformance,response_headers_conformance",
         "--phases", "coverage", "--generation-deterministic", "--workers", "1", "--request-timeout", "120",
         "--no-color", "--report", "junit", "--report-junit-path", str(report)],
        capture_output=True, text=True, timeout=400, env=server_env(None), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    generated = re.search(r"(\d+) generated", proc.stdout)
    assert generated and int(generated.group(1)) >= 300, proc.stdout[-3000:]
    print(f"schemathesis coverage phase: {generated.group(0)} in {time.monotonic() - started:.0f}s")
    assert "Traceback" not in two_key_server.log.read_text()
