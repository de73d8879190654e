"""Consistent backups and restores of a store with SQLite's online backup API.

``backup`` copies the store while readers and a writer keep working: the copy is taken in one
backup step, inside one read transaction, so it holds exactly the batches committed when it
started (WAL mode: the reader never blocks the writer). It is written to a temporary file next
to the destination, checked (``PRAGMA quick_check``), switched to a self-contained rollback
journal, fsynced and renamed into place, so ``DEST`` is either a whole backup or absent.
Derived files (``<store>.ann/``, the saved ANN graphs) are not copied: they are rebuilt from
the stored vectors when the restored store is opened.

``restore`` writes a backup into a store through the same API (so SQLite's locks apply and
other connections see either the old or the new content, never a mix), then drops the
store's derived files. Stop any server on the store first: its in-memory indexes would be
behind the restored file.
"""
from __future__ import annotations

import os
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any

from nearspace.errors import InputError, StoreError, translate


def _connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    from nearspace.store.sqlite.connection import connect

    target = f"file:{path}?mode=ro" if readonly else str(path)
    return connect(target, uri=readonly, isolation_level=None, timeout=60.0, check_same_thread=False)


def _summary(conn: sqlite3.Connection) -> dict[str, Any]:
    from nearspace.store.sqlite.schema import stored_version

    version = stored_version(conn)
    if version == -1 or version == 0:
        raise InputError("the file is not a nearspace store (no store_info table)")
    collections = {name: n for name, n in conn.execute(
        "SELECT c.name, (SELECT count(*) FROM docs d WHERE d.collection_id = c.id) FROM collections c ORDER BY c.name")}
    return {"schema_version": version, "collections": collections, "documents": sum(collections.values())}


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def backup(store: str | Path, dest: str | Path, *, overwrite: bool = False) -> dict[str, Any]:
    """Copy ``store`` to ``dest`` consistently while it is in use; returns what was copied."""
    store, dest = Path(store).expanduser(), Path(dest).expanduser()
    if not store.is_file():
        raise InputError(f"no store at {store}")
    if dest.is_dir():
        dest = dest / store.name
    if dest.resolve() == store.resolve():
        raise InputError("the backup must go to another file than the store itself")
    if dest.exists() and not overwrite:
        raise InputError(f"{dest} exists; pass --force to replace it")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.partial-{os.getpid()}")
    started = time.perf_counter()
    source = _connect(store)
    copy = None
    try:
        summary_before = _summary(source)  # refuses a file that is not a store, before writing anything
        copy = _connect(tmp)
        try:
            # pages=-1: the whole database in one step, i.e. one read transaction -> one consistent state
            source.backup(copy, pages=-1)
        except (sqlite3.Error, OSError) as exc:
            mapped = translate(exc, f"backup {dest}", str(tmp))
            raise mapped from exc
        summary = _summary(copy)
        check = copy.execute("PRAGMA quick_check").fetchone()[0]
        if check != "ok":
            raise StoreError(f"the backup failed its check ({check}); the store was not changed")
        copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
        copy.close()
        copy = None
        _fsync(tmp)
        os.replace(tmp, dest)
        _fsync(dest.parent)
    finally:
        if copy is not None:
            copy.close()
        source.close()
        for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm"), Path(f"{tmp}-journal")):
            leftover.unlink(missing_ok=True)
    return {"store": str(store), "backup": str(dest), "bytes": dest.stat().st_size,
            "seconds": round(time.perf_counter() - started, 3), "store_documents_at_start": summary_before["documents"],
            **summary}


def restore(backup_path: str | Path, store: str | Path, *, overwrite: bool = False) -> dict[str, Any]:
    """Replace ``store``'s content with the backup's (through SQLite, one transaction)."""
    backup_path, store = Path(backup_path).expanduser(), Path(store).expanduser()
    if not backup_path.is_file():
        raise InputError(f"no backup at {backup_path}")
    if store.exists() and backup_path.resolve() == store.resolve():
        raise InputError("the backup and the store are the same file")
    if store.exists() and store.stat().st_size > 0 and not overwrite:
        raise InputError(f"{store} exists; pass --force to replace its content with the backup")
    source = _connect(backup_path, readonly=True)
    try:
        summary = _summary(source)
        from nearspace.store.sqlite.schema import CURRENT_VERSION

        if summary["schema_version"] > CURRENT_VERSION:
            from nearspace.errors import StoreTooNew

            raise StoreTooNew(f"backup {backup_path} was written by a newer nearspace (schema version "
                              f"{summary['schema_version']}; this version reads up to {CURRENT_VERSION})")
        check = source.execute("PRAGMA quick_check").fetchone()[0]
        if check != "ok":
            raise StoreError(f"backup {backup_path} failed its check ({check}); nothing was restored")
        store.parent.mkdir(parents=True, exist_ok=True)
        target = _connect(store)
        try:
            target.execute("PRAGMA journal_mode=WAL")
            try:
                source.backup(target, pages=-1)
            except (sqlite3.Error, OSError) as exc:
                raise translate(exc, f"store {store}", str(store)) from exc
            target.execute("PRAGMA journal_mode=WAL")  # the copied header says DELETE; the store runs in WAL
        finally:
            target.close()
    finally:
        source.close()
    ann = store.with_name(store.name + ".ann")
    if ann.exists():  # derived from the old content: rebuilt from the restored vectors on open
        shutil.rmtree(ann, ignore_errors=True)
    return {"backup": str(backup_path), "store": str(store), **summary}
