"""``auto`` on a CPU with native bf16: ONNX Runtime for queries, torch bf16 for bulk encoding.

On AVX512-BF16 / AMX CPUs torch's bf16 matmuls encode passages ~1.7x faster than either fp32
path (benchmarks/encoder_variants.py: torch bf16 1.72x, ONNX fp32 1.0-1.2x the plain
sentence-transformers fp32 reference on SciFact passages), but importing torch and
sentence-transformers costs seconds, which a one-line query must never pay. So this encoder
serves every call with ONNX Runtime (fp32) and hands a call of at least
:data:`BF16_MIN_TEXTS` texts to torch in bf16, loaded on the first such call. Both give the
same model's vectors: mean cosine 0.99998 (min 0.99997) between them on SciFact passages, so
vectors from either mix in one collection. ``NEARSPACE_BACKEND=onnx`` keeps everything on ONNX
Runtime (bit-for-bit fp32, max abs diff 2e-7 to sentence-transformers).
"""
from __future__ import annotations

import threading
from typing import Any, Sequence

import numpy as np

from nearspace.encoders.base import BaseEncoder

#: calls with this many texts or more go to torch bf16: below it, the ~5 s torch import and
#: model load is not won back by the faster matmuls (ONNX ~8/s vs bf16 ~12/s SciFact passages
#: on 2 shared cores)
BF16_MIN_TEXTS = 256
#: after torch bf16 is loaded, batches from this size on use it too
BF16_STICKY_TEXTS = 32


class AutoCpuEncoder(BaseEncoder):
    """The bundled model on ONNX Runtime, with torch bf16 taking over large batches."""

    kind = "minilm"
    backend = "onnx+torch-bf16"
    device = "cpu"

    def __init__(self, onnx: Any, *, bf16_min_texts: int = BF16_MIN_TEXTS) -> None:
        self.onnx = onnx
        self.name: str = onnx.name
        self.dim: int = onnx.dim
        self.tokenizer = onnx.tokenizer
        self.bf16_min_texts = bf16_min_texts
        self._bulk: Any = None
        self._lock = threading.Lock()

    @property
    def precision(self) -> str:
        return "fp32 (bf16 for batches)"

    @property
    def max_seq_length(self) -> int:
        return self.onnx.max_seq_length

    def bulk(self) -> Any:
        """The torch bf16 encoder (loaded once, on first need)."""
        with self._lock:
            if self._bulk is None:
                from nearspace.encoders.sentence import SentenceEncoder

                self._bulk = SentenceEncoder(precision="bf16", device="cpu")
            return self._bulk

    def encode(self, texts: Sequence[str], *, batch_size: int = 64,
               show_progress: bool | None = None) -> np.ndarray:
        """Unit float32 vectors; ONNX Runtime below ``bf16_min_texts`` texts, torch bf16 from there."""
        n = 0 if isinstance(texts, str) else len(texts)
        # once torch is loaded anyway, medium batches go there too (the import is already paid)
        if n >= self.bf16_min_texts or (self._bulk is not None and n >= BF16_STICKY_TEXTS):
            return self.bulk().encode(texts, batch_size=batch_size, show_progress=show_progress)
        return self.onnx.encode(texts, batch_size=batch_size, show_progress=show_progress)

    def __repr__(self) -> str:
        return (f"AutoCpuEncoder(name={self.name!r}, dim={self.dim}, onnx fp32 below {self.bf16_min_texts} "
                f"texts, torch bf16 from there)")
