"""Token-aware chunking on sentence boundaries.

A chunk is sized with the encoder's own tokens (``count_tokens`` / ``token_spans`` of the
encoder protocol) so that ``title + text`` always fits the
model's window (all-MiniLM-L6-v2 truncates at 256 word pieces including [CLS] and [SEP]):
nothing is ever silently cut off. Sentences are packed greedily; a sentence too long for
one chunk is split at word-piece boundaries; consecutive chunks overlap by whole sentences.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])|\n\s*\n|(?<=:)\n(?=\s*[-*\d])|\n(?=\s*[-*+] )")


@dataclass
class Chunk:
    text: str
    start: int  # character offsets into the section's source text
    end: int
    tokens: int


def split_sentences(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` spans of sentences (and paragraphs/list items) in ``text``."""
    spans, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        if text[start:match.start()].strip():
            spans.append((start, match.start()))
        start = match.end()
    if text[start:].strip():
        spans.append((start, len(text)))
    # trim surrounding whitespace so offsets point at real text
    out = []
    for s, e in spans:
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        out.append((s, e))
    return out


class Chunker:
    """Chunks text for one encoder's tokens and window (``window`` defaults to the encoder's
    ``max_seq_length``, 256 for an encoder that states none)."""

    def __init__(self, encoder: Any, *, max_tokens: int = 200, overlap_tokens: int = 40,
                 window: int | None = None) -> None:
        if max_tokens < 16:
            raise ValueError(f"chunk size must be at least 16 tokens, got {max_tokens}")
        if not 0 <= overlap_tokens < max_tokens:
            raise ValueError(f"overlap must be between 0 and the chunk size, got {overlap_tokens}")
        self.encoder = encoder
        self.max_tokens = max_tokens
        self.overlap_tokens = overlap_tokens
        self.window = window or getattr(encoder, "max_seq_length", None) or 256

    def count(self, texts: list[str]) -> list[int]:
        if not texts:
            return []
        return list(self.encoder.count_tokens(texts))

    def budget(self, title: str) -> int:
        """Tokens left for text once the title and the special tokens are in the window."""
        title_tokens = self.count([title])[0] if title else 0
        return max(8, min(self.max_tokens, self.window - 2 - title_tokens))

    def chunk(self, text: str, title: str = "") -> list[Chunk]:
        budget = self.budget(title)
        spans = self._fit(text, split_sentences(text), budget)
        counts = self.count([text[s:e] for s, e in spans])
        chunks: list[Chunk] = []
        i = 0
        while i < len(spans):
            j, used = i, 0
            while j < len(spans) and used + counts[j] + (1 if j > i else 0) <= budget:
                used += counts[j] + (1 if j > i else 0)
                j += 1
            j = max(j, i + 1)  # _fit guarantees a single span fits
            start, end = spans[i][0], spans[j - 1][1]
            piece = text[start:end]
            chunks.append(Chunk(piece, start, end, self.count([piece])[0]))
            if j >= len(spans):
                break
            # step back over whole sentences for the overlap, but always move forward
            back, carried = j, 0
            while back - 1 > i and carried + counts[back - 1] <= self.overlap_tokens:
                back -= 1
                carried += counts[back]
            i = back
        return chunks

    def _fit(self, text: str, spans: list[tuple[int, int]], budget: int) -> list[tuple[int, int]]:
        """Split any span longer than the budget at word-piece boundaries."""
        counts = self.count([text[s:e] for s, e in spans])
        out = []
        for (s, e), n in zip(spans, counts):
            if n <= budget:
                out.append((s, e))
                continue
            offsets = self.encoder.token_spans(text[s:e])
            step = max(1, budget - 4)  # re-tokenising a slice can add a piece or two at the edges
            for k in range(0, len(offsets), step):
                piece = offsets[k:k + step]
                out.append((s + piece[0][0], s + piece[-1][1]))
        return out
