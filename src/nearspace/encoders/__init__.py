"""Encoders: turn texts into vectors behind one small protocol.

Owns the ``Encoder`` protocol (v2: documents and queries apart, token counts, a spec stored
with each collection), the factory per kind (``register_encoder``, plugins in the entry-point
group ``nearspace.encoders``), the locked encoder the server shares, the bundled all-MiniLM-L6-v2 sentence encoder (offline,
bf16 fast path where the CPU has native bf16), and the sparse keyword baselines
(one-hot bag-of-words and TF-IDF) used for side-by-side comparisons.
"""
from __future__ import annotations

from nearspace.encoders.base import BaseEncoder, Encoder, as_encoder, normalize_rows
from nearspace.encoders.registry import (DEFAULT_ENCODER, encoder_from_spec, encoder_kinds, load_encoder,
                                         register_encoder)

__all__ = ["Encoder", "BaseEncoder", "as_encoder", "normalize_rows", "load_encoder", "register_encoder",
           "encoder_from_spec", "encoder_kinds", "DEFAULT_ENCODER"]
