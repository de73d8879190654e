"""Sentence-similarity evaluation: Spearman correlation of cosine with gold scores."""
from __future__ import annotations

import csv
from pathlib import Path

from nearspace.errors import InputError


def load_sts(path: str | Path) -> tuple[list[str], list[str], list[float]]:
    """STS-B csv (tab-separated: genre, file, year, id, score, sentence1, sentence2[, ...])."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    left, right, gold = [], [], []
    with path.open(encoding="utf-8", newline="") as handle:
        for lineno, row in enumerate(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE), start=1):
            if len(row) < 7:
                raise InputError(f"{path}:{lineno}: expected at least 7 tab-separated fields, got {len(row)}")
            try:
                gold.append(float(row[4]))
            except ValueError:
                raise InputError(f"{path}:{lineno}: score {row[4]!r} is not a number") from None
            left.append(row[5])
            right.append(row[6])
    if not gold:
        raise InputError(f"{path}: no sentence pairs")
    return left, right, gold


def evaluate_sts(encoder, path: str | Path) -> dict[str, float]:
    from scipy.stats import pearsonr, spearmanr

    left, right, gold = load_sts(path)
    a = encoder.encode(left, show_progress=False)
    b = encoder.encode(right, show_progress=False)
    cosine = (a * b).sum(axis=1)
    return {"spearman": float(spearmanr(cosine, gold).statistic),
            "pearson": float(pearsonr(cosine, gold).statistic), "pairs": len(gold)}
