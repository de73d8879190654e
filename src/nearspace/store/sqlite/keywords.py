"""Keyword scoring: Lucene-style BM25 over a sparse term matrix derived from SQLite.

SQLite stays the source of truth (the ``docs`` table and its ``changes`` log); this module
owns an in-memory index rebuilt from it and kept in step the way ``store.vectors`` keeps
its matrix: on each search the covered change sequence (and that change's write-transaction
token) is compared with SQLite's, and only the documents added or deleted since are
re-tokenised. After a tokenising pass the postings are saved atomically beside the
vector graph (``<store>.ann/<collection>.bm25.npz``) with the change and token they cover, so
the next process (a CLI search) loads them with numpy alone instead of re-tokenising (and
without importing scipy); a saved copy that SQLite
does not confirm (other collection, restored backup, damage) is rebuilt with a warning.

Why not FTS5's ``bm25()``: its k1 is fixed at 1.2, its IDF clips common terms to ~0, and the
porter tokenizer and our stop list differ from the usual reference. On paragraph-length
queries that cost 0.01-0.08 nDCG@10 against bm25s (LISA 0.462 vs 0.476, see
``benchmarks/bm25_parity.py``). The scoring here is the one bm25s calls ``lucene``:
``idf = ln(1 + (N - df + 0.5) / (df + 0.5))``, ``k1 = 1.5``, ``b = 0.75``, one field
``title + " " + text``, tokens ``\\w\\w+`` lower-cased, Lucene's English stop set, and the
Snowball English stemmer (PyStemmer). Query terms keep their frequency.
"""
from __future__ import annotations

import logging
import os
import re
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Sequence

import numpy as np

from nearspace.store.sqlite.derived import DerivedIndex

if TYPE_CHECKING:
    from nearspace.store.sqlite.database import CollectionData

K1 = 1.5
B = 0.75
#: Lucene's ENGLISH_STOP_WORDS_SET (the list bm25s calls "en")
STOPWORDS = frozenset(
    "a an and are as at be but by for if in into is it no not of on or such that the their "
    "then there these they this to was will with".split())
_TOKEN = re.compile(r"(?u)\b\w\w+\b")
#: tokenising at least this many documents in one refresh saves the postings for the next process
SAVE_AFTER = 1000
#: smaller catch-ups are saved at most this often (seconds) by one process
SAVE_INTERVAL = 5.0
#: 2: term-major postings (1: documents x terms counts, read and converted)
FORMAT = 2

log = logging.getLogger("nearspace")


class Tokenizer:
    """Text -> stemmed terms. Re-use one instance: it remembers each word's stem."""

    def __init__(self) -> None:
        import Stemmer  # PyStemmer: the Snowball stemmers in C

        self._stemmer = Stemmer.Stemmer("english")
        self._stems: dict[str, str] = {}
        self._lock = threading.Lock()  # a PyStemmer object is not thread-safe

    def __call__(self, text: str) -> list[str]:
        stems = self._stems
        words = [w for w in _TOKEN.findall(text.lower()) if w not in STOPWORDS]
        new = [w for w in set(words) if w not in stems]
        if new:
            with self._lock:
                stems.update(zip(new, self._stemmer.stemWords(new)))
        # a dict lookup per word costs a fraction of stemming it again
        return [stems[w] for w in words]


class KeywordIndex(DerivedIndex):
    """BM25 over one collection. ``search`` is safe to call from several threads.

    State: term-major postings (``post_ptr``/``post_doc``/``post_tf``: for each term the
    document positions and raw term frequencies, CSC layout), the positions' ``rows``
    (doc_row, sorted) and ``vocab``. Document lengths, length norms and IDF are derived from
    the postings in one pass; BM25 term weights are computed at query time for the query's
    postings only, so a write never recomputes a weight matrix. Reading postings and scoring
    needs numpy alone: a CLI search that finds a valid saved copy never imports scipy (0.25 s
    of a cold command). Writes splice a documents x terms CSR copy of the counts (scipy),
    materialised only when something changed.
    """

    def __init__(self, data: CollectionData, *, k1: float = K1, b: float = B,
                 path: Path | None = None) -> None:
        super().__init__(data)
        self.k1, self.b = k1, b
        self.tokenize = Tokenizer()
        self.path = path
        self.vocab: dict[str, int] = {}
        self.rows = np.zeros(0, dtype=np.int64)
        self.counts = None  # scipy CSR, documents x terms, raw term frequency (write side, lazy)
        self.post_ptr: np.ndarray | None = None  # (n_terms + 1,) int64
        self.post_doc = np.zeros(0, dtype=np.int32)  # positions into rows
        self.post_tf = np.zeros(0, dtype=np.float32)
        self.norm = np.zeros(0, dtype=np.float64)  # k1 * (1 - b + b * len / avgdl) per document
        self.idf = np.zeros(0, dtype=np.float64)
        self._lock = threading.RLock()
        self._loaded = False
        self._stale_format = False
        self._saved_at = -float("inf")  # monotonic time of the last save in this process
        self._save_cost = 0.0

    # -- keeping up with SQLite ---------------------------------------------------------
    def refresh(self) -> None:
        """Bring the index up to SQLite's last committed change (one read transaction)."""
        with self._lock, self.data.db.snapshot():
            if not self._loaded:
                self._loaded = True
                self._load_saved()
            plan, last, token = self.catch_up_plan(built=self.post_ptr is not None)
            if plan == "current":
                return
            if plan == "rebuild":
                self.vocab = {}
                self.rows, self.counts = self._tokenise(self._read(None))
                tokenised = len(self.rows)
            else:
                touched, added = self.changes()
                keep = ~np.isin(self.rows, touched)
                new_rows, new_counts = self._tokenise(self._read(added)) if added else (None, None)
                self._splice(keep, new_rows, new_counts)
                tokenised = len(added)
            self.covered(last, token)
            self._build()
            if self._should_save(tokenised):
                self._save()

    def _should_save(self, tokenised: int) -> bool:
        """Save after a big pass, and otherwise at most every SAVE_INTERVAL (or 20x the last
        save's cost): a short-lived CLI process always leaves its catch-up for the next one,
        a server taking many small writes does not rewrite the file on each."""
        if tokenised >= SAVE_AFTER or self._stale_format:
            return True
        waited = time.monotonic() - self._saved_at
        return waited >= max(SAVE_INTERVAL, 20 * self._save_cost)

    def _read(self, rows: Sequence[int] | None) -> Iterable[tuple[int, str]]:
        yield from ((r, f"{t} {x}") for r, t, x in self.data.texts(rows))

    def _tokenise(self, docs: Iterable[tuple[int, str]]):
        """(rows, CSR counts) for ``docs``; new terms join ``vocab``."""
        from scipy import sparse

        vocab = self.vocab
        rows, lengths, ids = [], [], []
        for row, text in docs:
            terms = self.tokenize(text)
            rows.append(row)
            lengths.append(len(terms))
            ids.extend([vocab[t] if t in vocab else vocab.setdefault(t, len(vocab)) for t in terms])
        # one COO -> CSR conversion for the whole batch sums repeated (document, term) pairs in C;
        # a np.unique per document made a 100k-document build take minutes
        doc_of = np.repeat(np.arange(len(rows), dtype=np.int64), lengths)
        counts = sparse.csr_matrix((np.ones(len(ids), dtype=np.float32), (doc_of, np.array(ids, dtype=np.int64))),
                                   shape=(len(rows), max(len(vocab), 1)))
        counts.sum_duplicates()
        counts.indices = counts.indices.astype(np.int32, copy=False)
        return np.array(rows, dtype=np.int64), counts

    def _counts(self):
        """The documents x terms CSR counts, rebuilt from the postings when only those are held."""
        from scipy import sparse

        if self.counts is None:
            n_terms = len(self.post_ptr) - 1 if self.post_ptr is not None else 1
            self.counts = sparse.csc_matrix((self.post_tf, self.post_doc, self.post_ptr),
                                            shape=(len(self.rows), max(n_terms, 1))).tocsr()
        return self.counts

    def _splice(self, keep: np.ndarray, new_rows, new_counts) -> None:
        from scipy import sparse

        n_terms = max(len(self.vocab), 1)
        kept = self._counts()[keep]
        kept = sparse.csr_matrix((kept.data, kept.indices, kept.indptr), shape=(kept.shape[0], n_terms))
        rows = self.rows[keep]
        if new_rows is not None and len(new_rows):
            new_counts = sparse.csr_matrix((new_counts.data, new_counts.indices, new_counts.indptr),
                                           shape=(new_counts.shape[0], n_terms))
            kept = sparse.vstack([kept, new_counts], format="csr")
            rows = np.concatenate([rows, new_rows])
        order = np.argsort(rows, kind="stable")
        self.rows, self.counts = rows[order], kept[order]

    def _build(self) -> None:
        """Postings (CSC) from the CSR counts, then the derived norms and IDF."""
        from scipy import sparse

        n_terms = max(len(self.vocab), 1)
        if self.counts is None or len(self.rows) == 0:
            self.post_ptr = np.zeros(n_terms + 1, dtype=np.int64)
            self.post_doc, self.post_tf = np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.float32)
        else:
            c = self.counts
            csc = sparse.csr_matrix((c.data, c.indices, c.indptr), shape=(len(self.rows), n_terms)).tocsc()
            csc.sort_indices()
            self.post_ptr = csc.indptr.astype(np.int64)
            self.post_doc = csc.indices.astype(np.int32)
            self.post_tf = csc.data.astype(np.float32)
        self._derive()

    def _derive(self) -> None:
        n_docs = len(self.rows)
        lengths = np.bincount(self.post_doc, weights=self.post_tf, minlength=n_docs) if n_docs \
            else np.zeros(0)
        avgdl = float(lengths.mean()) if n_docs and lengths.mean() > 0 else 1.0
        self.norm = self.k1 * (1 - self.b + self.b * lengths / avgdl)
        df = np.diff(self.post_ptr).astype(np.float64)
        self.idf = np.log1p((n_docs - df + 0.5) / (df + 0.5))

    # -- the saved copy (derived, verified against SQLite before use) ---------------------------
    def _save(self) -> None:
        """Write the postings next to the store (temp file, fsync, rename): the next process
        then re-tokenises only what changed since. A failure to write is not an error."""
        if self.path is None or self.post_ptr is None:
            return
        terms = sorted(self.vocab, key=self.vocab.__getitem__)
        proof = self.proof()
        meta = np.array([proof["collection_id"], proof["seq"], proof["token"], FORMAT], dtype=np.int64)
        tmp = self.path.with_name(self.path.name + ".tmp")
        started = time.monotonic()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as handle:
                np.savez(handle, meta=meta, vocab=np.array(terms, dtype=np.str_), rows=self.rows,
                         indptr=self.post_ptr, indices=self.post_doc, data=self.post_tf)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
            self._stale_format = False
            self._saved_at = time.monotonic()
            self._save_cost = self._saved_at - started
        except OSError as exc:  # read-only folder, disk full: searching still works, from memory
            log.debug("nearspace: keyword index of %r not saved: %s", self.data.name, exc)
            tmp.unlink(missing_ok=True)

    def _load_saved(self) -> None:
        if self.path is None or not self.path.exists():
            return
        try:
            with np.load(self.path, allow_pickle=False) as saved:
                cid, seq, token, fmt = (int(v) for v in saved["meta"])
                problem = "has an unknown format" if fmt not in (1, FORMAT) else self.vouch(cid, seq, token)
                if problem is None:
                    vocab = {t: i for i, t in enumerate(saved["vocab"].tolist())}
                    rows = saved["rows"].astype(np.int64)
                    ptr, doc, tf = saved["indptr"], saved["indices"], saved["data"]
                    if fmt == 1:  # format 1 saved documents x terms counts: convert once, save anew
                        ptr, doc, tf = _csr_to_postings(ptr, doc, tf, len(rows), max(len(vocab), 1))
                        self._stale_format = True
                    # damage inside the arrays (a valid zip of wrong numbers) is caught here
                    problem = _postings_problem(ptr, doc, tf, len(rows), max(len(vocab), 1))
                    if problem is None:
                        self.vocab, self.rows = vocab, rows
                        self.post_ptr = ptr.astype(np.int64)
                        self.post_doc, self.post_tf = doc.astype(np.int32), tf.astype(np.float32)
                        self.counts = None
                        self._derive()
                        self.covered(seq, token or None)
                        return
        except Exception as exc:  # noqa: BLE001 - any unreadable derived file means: rebuild it
            problem = f"unreadable ({type(exc).__name__})"
        self._stale_format = False
        log.warning("nearspace: rebuilding the keyword index of %r from SQLite: saved copy %s",
                    self.data.name, problem)

    # -- search -----------------------------------------------------------------------------
    def search(self, query: str, limit: int, rows: np.ndarray | None = None) -> list[tuple[int, float]]:
        """``[(doc_row, score)]`` best first; ``rows`` limits the result to those doc_rows."""
        if limit <= 0:
            return []
        self.refresh()
        with self._lock:
            ptr, post_doc, post_tf = self.post_ptr, self.post_doc, self.post_tf
            norm, idf, doc_rows, vocab = self.norm, self.idf, self.rows, self.vocab
        ids = [vocab[t] for t in self.tokenize(query) if t in vocab]
        if not ids or ptr is None or len(doc_rows) == 0:
            return []
        terms, qtf = np.unique(np.array(ids, dtype=np.int64), return_counts=True)
        starts, lens = ptr[terms], ptr[terms + 1] - ptr[terms]
        total = int(lens.sum())
        if total == 0:
            return []
        # the query's postings gathered in one index array (no Python loop over documents)
        at = np.repeat(starts - (np.cumsum(lens) - lens), lens) + np.arange(total)
        docs, tf = post_doc[at], post_tf[at].astype(np.float64)
        weight = np.repeat(idf[terms] * qtf, lens) * tf * (self.k1 + 1) / (tf + norm[docs])
        scores = np.bincount(docs, weights=weight, minlength=len(doc_rows))
        hit = np.flatnonzero(scores > 0)
        if rows is not None:
            hit = hit[np.isin(doc_rows[hit], rows)]
        if len(hit) > limit:
            top = np.argpartition(-scores[hit], limit - 1)[:limit]
            hit = hit[top]
        # ties broken by doc_row so the order is deterministic
        order = np.lexsort((doc_rows[hit], -scores[hit]))
        return [(int(doc_rows[i]), float(scores[i])) for i in hit[order]]


def _csr_to_postings(indptr, indices, data, n_docs: int, n_terms: int):
    from scipy import sparse

    csc = sparse.csr_matrix((data, indices, indptr), shape=(n_docs, n_terms)).tocsc()
    csc.sort_indices()
    return csc.indptr, csc.indices, csc.data


def _postings_problem(ptr: np.ndarray, doc: np.ndarray, tf: np.ndarray, n_docs: int, n_terms: int) -> str | None:
    """Why saved postings cannot be used, or None (shape, order, ranges: O(nnz) in numpy)."""
    if ptr.ndim != 1 or len(ptr) != n_terms + 1 or doc.shape != tf.shape or doc.ndim != 1:
        return "has inconsistent array shapes"
    if ptr[0] != 0 or ptr[-1] != len(doc) or (np.diff(ptr) < 0).any():
        return "has a damaged posting index"
    if len(doc) and (doc.min() < 0 or doc.max() >= n_docs):
        return "points at documents it does not hold"
    if len(tf) and not (np.isfinite(tf).all() and (tf > 0).all()):
        return "holds impossible term frequencies"
    return None
