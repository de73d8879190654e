"""Look encoders up by name; dense models are loaded once per process and shared."""
from __future__ import annotations

import functools

from nearspace.encoders.base import Encoder

DEFAULT_ENCODER = "all-MiniLM-L6-v2"
#: the same model on an int8-quantised ONNX graph (``precision="int8"``): a name of its own,
#: because its vectors differ from fp32 ones (mean cosine 0.996)
INT8_ENCODER = DEFAULT_ENCODER + "-int8"
_ALIASES = {
    "all-minilm-l6-v2": DEFAULT_ENCODER,
    "minilm": DEFAULT_ENCODER,
    "sentence-transformers/all-minilm-l6-v2": DEFAULT_ENCODER,
}


def canonical_name(name: str) -> str:
    return _ALIASES.get(name.lower(), name)


BACKENDS = ("auto", "onnx", "torch")


def _cuda_visible() -> bool:
    """A cheap check for an NVIDIA GPU that does not import torch."""
    import os

    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    return os.path.exists("/proc/driver/nvidia/version") or os.path.exists("/dev/nvidia0")


def choose_backend(precision: str = "auto", device: str | None = None, backend: str | None = None) -> str:
    """Which implementation serves the bundled model, decided without loading anything.

    ``NEARSPACE_BACKEND`` (or ``backend``) forces ``onnx`` or ``torch``. Otherwise: torch on
    CUDA and for explicit ``precision="bf16"``; ONNX Runtime on every CPU, where it measured
    faster than torch fp32 and, for one query, far faster to start (no torch import). The
    choice is shown by ``nearspace info``.
    """
    import os

    backend = backend or os.environ.get("NEARSPACE_BACKEND") or "auto"
    if backend not in BACKENDS:
        from nearspace.errors import InputError

        raise InputError(f"encoder backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if precision == "int8":
        if backend == "torch":
            from nearspace.errors import InputError

            raise InputError("precision 'int8' runs on ONNX Runtime; it cannot be combined with NEARSPACE_BACKEND=torch")
        return "onnx"
    if backend != "auto":
        return backend
    if (device or "").startswith("cuda") or (device is None and _cuda_visible()) or precision == "bf16":
        return "torch"
    try:
        import importlib.util

        if importlib.util.find_spec("onnxruntime") is None:
            return "torch"
    except (ImportError, ValueError):
        return "torch"
    return "onnx"


def bf16_for_batches(precision: str = "auto", device: str | None = None, backend: str | None = None) -> bool:
    """Whether ``auto`` hands large batches to torch bf16 (queries stay on ONNX Runtime).

    Only when nothing is forced (no ``backend``/``NEARSPACE_BACKEND``, precision ``auto``), the
    device is the CPU and the CPU multiplies bf16 natively (AVX512-BF16 / AMX), where torch bf16
    measured ~1.7x faster than ONNX fp32 for batches (benchmarks/encoder_variants.py).
    """
    import os

    from nearspace.encoders.cpu import has_native_bf16

    forced = backend or os.environ.get("NEARSPACE_BACKEND") or "auto"
    return (forced == "auto" and precision == "auto" and device in (None, "cpu")
            and choose_backend(precision, device, backend) == "onnx" and has_native_bf16())


def describe_choice(precision: str = "auto", device: str | None = None, backend: str | None = None) -> str:
    """One line saying which implementation will serve the bundled model, and why."""
    chosen = choose_backend(precision, device, backend)
    if precision == "int8":
        return (f"onnx int8 ({INT8_ENCODER}: quantised graph, about 2x fp32 throughput here at mean "
                "cosine 0.996; collections built with it keep that name)")
    if chosen == "torch":
        return "torch (sentence-transformers): CUDA, precision bf16 or NEARSPACE_BACKEND=torch"
    if bf16_for_batches(precision, device, backend):
        from nearspace.encoders.auto import BF16_MIN_TEXTS

        return (f"onnx fp32 for queries and small batches; torch bf16 for batches of >= {BF16_MIN_TEXTS} "
                f"texts (this CPU has native bf16)")
    return "onnx fp32 (ONNX Runtime, no torch import)"


@functools.lru_cache(maxsize=8)
def _load_sentence(precision: str, device: str | None, backend: str, bf16_batches: bool = False):
    if precision == "int8":
        from nearspace.encoders.onnx import OnnxEncoder

        return OnnxEncoder(int8=True)  # no fallback: torch has no such graph
    if backend == "onnx":
        from nearspace.encoders.onnx import OnnxEncoder

        try:
            onnx = OnnxEncoder()
            if bf16_batches:
                from nearspace.encoders.auto import AutoCpuEncoder

                return AutoCpuEncoder(onnx)
            return onnx
        except Exception as exc:  # export or runtime trouble: the torch path still works
            import logging

            logging.getLogger("nearspace").warning("nearspace: ONNX encoder unavailable (%s); using torch", exc)
    from nearspace.encoders.sentence import SentenceEncoder

    return SentenceEncoder(precision=precision, device=device)  # type: ignore[arg-type]


def load_encoder(name: str = DEFAULT_ENCODER, *, precision: str = "auto",
                 device: str | None = None, backend: str | None = None) -> Encoder:
    """Return the encoder called ``name``.

    ``all-MiniLM-L6-v2`` (the default) and ``all-MiniLM-L6-v2-int8`` (the same model on an
    int8 ONNX graph, also what ``precision="int8"`` gives) are cached: its weights are read-only, so sharing
    one loaded copy per (precision, device, backend) is safe; :func:`choose_backend` picks
    ONNX Runtime or torch. ``onehot`` and ``tfidf`` return a fresh, unfitted baseline.
    """
    canonical = canonical_name(name)
    if canonical == INT8_ENCODER:
        precision = "int8"
    elif canonical == DEFAULT_ENCODER and precision == "int8":
        canonical = INT8_ENCODER
    if canonical == DEFAULT_ENCODER or canonical == INT8_ENCODER:
        return _load_sentence(precision, device, choose_backend(precision, device, backend),
                              bf16_for_batches(precision, device, backend))
    if canonical in ("onehot", "bow"):
        from nearspace.encoders.sparse import OneHotEncoder

        return OneHotEncoder()
    if canonical == "tfidf":
        from nearspace.encoders.sparse import TfidfEncoder

        return TfidfEncoder()
    from nearspace.errors import EncoderUnavailable

    raise EncoderUnavailable(f"unknown encoder {name!r}; available: {DEFAULT_ENCODER}, {INT8_ENCODER}, onehot, tfidf")
