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
#: a passage is offered as a source only if its cosine to the question is at least this share
#: of the best passage's: far weaker hits are padding, not evidence
SOURCE_FLOOR = 0.6


@dataclass
class Passage:
    text: str
    source: str
    citation: str
    score: float
    ids: list[str] = field(default_factory=list)
    #: where each part of ``text`` comes from: ``{"start", "end", "citation"}`` (character
    #: offsets into ``text``), one part per page of a PDF or per chunk of a text file
    parts: list[dict[str, Any]] = field(default_factory=list)

    def citation_at(self, start: int, end: int) -> str:
        """The citation of ``text[start:end]`` at the grain of its lines or page."""
        for part in self.parts:
            if part["start"] <= start < part["end"]:
                if part.get("line") is not None:
                    first = part["line"] + self.text[part["start"]:start].count("\n")
                    last = first + self.text[start:end].strip().count("\n")
                    return f"{part['source']}:{first}-{last}"
                return part["citation"]
        return self.citation


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
        out = asdict(self)
        for passage in out["passages"]:
            passage["parts"] = [{k: part[k] for k in ("start", "end", "citation")} for part in passage["parts"]]
        return out

    def __repr__(self) -> str:  # the generated one would print every passage in full
        lines = [f"Answer({self.question!r}: {len(self.passages)} passages, {self.tokens} tokens)"]
        lines += [f"  - {s.text} ({s.citation})" for s in self.answer_sentences]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        """Jupyter: answer sentences linked to their numbered passages, citations, highlights."""
        from nearspace.integrations.notebook import answer_html

        return answer_html(self)


def citation_for(metadata: dict[str, Any], doc_id: str, lines: tuple[int, int] | None = None,
                 pages: tuple[int, int] | None = None) -> str:
    source = metadata.get("source")
    if not source:
        return doc_id
    if pages or metadata.get("page") is not None:
        first, last = pages or (metadata["page"], metadata["page"])
        return f"{source}#page={first}" if first == last else f"{source}#page={first}-{last}"
    if metadata.get("row") is not None and metadata.get("line_start") is None:  # a CSV/TSV record
        return f"{source}#row={metadata['row']}"
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
    """One passage from a run of chunks, the overlap between neighbours not repeated; each
    chunk's span in the passage keeps its own page or first line for fine citations."""
    text = run[0].text
    spans = [(0, len(text), run[0], 0)]  # (start in passage, end, chunk, characters of the chunk skipped)
    for prev, nxt in zip(run, run[1:]):
        overlap = prev.metadata.get("end", 0) - nxt.metadata.get("start", 0)
        text += "" if overlap > 0 else "\n"
        skip = max(overlap, 0)
        spans.append((len(text), len(text) + len(nxt.text) - skip, nxt, skip))
        text += nxt.text[skip:]
    shift = len(text) - len(text.lstrip())
    text = text.strip()
    parts: list[dict[str, Any]] = []
    for start, end, chunk, skip in spans:
        meta = chunk.metadata
        source = meta.get("source") or chunk.id
        part = {"start": max(start - shift, 0), "end": max(end - shift, 0), "source": source,
                "citation": citation_for(meta, chunk.id), "line": None}
        # line-grain citations inside a chunk hold for text files, not for text extracted from HTML
        if meta.get("line_start") is not None and meta.get("page") is None and meta.get("kind") != "html":
            part["line"] = meta["line_start"] + chunk.text[:skip].count("\n")
        if parts and parts[-1]["citation"] == part["citation"] and part["line"] is None:
            parts[-1]["end"] = part["end"]  # the same page continues
        else:
            parts.append(part)
    meta = run[0].metadata
    lines = pages = None
    if meta.get("line_start") is not None:
        lines = (min(h.metadata["line_start"] for h in run), max(h.metadata.get("line_end", 0) for h in run))
    if meta.get("page") is not None:
        pages = (min(h.metadata["page"] for h in run), max(h.metadata["page"] for h in run))
    return Passage(text, meta.get("source") or run[0].id, citation_for(meta, run[0].id, lines, pages),
                   max(h.score for h in run), [h.id for h in run], parts)


def _is_heading(sentence: str, headings: set[str]) -> bool:
    """Titles and headings are labels, not evidence: a line matching a heading, or a short
    run of mostly capitalised words (a title glued to a heading by PDF extraction)."""
    flat = " ".join(sentence.split()).strip(" .:-")
    if not flat or flat.lower() in headings:
        return True
    words = [w for w in flat.replace("-", " ").split() if any(c.isalpha() for c in w)]
    if not words:
        return True
    capitalised = sum(w[0].isupper() or not w[0].isalpha() for w in words) / len(words)
    return len(words) <= 12 and capitalised >= 0.7


def ask(collection, question: str, *, k: int = 5, budget: int = 1000, where: dict[str, Any] | None = None,
        answer_sentences: int = 3, candidates: int | None = None, generate: bool = False,
        rerank: Any = None, rerank_k: int | None = None) -> Answer:
    """Retrieve and pack context for ``question``.

    ``k`` passages at most, ``budget`` word pieces in all (counted with the encoder's
    tokenizer). Neighbouring chunks are merged, near-duplicates (cosine >= 0.95) dropped.
    """
    if not isinstance(question, str) or not question.strip():
        raise InputError("the question is empty")
    if k < 1 or budget < 16:
        raise InputError(f"k must be >= 1 and budget >= 16 tokens (got k={k}, budget={budget})")
    # a reranker (optional) reorders the candidates before the passages are packed
    hits = collection.search(question, k=candidates or max(4 * k, 20), mode="hybrid", where=where,
                             rerank=rerank, rerank_k=rerank_k)
    runs = _runs(hits)
    encoder = collection.encoder
    # only the candidates' vectors: gathering the whole collection would cost O(N) per question
    stored = collection.vectors_of([h.id for h in hits])

    def vector(ids: list[str]) -> np.ndarray:
        found = [stored[i] for i in ids if i in stored]
        v = np.mean(found, axis=0) if found else np.zeros(collection.dim, dtype=np.float32)
        return v / (np.linalg.norm(v) or 1.0)

    def tokens_of(passage: Passage) -> int:
        return encoder.count_tokens([passage.text])[0]

    kept: list[Passage] = []
    kept_vectors: list[np.ndarray] = []
    used = 0
    query_vector = collection.embed_queries([question], use_adapter=False)[0]
    floor: float | None = None
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
        relevance = float(v @ query_vector)
        if floor is None:
            floor = SOURCE_FLOOR * max(relevance, 0.0)
        elif relevance < floor:
            continue  # far below the best passage: not evidence for this question
        kept.append(passage)
        kept_vectors.append(v)
        used += tokens
    headings = {h.lower() for hit in hits for h in [hit.title, *(hit.metadata.get("headings") or [])]
                if isinstance(h, str) and h}
    sentences = []
    for passage in kept:
        for start, end in split_sentences(passage.text):
            text = passage.text[start:end]
            if not _is_heading(text, headings):
                sentences.append((text, passage, passage.citation_at(start, end)))
    best: list[AnswerSentence] = []
    if sentences:
        s = encoder.encode_documents([t for t, _, _ in sentences], show_progress=False)
        scores = s @ query_vector  # the question was embedded once, above
        for i in np.argsort(-scores)[:answer_sentences]:
            text, passage, citation = sentences[i]
            best.append(AnswerSentence(text, passage.source, citation, float(scores[i])))
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
