"""A cheap, deterministic text encoder for store tests that must not load a model.

Each word is hashed to a fixed random direction; a text is the normalised sum of its words, so
a document's own text is always its nearest neighbour among different texts.
"""
from __future__ import annotations

import hashlib
import re

import numpy as np


class HashingEncoder:
    name = "test-hashing"

    def __init__(self, dim: int = 32) -> None:
        self.dim = dim

    def _word(self, word: str) -> np.ndarray:
        seed = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
        return np.random.default_rng(seed).standard_normal(self.dim)

    def encode(self, texts, show_progress: bool = False, **_: object) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float64)
        for i, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()) or ["<empty>"]:
                out[i] += self._word(word)
        out /= np.linalg.norm(out, axis=1, keepdims=True)
        return out.astype(np.float32)
