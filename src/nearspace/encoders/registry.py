"""Look encoders up by name; dense models are loaded once per process and shared."""
from __future__ import annotations

import functools

from nearspace.encoders.base import Encoder

DEFAULT_ENCODER = "all-MiniLM-L6-v2"
_ALIASES = {
    "all-minilm-l6-v2": DEFAULT_ENCODER,
    "minilm": DEFAULT_ENCODER,
    "sentence-transformers/all-minilm-l6-v2": DEFAULT_ENCODER,
}


def canonical_name(name: str) -> str:
    return _ALIASES.get(name.lower(), name)


@functools.lru_cache(maxsize=8)
def _load_sentence(precision: str, device: str | None):
    from nearspace.encoders.sentence import SentenceEncoder

    return SentenceEncoder(precision=precision, device=device)  # type: ignore[arg-type]


def load_encoder(name: str = DEFAULT_ENCODER, *, precision: str = "auto",
                 device: str | None = None) -> Encoder:
    """Return the encoder called ``name``.

    ``all-MiniLM-L6-v2`` (the default) is cached: its weights are read-only, so sharing
    one loaded copy per (precision, device) is safe. ``onehot`` and ``tfidf`` return a
    fresh, unfitted baseline.
    """
    canonical = canonical_name(name)
    if canonical == DEFAULT_ENCODER:
        return _load_sentence(precision, device)
    if canonical in ("onehot", "bow"):
        from nearspace.encoders.sparse import OneHotEncoder

        return OneHotEncoder()
    if canonical == "tfidf":
        from nearspace.encoders.sparse import TfidfEncoder

        return TfidfEncoder()
    from nearspace.errors import EncoderUnavailable

    raise EncoderUnavailable(f"unknown encoder {name!r}; available: {DEFAULT_ENCODER}, onehot, tfidf")
