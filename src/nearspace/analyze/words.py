"""Word embeddings learned from context (word2vec / fastText via gensim), stored as a
collection of words, and their evaluation on word similarity and analogies.

A words collection holds one document per vocabulary word (id = text = the word, metadata
``{"count": n}``) with its vector; its config says ``kind: word-vectors``. Retraining builds
the new collection aside and swaps it in with one transaction, so readers see the old
vocabulary or the new one, never a mix.

Evaluation puts three representations side by side on the same pairs: the trained word
vectors, the sentence encoder reading each word alone, and one-hot codes (every distinct
pair has similarity 0, so they carry no graded similarity at all).
"""
from __future__ import annotations

import math
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from nearspace.errors import InputError

KIND = "word-vectors"
METHODS = ("word2vec", "fasttext")
_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_SENTENCE = re.compile(r"(?<=[.!?;])\s+")


def tokenize(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def sentences(texts: Iterable[str]) -> list[list[str]]:
    """Token lists, one per sentence, so context windows do not run across sentences."""
    out = []
    for text in texts:
        for sentence in _SENTENCE.split(text):
            tokens = tokenize(sentence)
            if tokens:
                out.append(tokens)
    return out


@dataclass
class WordVectors:
    """A vocabulary with unit vectors, most frequent word first."""

    words: list[str]
    vectors: np.ndarray
    counts: list[int]
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        norms = np.linalg.norm(self.vectors, axis=1, keepdims=True)
        self.vectors = np.divide(self.vectors, norms, out=np.zeros_like(self.vectors, dtype=np.float32),
                                 where=norms > 0).astype(np.float32)
        self.index = {w: i for i, w in enumerate(self.words)}

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: str) -> bool:
        return word.lower() in self.index

    def vector(self, word: str) -> np.ndarray | None:
        i = self.index.get(word.lower())
        return None if i is None else self.vectors[i]

    def _require(self, words: Sequence[str]) -> list[int]:
        missing = [w for w in words if w.lower() not in self.index]
        if missing:
            close = self.closest_spelling(missing[0])
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise InputError(f"not in the vocabulary ({len(self)} words): {', '.join(repr(w) for w in missing)}{hint}")
        return [self.index[w.lower()] for w in words]

    def closest_spelling(self, word: str, n: int = 3) -> list[str]:
        import difflib

        return difflib.get_close_matches(word.lower(), self.words[:50_000], n=n, cutoff=0.75)

    def similar(self, word: str, k: int = 10) -> list[tuple[str, float]]:
        (i,) = self._require([word])
        sims = self.vectors @ self.vectors[i]
        sims[i] = -np.inf
        order = np.argsort(-sims)[:k]
        return [(self.words[j], float(sims[j])) for j in order]

    def analogy(self, a: str, b: str, c: str, k: int = 5) -> list[tuple[str, float]]:
        """``a`` is to ``b`` as ? is to ``c``: the words nearest ``a - b + c`` (3CosAdd).

        ``analogy("king", "man", "woman")`` looks for king - man + woman.
        """
        ia, ib, ic = self._require([a, b, c])
        target = self.vectors[ia] - self.vectors[ib] + self.vectors[ic]
        target /= max(float(np.linalg.norm(target)), 1e-12)
        sims = self.vectors @ target
        sims[[ia, ib, ic]] = -np.inf
        order = np.argsort(-sims)[:k]
        return [(self.words[j], float(sims[j])) for j in order]


# -- training --------------------------------------------------------------------------------------
def train(texts: Iterable[str], *, method: str = "word2vec", dim: int = 100, window: int = 5, min_count: int = 3,
          epochs: int = 10, seed: int = 0, workers: int | None = None) -> WordVectors:
    """Skip-gram with negative sampling (word2vec) or its subword variant (fastText).

    Skip-gram is the better choice on small corpora (it learns rare words better than
    CBOW). Raises before anything is stored when the corpus is too small to learn from.
    """
    if method not in METHODS:
        raise InputError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
    if dim < 2 or window < 1 or min_count < 1 or epochs < 1:
        raise InputError("dim >= 2, window >= 1, min_count >= 1 and epochs >= 1 are required")
    corpus = sentences(texts)
    tokens = sum(len(s) for s in corpus)
    if tokens == 0:
        raise InputError("the corpus has no words to learn from")
    from collections import Counter

    frequent = sum(1 for _, c in Counter(t for s in corpus for t in s).items() if c >= min_count)
    if frequent < 10:
        raise InputError(f"only {frequent} distinct word(s) occur at least {min_count} times in a corpus of "
                         f"{tokens} tokens; word vectors need more text (or a lower --min-count)")
    from gensim.models import FastText, Word2Vec

    started = time.perf_counter()
    cls = Word2Vec if method == "word2vec" else FastText
    # a fixed seed and one worker make training reproducible; more workers are faster but not
    model = cls(sentences=corpus, vector_size=dim, window=window, min_count=min_count, sg=1, negative=10,
                epochs=epochs, seed=seed, workers=workers or 1, **({"bucket": 200_000} if method == "fasttext" else {}))
    words = list(model.wv.index_to_key)
    counts = [int(model.wv.get_vecattr(w, "count")) for w in words]
    meta = {"method": method, "dim": dim, "window": window, "min_count": min_count, "epochs": epochs, "seed": seed,
            "tokens": tokens, "sentences": len(corpus), "vocabulary": len(words),
            "train_s": round(time.perf_counter() - started, 2)}
    return WordVectors(words, np.asarray(model.wv.vectors[: len(words)], dtype=np.float32), counts, meta)


# -- storage ---------------------------------------------------------------------------------------
def is_words_collection(data) -> bool:
    return data.config().get("kind") == KIND


def save_words(store, name: str, wv: WordVectors, *, source: str = "") -> None:
    """Store ``wv`` as collection ``name``, replacing an earlier words collection atomically.

    Refuses to overwrite a collection of ordinary documents.
    """
    from nearspace.types import Document

    db = store.backend
    old = db.open_collection(name) if name in db.collection_names() else None
    if old is not None and not is_words_collection(old):
        raise InputError(f"collection {name!r} holds documents, not word vectors; pick another name with --into")
    tmp_name = f"{name[:40]}.tmp-{os.getpid()}-{int(time.time() * 1000) % 100000}"
    tmp = db.create_collection(tmp_name, wv.meta.get("method", "word2vec"), wv.vectors.shape[1])
    try:
        docs = [Document(w, w, {"count": c}) for w, c in zip(wv.words, wv.counts)]
        tmp.write(docs, wv.vectors, replace=False)
        tmp.set_config(kind=KIND, source=source, **wv.meta)
        # one transaction; the replaced collection's derived files (vectors, graph, postings) go too
        db.rename_collection(tmp_name, name, replace=old is not None)
    except BaseException:
        if tmp_name in db.collection_names():
            db.drop_collection(tmp_name)
        raise


def load_words(store, name: str) -> WordVectors:
    if name not in store.list_collections():
        raise InputError(f"no words collection {name!r}; train one with `nearspace words train`")
    data = store.backend.open_collection(name)
    if not is_words_collection(data):
        raise InputError(f"collection {name!r} holds documents, not word vectors (train some with "
                         "`nearspace words train`)")
    config = data.config()
    from nearspace.store.base import read_all

    docs, matrix = read_all(data)
    words = [d.id for d in docs]
    counts = [int(d.metadata.get("count", 0)) for d in docs]
    order = np.argsort(-np.asarray(counts), kind="stable")  # most frequent first, as trained
    meta = {k: v for k, v in config.items() if k != "kind"}
    return WordVectors([words[i] for i in order], matrix[order], [counts[i] for i in order], meta)


def words_collection_for(store, name: str) -> str:
    """``name`` itself when it holds word vectors, else ``<name>.words``."""
    if name in store.list_collections() and is_words_collection(store.backend.open_collection(name)):
        return name
    return f"{name}.words"


# -- evaluation data -------------------------------------------------------------------------------
def read_pairs(path: str | Path) -> list[tuple[str, str, float]]:
    """``word1<TAB>word2<TAB>score`` lines; ``#`` lines are comments."""
    pairs = []
    for lineno, line in enumerate(_read(path).splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t") if "\t" in line else line.split()
        try:
            pairs.append((parts[0].strip(), parts[1].strip(), float(parts[2])))
        except (IndexError, ValueError):
            raise InputError(f"{path}:{lineno}: expected word1, word2 and a score") from None
    if not pairs:
        raise InputError(f"{path}: no word pairs")
    return pairs


def read_analogies(path: str | Path) -> list[tuple[str, str, str, str, str]]:
    """``(section, a, b, c, d)`` from the Google format: ``: section`` headers, then ``a b c d``."""
    out, section = [], ""
    for lineno, line in enumerate(_read(path).splitlines(), start=1):
        if not line.strip():
            continue
        if line.startswith(":"):
            section = line[1:].strip()
            continue
        parts = line.split()
        if len(parts) != 4:
            raise InputError(f"{path}:{lineno}: expected four words")
        out.append((section, *parts))
    if not out:
        raise InputError(f"{path}: no analogy questions")
    return out


def _read(path: str | Path) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None


# -- evaluation ------------------------------------------------------------------------------------
def _spearman(gold: Sequence[float], predicted: Sequence[float]) -> float | None:
    from scipy.stats import spearmanr

    if len(gold) < 3 or len(set(predicted)) < 2:
        return None  # undefined: a constant prediction has no ranking
    return float(spearmanr(gold, predicted).statistic)


def similarity_scores(pairs: Sequence[tuple[str, str, float]], lookup: Callable[[str], np.ndarray | None]) -> list[float | None]:
    """Cosine per pair, None where a word has no vector."""
    out = []
    for a, b, _ in pairs:
        va, vb = lookup(a), lookup(b)
        out.append(None if va is None or vb is None else float(va @ vb))
    return out


def evaluate_similarity(pairs: Sequence[tuple[str, str, float]], wv: WordVectors | None = None,
                        encoder=None) -> dict[str, Any]:
    """Spearman correlation with human judgements for each representation, on the same pairs.

    ``covered`` = pairs whose two words the word vectors know; every representation is
    scored on that subset, and the ones that cover every pair also on all of them.
    """
    n = len(pairs)
    gold = [s for _, _, s in pairs]
    covered = list(range(n))
    rows: dict[str, dict[str, Any]] = {}
    if wv is not None:
        sims = similarity_scores(pairs, wv.vector)
        covered = [i for i, s in enumerate(sims) if s is not None]
        rows["word vectors"] = {"spearman_covered": _spearman([gold[i] for i in covered], [sims[i] for i in covered])}
    onehot = [1.0 if a.lower() == b.lower() else 0.0 for a, b, _ in pairs]
    rows["one-hot"] = {"spearman_covered": _spearman([gold[i] for i in covered], [onehot[i] for i in covered]),
                       "spearman_all": _spearman(gold, onehot), "distinct_pair_similarity": 0.0}
    if encoder is not None:
        vocab = sorted({w for a, b, _ in pairs for w in (a, b)})
        table = dict(zip(vocab, encoder.encode(vocab, show_progress=False)))
        sims = similarity_scores(pairs, table.get)
        rows["sentence encoder"] = {"spearman_covered": _spearman([gold[i] for i in covered], [sims[i] for i in covered]),
                                    "spearman_all": _spearman(gold, sims)}
    return {"pairs": n, "covered": len(covered), "coverage": len(covered) / n if n else 0.0, "results": rows}


def analogy_accuracy(questions: Sequence[tuple[str, str, str, str, str]], words: Sequence[str], vectors: np.ndarray,
                     *, candidates: Sequence[str] | None = None, batch: int = 512) -> dict[str, Any]:
    """3CosAdd accuracy: for ``a b c d`` the answer is the word nearest ``b - a + c`` (inputs excluded).

    Only questions whose four words have vectors are asked; ``candidates`` restricts the
    answers to a closed set (default: every word with a vector).
    """
    index = {w.lower(): i for i, w in enumerate(words)}
    cand = list(range(len(words))) if candidates is None else sorted({index[c.lower()] for c in candidates
                                                                      if c.lower() in index})
    cand_pos = {c: j for j, c in enumerate(cand)}
    asked = [(s, *(index[w.lower()] for w in q)) for s, *q in questions
             if all(w.lower() in index for w in q) and index[q[3].lower()] in cand_pos]
    cv = vectors[cand]
    correct_by: dict[str, list[int]] = {}
    for start in range(0, len(asked), batch):
        chunk = asked[start:start + batch]
        ia, ib, ic, idd = (np.array([q[k] for q in chunk]) for k in (1, 2, 3, 4))
        target = vectors[ib] - vectors[ia] + vectors[ic]
        target /= np.maximum(np.linalg.norm(target, axis=1, keepdims=True), 1e-12)
        sims = target @ cv.T
        for col, ids in enumerate((ia, ib, ic)):
            for r, i in enumerate(ids):
                j = cand_pos.get(int(i))
                if j is not None:
                    sims[r, j] = -np.inf
        best = sims.argmax(axis=1)
        # a row where every candidate ties (one-hot codes) has no answer: count it wrong
        tied = np.isclose(sims.max(axis=1), np.sort(sims, axis=1)[:, -2]) if sims.shape[1] > 1 else np.zeros(len(sims), bool)
        for (section, *_), b, d, t in zip(chunk, best, idd, tied):
            correct_by.setdefault(section, []).append(int(cand[int(b)] == int(d) and not t))
    semantic = {"capital-common-countries", "capital-world", "currency", "city-in-state", "family"}
    flat = [x for v in correct_by.values() for x in v]
    sem = [x for s, v in correct_by.items() if s in semantic for x in v]
    syn = [x for s, v in correct_by.items() if s not in semantic for x in v]
    return {"questions": len(questions), "covered": len(asked), "coverage": len(asked) / max(len(questions), 1),
            "accuracy": float(np.mean(flat)) if flat else None,
            "semantic": float(np.mean(sem)) if sem else None, "syntactic": float(np.mean(syn)) if syn else None,
            "candidates": len(cand)}


def evaluate_analogies(questions: Sequence[tuple[str, str, str, str, str]], wv: WordVectors | None = None,
                       encoder=None) -> dict[str, Any]:
    """Analogy accuracy per representation.

    The sentence encoder has no vocabulary of its own, so its answers are chosen among the
    words of the analogy set; the word vectors are scored both that way (``closed``) and
    over their whole vocabulary (``open``, the usual protocol), on the questions they cover.
    """
    set_words = sorted({w.lower() for q in questions for w in q[1:]})
    out: dict[str, Any] = {}
    covered_questions = questions
    if wv is not None:
        out["word vectors (open vocabulary)"] = analogy_accuracy(questions, wv.words, wv.vectors)
        out["word vectors (closed: analogy-set words)"] = analogy_accuracy(questions, wv.words, wv.vectors,
                                                                           candidates=set_words)
        covered_questions = [q for q in questions if all(w.lower() in wv.index for w in q[1:])]
    eye = np.eye(len(set_words), dtype=np.float32)
    out["one-hot"] = analogy_accuracy(covered_questions, set_words, eye)
    if encoder is not None:
        vectors = encoder.encode(set_words, show_progress=False)
        out["sentence encoder (closed, covered questions)"] = analogy_accuracy(covered_questions, set_words, vectors)
        out["sentence encoder (closed, all questions)"] = analogy_accuracy(questions, set_words, vectors)
    return out


def evaluate_words(data_dir: str | Path, wv: WordVectors | None = None, encoder=None) -> dict[str, Any]:
    """WordSim-353, SimLex-999 and the Google analogies from ``data_dir`` (the file names as shipped)."""
    data_dir = Path(data_dir)
    files = {"wordsim353": data_dir / "wordsim353.tsv", "simlex999": data_dir / "simlex999.txt",
             "analogies": data_dir / "questions-words.txt"}
    missing = [str(p) for p in files.values() if not p.exists()]
    if missing:
        raise InputError(f"evaluation files not found: {', '.join(missing)}")
    report: dict[str, Any] = {}
    if wv is not None:
        report["word_vectors"] = {"vocabulary": len(wv), **{k: wv.meta[k] for k in ("method", "dim", "tokens", "source")
                                                            if k in wv.meta}}
    report["wordsim353"] = evaluate_similarity(read_pairs(files["wordsim353"]), wv, encoder)
    report["simlex999"] = evaluate_similarity(read_pairs(files["simlex999"]), wv, encoder)
    report["analogies"] = evaluate_analogies(read_analogies(files["analogies"]), wv, encoder)
    return report


def fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"
