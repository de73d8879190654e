"""``ask``: passages with citations and an extractive answer for a question."""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from nearspace.errors import InputError, NearspaceError
from nearspace.ingest.chunking import split_sentences

DUPLICATE_COSINE = 0.95


@dataclass
class Passage:
    text: str
    source: str
    citation: str
    score: float
    ids: list[str] = field(default_factory=list)


@dataclass
class AnswerSentence:
    text: str
    source: str
    citation: str
    score: float


@dataclass
class Answer:
    question: str
    passages: list[Passage]
    answer_sentences: list[AnswerSentence]
    tokens: int
    generated: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def citation_for(metadata: dict[str, Any], doc_id: str, lines: tuple[int, int] | None = None,
                 pages: tuple[int, int] | None = None) -> str:
    source = metadata.get("source")
    if not source:
        return doc_id
    if pages or metadata.get("page") is not None:
        first, last = pages or (metadata["page"], metadata["page"])
        return f"{source}#page={first}" if first == last else f"{source}#page={first}-{last}"
    if lines or metadata.get("line_start") is not None:
        first, last = lines or (metadata["line_start"], metadata.get("line_end", metadata["line_start"]))
        return f"{source}:{first}-{last}"
    return source


def _runs(hits) -> list[list]:
    """Group hits into runs: consecutive chunks of one source form one run, best run first."""
    groups: dict[str, list] = {}
    runs = []
    for hit in hits:
        meta = hit.metadata
        if meta.get("source") is not None and isinstance(meta.get("chunk"), int):
            groups.setdefault(meta["source"], []).append(hit)
        else:
            runs.append([hit])
    for chunks in groups.values():
        chunks.sort(key=lambda h: h.metadata["chunk"])
        run = [chunks[0]]
        for hit in chunks[1:]:
            if hit.metadata["chunk"] == run[-1].metadata["chunk"] + 1:
                run.append(hit)
            else:
                runs.append(run)
                run = [hit]
        runs.append(run)
    runs.sort(key=lambda r: -max(h.score for h in r))
    return runs


def _passage(run) -> Passage:
    """One passage from a run of chunks, the overlap between neighbours not repeated."""
    text = run[0].text
    for prev, nxt in zip(run, run[1:]):
        overlap = prev.metadata.get("end", 0) - nxt.metadata.get("start", 0)
        text += ("" if overlap > 0 else "\n") + nxt.text[max(overlap, 0):]
    meta = run[0].metadata
    lines = pages = None
    if meta.get("line_start") is not None:
        lines = (min(h.metadata["line_start"] for h in run), max(h.metadata.get("line_end", 0) for h in run))
    if meta.get("page") is not None:
        pages = (min(h.metadata["page"] for h in run), max(h.metadata["page"] for h in run))
    return Passage(text.strip(), meta.get("source") or run[0].id, citation_for(meta, run[0].id, lines, pages),
                   max(h.score for h in run), [h.id for h in run])


def ask(collection, question: str, *, k: int = 5, budget: int = 1000, where: dict[str, Any] | None = None,
        answer_sentences: int = 3, candidates: int | None = None, generate: bool = False) -> Answer:
    """Retrieve and pack context for ``question``.

    ``k`` passages at most, ``budget`` word pieces in all (counted with the encoder's
    tokenizer). Neighbouring chunks are merged, near-duplicates (cosine >= 0.95) dropped.
    """
    if not isinstance(question, str) or not question.strip():
        raise InputError("the question is empty")
    if k < 1 or budget < 16:
        raise InputError(f"k must be >= 1 and budget >= 16 tokens (got k={k}, budget={budget})")
    hits = collection.search(question, k=candidates or max(4 * k, 20), mode="hybrid", where=where)
    runs = _runs(hits)
    encoder = collection.encoder
    index = collection.index
    index.refresh()
    # only the candidates' rows: mapping the whole collection would cost O(N) per question
    row_of = collection.data.rows_for_ids([h.id for h in hits])

    def vector(ids: list[str]) -> np.ndarray:
        positions = np.searchsorted(index.rows, [row_of[i] for i in ids if i in row_of])
        v = index.matrix[positions].mean(axis=0) if len(positions) else np.zeros(index.matrix.shape[1])
        return v / (np.linalg.norm(v) or 1.0)

    def tokens_of(passage: Passage) -> int:
        return len(encoder.tokenizer(passage.text, add_special_tokens=False)["input_ids"])

    kept: list[Passage] = []
    kept_vectors: list[np.ndarray] = []
    used = 0
    for run in runs:
        if len(kept) >= k:
            break
        passage = _passage(run)
        tokens = tokens_of(passage)
        while used + tokens > budget and len(run) > 1:
            # too long for what is left: drop the weaker end chunk, keeping the run contiguous
            run = run[1:] if run[0].score <= run[-1].score else run[:-1]
            passage = _passage(run)
            tokens = tokens_of(passage)
        if used + tokens > budget:
            continue
        v = vector(passage.ids)
        if any(float(v @ other) >= DUPLICATE_COSINE for other in kept_vectors):
            continue
        kept.append(passage)
        kept_vectors.append(v)
        used += tokens
    sentences = []
    for passage in kept:
        for start, end in split_sentences(passage.text):
            sentences.append((passage.text[start:end], passage))
    best: list[AnswerSentence] = []
    if sentences:
        q = encoder.encode([question], show_progress=False)[0]
        s = encoder.encode([t for t, _ in sentences], show_progress=False)
        scores = s @ q
        for i in np.argsort(-scores)[:answer_sentences]:
            text, passage = sentences[i]
            best.append(AnswerSentence(text, passage.source, passage.citation, float(scores[i])))
    answer = Answer(question, kept, best, used)
    if generate:
        answer.generated = generate_answer(question, kept)
    return answer


def generate_answer(question: str, passages: list[Passage], *, url: str | None = None,
                    model: str | None = None, timeout: float = 120.0) -> str:
    """Ask an OpenAI-compatible chat endpoint to answer from the numbered passages only."""
    import urllib.error
    import urllib.request

    url = url or os.environ.get("NEARSPACE_LLM_URL")
    if not url:
        raise NearspaceError("generation needs NEARSPACE_LLM_URL (an OpenAI-compatible chat endpoint)")
    if not url.rstrip("/").endswith("/chat/completions"):
        url = url.rstrip("/") + "/chat/completions"
    context = "\n\n".join(f"[{i}] ({p.citation})\n{p.text}" for i, p in enumerate(passages, start=1))
    body = {"model": model or os.environ.get("NEARSPACE_LLM_MODEL", "default"), "temperature": 0,
            "messages": [
                {"role": "system", "content": "Answer the question using only the numbered passages. "
                                              "Cite passages as [n]. If they do not contain the answer, say so."},
                {"role": "user", "content": f"Passages:\n{context}\n\nQuestion: {question}"}]}
    headers = {"Content-Type": "application/json"}
    if os.environ.get("NEARSPACE_LLM_API_KEY"):
        headers["Authorization"] = f"Bearer {os.environ['NEARSPACE_LLM_API_KEY']}"
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            payload = json.loads(response.read())
        return payload["choices"][0]["message"]["content"]
    except (urllib.error.URLError, OSError, KeyError, IndexError, ValueError) as exc:
        raise NearspaceError(f"generation failed at {url}: {exc}") from None
