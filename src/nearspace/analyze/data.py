"""Reading what the analyses need: a collection's vectors and documents, labelled files."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from nearspace.errors import InputError
from nearspace.jsonl import read_jsonl_values


@dataclass
class CollectionView:
    """A snapshot of one collection: ids, texts, titles, metadata and unit vectors, row-aligned."""

    name: str
    ids: list[str]
    texts: list[str]
    titles: list[str]
    metadatas: list[dict[str, Any]]
    vectors: np.ndarray
    seq: int  # change-log sequence the snapshot covers (to tell when a stored result is stale)

    def __len__(self) -> int:
        return len(self.ids)

    def full_texts(self) -> list[str]:
        """Title and text, as the encoder saw them."""
        return [f"{t} {x}" if t else x for t, x in zip(self.titles, self.texts)]

    def field(self, key: str) -> list[Any]:
        """A metadata value per document (None where absent); dotted keys reach nested objects."""
        out = []
        for meta in self.metadatas:
            value: Any = meta
            for part in key.split("."):
                value = value.get(part) if isinstance(value, dict) else None
            out.append(value)
        return out


def load_collection(collection) -> CollectionView:
    """Every document of ``collection`` with its stored vector (nothing is re-encoded)."""
    backend = collection.backend
    # the version first: a write landing before the rows are read makes the view look older
    # than it is (recomputed later), never newer. Straight from the rows rather than the search
    # index, which would build an HNSW graph on large collections.
    from nearspace.store.base import read_all

    seq = backend.version()
    docs, matrix = read_all(backend)
    return CollectionView(collection.name, [d.id for d in docs], [d.text for d in docs],
                          [d.title for d in docs], [d.metadata for d in docs],
                          np.ascontiguousarray(matrix, dtype=np.float32), seq)


def require_size(n: int, minimum: int, what: str) -> None:
    if n < minimum:
        raise InputError(f"{what} needs at least {minimum} documents; the collection has {n}")


def read_labelled(path: str | Path, *, text_field: str = "text", label_field: str = "label") -> tuple[list[str], list[str]]:
    """``(texts, labels)`` from JSON Lines with a text and a label per line.

    Every line must have both; problems are reported with line numbers before anything is
    done with the data. Labels are kept as strings (``3`` and ``"3"`` are the same class).
    """
    path = Path(path)
    texts, labels, unlabelled = [], [], []
    for lineno, record in read_jsonl_values(path):
        text = record.get(text_field)
        if not isinstance(text, str) or not text.strip():
            raise InputError(f"{path}:{lineno}: missing or empty '{text_field}'")
        label = record.get(label_field)
        if label is None or (isinstance(label, str) and not label.strip()) or isinstance(label, (dict, list)):
            unlabelled.append(lineno)
            continue
        texts.append(text)
        labels.append(str(label))
    if unlabelled:
        shown = ", ".join(map(str, unlabelled[:5])) + (", ..." if len(unlabelled) > 5 else "")
        raise InputError(f"{path}: {len(unlabelled)} line(s) have no '{label_field}' (line {shown}); "
                         "every example needs a label")
    if not texts:
        raise InputError(f"{path}: no examples")
    return texts, labels


def check_classes(labels: Sequence[str], *, minimum: int = 2, where: str = "training data") -> Counter:
    """Class counts, refusing a single class or classes with fewer than ``minimum`` examples."""
    counts = Counter(labels)
    if len(counts) < 2:
        only = next(iter(counts), None)
        raise InputError(f"{where} has a single class ({only!r}); a classifier needs at least 2")
    small = sorted((c, n) for c, n in counts.items() if n < minimum)
    if small:
        shown = ", ".join(f"{c!r} ({n})" for c, n in small[:5]) + (", ..." if len(small) > 5 else "")
        raise InputError(f"{where}: {len(small)} class(es) have fewer than {minimum} examples: {shown}")
    return counts
