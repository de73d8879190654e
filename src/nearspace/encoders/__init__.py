"""Encoders: turn texts into vectors behind one small protocol.

Owns the ``Encoder`` protocol, the bundled all-MiniLM-L6-v2 sentence encoder (offline,
bf16 fast path where the CPU has native bf16), and the sparse keyword baselines
(one-hot bag-of-words and TF-IDF) used for side-by-side comparisons.
"""
from __future__ import annotations

from nearspace.encoders.base import Encoder, normalize_rows
from nearspace.encoders.registry import DEFAULT_ENCODER, load_encoder

__all__ = ["Encoder", "normalize_rows", "load_encoder", "DEFAULT_ENCODER"]
