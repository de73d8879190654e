"""BEIR-format datasets: corpus.jsonl, queries.jsonl, qrels/<split>.tsv."""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from nearspace.errors import InputError
from nearspace.ingest.readers import read_jsonl
from nearspace.jsonl import read_jsonl_values
from nearspace.types import Document

Qrels = dict[str, dict[str, int]]


@dataclass
class BeirDataset:
    name: str
    root: Path
    corpus: list[Document]
    queries: dict[str, str]
    #: unusable corpus rows left out (empty documents, ...): never retrievable, as in BEIR
    skipped: list[str] = field(default_factory=list)

    def qrels(self, split: str = "test") -> Qrels:
        return load_qrels(self.root / "qrels" / f"{split}.tsv")

    def splits(self) -> list[str]:
        return sorted(p.stem for p in (self.root / "qrels").glob("*.tsv"))


def load_beir(root: str | Path, *, strict: bool = False) -> BeirDataset:
    """Load a BEIR folder. Public collections hold a few unusable rows (documents with neither
    title nor text); they are skipped and listed in ``skipped`` (they count as never retrieved,
    as in BEIR's own evaluation) unless ``strict``, which refuses the corpus instead."""
    root = Path(root)
    for needed in ("corpus.jsonl", "queries.jsonl", "qrels"):
        if not (root / needed).exists():
            raise InputError(f"{root} is not a BEIR folder: {needed} is missing")
    queries: dict[str, str] = {}
    for lineno, record in read_jsonl_values(root / "queries.jsonl"):
        if "_id" not in record or not isinstance(record.get("text"), str):
            raise InputError(f"{root / 'queries.jsonl'}:{lineno}: bad query line (needs _id and text)")
        queries[str(record["_id"])] = record["text"]
    skipped: list[str] | None = None if strict else []
    corpus = read_jsonl(root / "corpus.jsonl", skipped)
    return BeirDataset(root.name, root, corpus, queries, skipped or [])


def load_qrels(path: str | Path) -> Qrels:
    """``{query_id: {doc_id: relevance}}`` from a TSV with a header (CRLF tolerated)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"qrels file {path} not found")
    qrels: Qrels = {}
    with path.open(newline="", encoding="utf-8") as handle:
        rows = csv.reader(handle, delimiter="\t")
        for lineno, row in enumerate(rows, start=1):
            row = [cell.strip() for cell in row]
            if not row or (lineno == 1 and not row[-1].lstrip("-").isdigit()):
                continue  # blank line or header
            if len(row) < 3:
                raise InputError(f"{path}:{lineno}: expected query-id, corpus-id, score")
            qid, did, score = row[0], row[1], row[-1]
            qrels.setdefault(qid, {})[did] = int(score)
    return qrels
