"""Encoders by kind: a factory per kind, specs in and encoders out.

``register_encoder(kind, factory)`` (or a plugin's entry point in the group
``nearspace.encoders``) makes a kind loadable; ``encoder_from_spec`` loads what a collection's
stored spec names; ``load_encoder(name)`` is the short way for the bundled model and the
baselines, which are loaded once per process and shared.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Mapping

from nearspace.encoders.base import Encoder, as_encoder
from nearspace.errors import EncoderUnavailable, InputError
from nearspace.types import EncoderSpec

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
        raise InputError(f"encoder backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if precision == "int8":
        if backend == "torch":
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


#: the entry-point group a plugin registers its encoder kinds in (``name = "module:factory"``)
ENTRY_POINT_GROUP = "nearspace.encoders"
#: the name recorded for a collection of your own vectors (kind ``none``): stores written
#: before specs existed carry it, so it stays the name
NO_MODEL_NAME = "none:own-vectors"

#: ``factory(spec, *, precision, device) -> encoder``
EncoderFactory = Callable[..., Any]
_FACTORIES: dict[str, EncoderFactory] = {}


def register_encoder(kind: str, factory: EncoderFactory, *, replace: bool = False) -> None:
    """Make ``kind`` loadable from a spec: ``factory(spec, precision=..., device=...)`` returns an
    encoder (protocol v1 objects are adapted). Plugins do this from an entry point in the group
    ``nearspace.encoders`` instead, so that a stored collection finds its kind in a new process."""
    if not isinstance(kind, str) or not kind.strip() or not kind.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise InputError(f"encoder kind must be a word such as 'my-model', got {kind!r}")
    if not callable(factory):
        raise InputError(f"the factory for encoder kind {kind!r} must be callable, got {type(factory).__name__}")
    if kind in _FACTORIES and not replace and _FACTORIES[kind] is not factory:
        raise InputError(f"encoder kind {kind!r} is already registered; pass replace=True to replace it")
    _FACTORIES[kind] = factory


def _entry_points() -> dict[str, Any]:
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def encoder_kinds() -> list[str]:
    """Every kind a spec can name: built in, registered, and from installed plugins."""
    return sorted(set(_FACTORIES) | set(_entry_points()))


def _factory(kind: str) -> EncoderFactory:
    if kind not in _FACTORIES:
        plugin = _entry_points().get(kind)
        if plugin is not None:
            try:
                register_encoder(kind, plugin.load())
            except Exception as exc:  # noqa: BLE001 - a broken plugin is named, not a traceback
                raise EncoderUnavailable(f"encoder plugin {kind!r} ({plugin.value}) failed to load: {exc}") from exc
    factory = _FACTORIES.get(kind)
    if factory is None:
        raise EncoderUnavailable(f"no encoder of kind {kind!r} is registered (known kinds: {', '.join(encoder_kinds())}); "
                                 f"install its plugin or call nearspace.register_encoder({kind!r}, factory)")
    return factory


def spec_for_name(name: str, dim: int | None = None) -> EncoderSpec:
    """The spec of an encoder known by name alone (a collection written before specs were stored)."""
    canonical = canonical_name(name)
    if canonical == NO_MODEL_NAME:
        if dim is None:
            raise InputError("a collection without a model needs its dimension")
        return EncoderSpec(kind="none", name=NO_MODEL_NAME, dim=dim)
    if canonical in (DEFAULT_ENCODER, INT8_ENCODER):
        return EncoderSpec(kind="minilm", name=canonical, dim=dim or 384, max_seq_length=256)
    if canonical in ("onehot", "bow", "tfidf"):
        kind = "tfidf" if canonical == "tfidf" else "onehot"
        return EncoderSpec(kind=kind, name=kind, dim=dim or 1)
    raise EncoderUnavailable(f"unknown encoder {name!r}; available: {DEFAULT_ENCODER}, {INT8_ENCODER}, onehot, tfidf, "
                             f"or a spec of kind {', '.join(k for k in encoder_kinds() if k != 'none')}")


def known_spec(name: str, dim: int) -> EncoderSpec | None:
    """:func:`spec_for_name` for a name and dimension, or None when no built-in kind has that name."""
    try:
        spec = spec_for_name(name, dim)
    except (EncoderUnavailable, InputError):
        return None
    return spec if spec.dim == dim else None


def recorded_encoder(name: str, dim: int, why: str = "the vectors come from elsewhere") -> Encoder:
    """A stand-in that records encoder ``name`` (its spec, where the name is known) and encodes nothing."""
    from nearspace.encoders.base import RecordedEncoder

    return RecordedEncoder(known_spec(name, dim) or EncoderSpec(kind="custom", name=name, dim=dim), why)


def encoder_from_spec(spec: EncoderSpec | Mapping[str, Any], *, precision: str = "auto",
                      device: str | None = None) -> Encoder:
    """Load the encoder a spec describes (its kind's factory), as protocol v2 with the spec's prompts."""
    if not isinstance(spec, EncoderSpec):
        spec = EncoderSpec.from_dict(spec)
    encoder = _factory(spec.kind)(spec, precision=precision, device=device)
    return as_encoder(encoder, spec)


def load_encoder(name: str = DEFAULT_ENCODER, *, precision: str = "auto",
                 device: str | None = None, backend: str | None = None) -> Encoder:
    """Return the encoder called ``name``.

    ``all-MiniLM-L6-v2`` (the default) and ``all-MiniLM-L6-v2-int8`` (the same model on an
    int8 ONNX graph, also what ``precision="int8"`` gives) are cached: its weights are read-only, so sharing
    one loaded copy per (precision, device, backend) is safe; :func:`choose_backend` picks
    ONNX Runtime or torch. ``onehot`` and ``tfidf`` return a fresh, unfitted baseline.
    Other models are loaded from a spec (:func:`encoder_from_spec`).
    """
    canonical = canonical_name(name)
    if canonical in (DEFAULT_ENCODER, INT8_ENCODER):
        return _bundled(canonical, precision=precision, device=device, backend=backend)
    model = model_from_string(name, precision=precision, device=device)
    if model is not None:
        return model
    spec = spec_for_name(name)
    return encoder_from_spec(spec, precision=precision, device=device)


def _bundled(name: str, *, precision: str, device: str | None, backend: str | None = None) -> Encoder:
    if name == INT8_ENCODER:
        precision = "int8"
    elif precision == "int8":
        name = INT8_ENCODER
    return _load_sentence(precision, device, choose_backend(precision, device, backend),
                          bf16_for_batches(precision, device, backend))


# -- the built-in kinds ------------------------------------------------------------------------
def _minilm(spec: EncoderSpec, *, precision: str = "auto", device: str | None = None) -> Encoder:
    if canonical_name(spec.name) not in (DEFAULT_ENCODER, INT8_ENCODER):
        raise InputError(f"encoder kind 'minilm' is the bundled {DEFAULT_ENCODER} (or {INT8_ENCODER}), not {spec.name!r}")
    # precision "int8" chooses the model of *new* collections; a spec's name decides for a stored one
    if canonical_name(spec.name) == DEFAULT_ENCODER and precision == "int8":
        precision = "auto"
    return _bundled(canonical_name(spec.name), precision=precision, device=device)


def _sentence_transformers(spec: EncoderSpec, *, precision: str = "auto", device: str | None = None,
                           check_dim: bool = True) -> Encoder:
    model = spec.options.get("model")
    if not isinstance(model, str) or not model:
        raise InputError("encoder kind 'sentence-transformers' needs options={'model': FOLDER_OR_NAME}")
    from nearspace.encoders.sentence import SentenceEncoder

    if precision not in ("auto", "bf16", "fp32"):
        precision = "auto"
    encoder = SentenceEncoder(model, name=spec.name, precision=precision, device=device,  # type: ignore[arg-type]
                              max_seq_length=spec.max_seq_length)
    if check_dim and encoder.dim != spec.dim:
        from nearspace.errors import EncoderMismatch

        raise EncoderMismatch(f"model {model!r} now gives {encoder.dim}-dimensional vectors; its spec says {spec.dim}")
    return encoder


def _onnx_folder(spec: EncoderSpec, *, precision: str = "auto", device: str | None = None) -> Encoder:
    from nearspace.encoders.onnx import OnnxFolderEncoder

    folder = spec.options.get("model")
    if not isinstance(folder, str) or not folder:
        raise InputError("encoder kind 'onnx' needs options={'model': FOLDER}")
    return OnnxFolderEncoder(folder, name=spec.name)


#: what an 'openai' spec's options may set (the key itself never: only the variable holding it)
ENDPOINT_OPTIONS = ("base_url", "key_env", "batch_size", "max_batch_tokens", "timeout", "retries", "concurrency")


def _endpoint(spec: EncoderSpec, *, precision: str = "auto", device: str | None = None) -> Encoder:
    from nearspace.encoders.endpoint import EndpointEncoder

    unknown = sorted(set(spec.options) - set(ENDPOINT_OPTIONS))
    if unknown:
        raise InputError(f"encoder kind 'openai': unknown option(s) {', '.join(unknown)}; "
                         f"known: {', '.join(ENDPOINT_OPTIONS)}")
    return EndpointEncoder(spec.name, dim=spec.dim, query_prompt=spec.query_prompt,
                           document_prompt=spec.document_prompt, max_seq_length=spec.max_seq_length,
                           **dict(spec.options))


#: model-string prefixes: one string names a model everywhere (API, CLI --model, server, config)
MODEL_PREFIXES = ("openai:", "st:", "sentence-transformers:", "onnx:")


def model_from_string(name: str, *, precision: str = "auto", device: str | None = None) -> Encoder | None:
    """The encoder a model string names, or None for the names :func:`spec_for_name` knows.

    ``openai:MODEL[@URL]`` an OpenAI-compatible endpoint; ``st:NAME_OR_FOLDER`` (or
    ``sentence-transformers:``) a sentence-transformers model, by a local folder or a Hugging Face
    name already in the local cache; ``onnx:FOLDER`` a folder with ``model.onnx`` and
    ``tokenizer.json`` (pooling from ``1_Pooling/config.json``); a bare existing folder is ``st:``.
    """
    if name.startswith("openai:"):
        return endpoint_from_name(name)
    for prefix in ("st:", "sentence-transformers:"):
        if name.startswith(prefix):
            return _sentence_transformers(EncoderSpec(kind="sentence-transformers", name=name[len(prefix):], dim=1,
                                                      options={"model": name[len(prefix):]}),
                                          precision=precision, device=device, check_dim=False)
    if name.startswith("onnx:"):
        from nearspace.encoders.onnx import OnnxFolderEncoder

        return OnnxFolderEncoder(name[len("onnx:"):])
    from pathlib import Path

    if ("/" in name or name.startswith((".", "~"))) and Path(name).expanduser().is_dir():
        return model_from_string("st:" + name, precision=precision, device=device)
    return None


def endpoint_from_name(name: str) -> Encoder:
    """``openai:MODEL`` (base URL from the environment) or ``openai:MODEL@URL``: the endpoint is
    asked once for its dimension."""
    from nearspace.encoders.endpoint import EndpointEncoder

    model, _, url = name[len("openai:"):].partition("@")
    return EndpointEncoder(model, base_url=url or None)


def _sparse(spec: EncoderSpec, *, precision: str = "auto", device: str | None = None) -> Encoder:
    from nearspace.encoders.sparse import OneHotEncoder, TfidfEncoder

    return TfidfEncoder() if spec.kind == "tfidf" else OneHotEncoder()


def _no_model(spec: EncoderSpec, *, precision: str = "auto", device: str | None = None) -> Encoder:
    raise InputError(f"{spec.name!r} is no model: a collection of your own {spec.dim}-dimensional vectors has "
                     "nothing to encode text with; pass vectors= to upsert, and search(vector=...)")


for _kind, _make in (("minilm", _minilm), ("sentence-transformers", _sentence_transformers), ("openai", _endpoint),
                     ("onnx", _onnx_folder),
                     ("onehot", _sparse), ("tfidf", _sparse), ("none", _no_model)):
    register_encoder(_kind, _make)
