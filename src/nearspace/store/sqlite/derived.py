"""What every derived index of a SQLite collection shares: the covered change, the change
feed, the proof a saved file must give, and the file names.

A derived index (the vector file and ANN backend in ``vectors.py``, the BM25 postings in
``keywords.py``) is never the only copy of anything: it covers the collection's change log up
to ``covered_seq``, whose write-transaction token it remembers (``covered_token``). Before each
use it asks :meth:`DerivedIndex.catch_up_plan` whether it is current, can apply the changes
since (same history: that change still holds that token, and the log still reaches back to
it), or must rebuild (a restored backup or commits lost to power failure reuse sequence
numbers, never tokens; pruned history). A saved copy is trusted only when :meth:`vouch`
finds SQLite holding the change and token its header names, for the same collection.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import numpy as np

from nearspace.store.sqlite.database import CollectionData

#: the vector files live in their own folder: ``<name>.vectors.json`` would be the header of a
#: collection named ``<name>.vectors``
VECTOR_DIR = "vectors"
#: the file names a collection's derived files may have after ``<name>.`` (backends' parts)
_PARTS = r"json|hnsw|rows\.npy|vectors\.npy|codes\.npy|scales\.npy|floats\.npy|centre\.npy|flat\.[a-z.]+"


def derived_files(ann_dir: Path, name: str) -> list[Path]:
    """Every derived file of collection ``name`` that exists: vector file, ANN backend, BM25
    postings and the save lock (for drop, rename and size reports)."""
    pattern = re.compile(rf"^{re.escape(name)}\.({_PARTS}|bm25\.npz|lock)$")
    return [path for folder in (ann_dir, ann_dir / VECTOR_DIR) if folder.is_dir()
            for path in folder.iterdir() if pattern.match(path.name)]


def remove_stale_temporaries(ann_path: Path) -> None:
    """Temporaries of a saver killed mid-save (called under the exclusive lock, so none is live)."""
    stem = re.escape(ann_path.stem)
    pattern = re.compile(rf"^{stem}\.({_PARTS})(\.\d+)*\.tmp$")
    for folder in (ann_path.parent, ann_path.parent / VECTOR_DIR):
        if folder.is_dir():
            for path in folder.iterdir():
                if pattern.match(path.name):
                    path.unlink(missing_ok=True)


def keyword_path(ann_dir: Path, name: str) -> Path:
    """``<store>.ann/<name>.bm25.npz``: the saved BM25 postings."""
    return ann_dir / f"{name}.bm25.npz"


class DerivedIndex:
    """The catch-up bookkeeping of one derived index over ``data`` (subclasses own the structure)."""

    def __init__(self, data: CollectionData) -> None:
        self.data = data
        self.covered_seq = -1
        self.covered_token: int | None = None  # token of change covered_seq (None: no change yet)

    def history(self) -> tuple[int, int | None]:
        """``(seq, token)`` of SQLite's last change of the collection (``(0, None)`` when none)."""
        return self.data.last_change()

    def catch_up_plan(self, built: bool) -> tuple[Literal["current", "apply", "rebuild"], int, int | None]:
        """What a refresh must do (call inside ``db.snapshot()``), with SQLite's last change.

        ``built``: whether the in-memory structure exists at all."""
        last, token = self.history()
        if built and last == self.covered_seq and token == self.covered_token:
            return "current", last, token
        same_history = (built and self.covered_seq >= 0 and last >= self.covered_seq
                        and self._token_of(self.covered_seq) == self.covered_token
                        and self.data.first_seq() <= self.covered_seq + 1)
        return ("apply" if same_history else "rebuild"), last, token

    def changes(self, since: int | None = None) -> tuple[np.ndarray, list[int]]:
        """``(touched, live)`` since ``since`` (default ``covered_seq``): every row a change
        touched, and those of them added and still live. Apply as: drop ``touched``, add
        ``live`` (doc_rows are AUTOINCREMENT, never reused, so a row is added at most once)."""
        changes = self.data.changes_since(self.covered_seq if since is None else since)
        final: dict[int, str] = {}
        for _, doc, op in changes:  # the last operation on a row decides whether it is live
            final[doc] = op
        touched = np.array(sorted(final), dtype=np.int64)
        return touched, sorted(doc for doc, op in final.items() if op == "add")

    def covered(self, seq: int, token: int | None) -> None:
        self.covered_seq, self.covered_token = seq, token

    def proof(self) -> dict[str, int]:
        """What a saved copy's header records, for :meth:`vouch` to check on load."""
        token = self.data.change_token(self.covered_seq) if self.covered_seq > 0 else 0
        return {"collection_id": self.data.cid, "seq": self.covered_seq, "token": token or 0}

    def vouch(self, cid: int, seq: int, token: int | None) -> str | None:
        """Why a saved copy claiming to cover change ``seq`` (``token``) of collection ``cid``
        cannot be trusted, or None when SQLite vouches for it."""
        if cid != self.data.cid:
            return "belongs to another collection"
        last, _ = self.history()
        if seq > last:
            return f"claims change {seq}, but SQLite holds changes only up to {last}"
        if self._token_of(seq) != (token or None):
            return f"covers a history SQLite does not hold (change {seq} differs: restored or lost commits)"
        if self.data.first_seq() > seq + 1:
            return f"covers change {seq}, but SQLite's change log starts later (pruned)"
        return None

    def _token_of(self, seq: int) -> int | None:
        return self.data.change_token(seq) if seq > 0 else None
