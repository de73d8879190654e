"""The encoder protocol (v2) shared by dense models, sparse baselines and plugins.

An encoder turns texts into an ``(n, dim)`` float32 array of unit rows. Version 2 of the
protocol says what a collection needs from it: documents and queries are encoded by
``encode_documents`` / ``encode_queries`` (so models that want prompts, such as e5's
``"query: "``/``"passage: "`` or bge's query instruction, are served correctly),
``count_tokens`` and ``token_spans`` size chunks for the model's window (``max_seq_length``),
and ``spec`` is what is stored with a collection so that it reopens with no encoder passed.

``BaseEncoder`` implements all of it from ``encode`` alone; ``as_encoder`` adapts any object
with ``name``, ``dim`` and ``encode`` (protocol v1) without changing its vectors.
"""
from __future__ import annotations

import re
from typing import Any, Callable, Mapping, Protocol, Sequence, runtime_checkable

import numpy as np

from nearspace.types import EncoderSpec

#: what counts as a token for an encoder without a tokenizer (words and single punctuation marks)
_WORD = re.compile(r"\w+|[^\w\s]")


@runtime_checkable
class Encoder(Protocol):
    """Anything that maps texts to an ``(n, dim)`` float32 array, documents and queries apart."""

    name: str
    dim: int

    @property
    def max_seq_length(self) -> int | None: ...

    @property
    def spec(self) -> EncoderSpec: ...

    def encode(self, texts: Sequence[str], *, batch_size: int = 64,
               show_progress: bool | None = None) -> np.ndarray: ...

    def encode_documents(self, texts: Sequence[str], *, batch_size: int = 64,
                         show_progress: bool | None = None) -> np.ndarray: ...

    def encode_queries(self, texts: Sequence[str], *, batch_size: int = 64,
                       show_progress: bool | None = None) -> np.ndarray: ...

    def count_tokens(self, texts: Sequence[str]) -> list[int]: ...

    def token_spans(self, text: str) -> list[tuple[int, int]]: ...


class BaseEncoder:
    """The protocol's methods, built on ``encode`` (and on a Hugging Face style ``tokenizer``
    attribute where the encoder has one). Subclasses set ``kind`` (their registered factory),
    ``name`` and ``dim``, and may set ``options`` and the prompts."""

    kind: str = "custom"
    name: str
    dim: int
    options: Mapping[str, Any] = {}
    query_prompt: str = ""
    document_prompt: str = ""

    def encode(self, texts: Sequence[str], *, batch_size: int = 64,
               show_progress: bool | None = None) -> np.ndarray:
        raise NotImplementedError

    @property
    def max_seq_length(self) -> int | None:
        return None

    @property
    def spec(self) -> EncoderSpec:
        return EncoderSpec(kind=self.kind, name=self.name, dim=int(self.dim), options=dict(self.options),
                           query_prompt=self.query_prompt, document_prompt=self.document_prompt,
                           max_seq_length=self.max_seq_length)

    def encode_documents(self, texts: Sequence[str], *, batch_size: int = 64,
                         show_progress: bool | None = None) -> np.ndarray:
        return self._encode_prompted(self.document_prompt, texts, batch_size, show_progress)

    def encode_queries(self, texts: Sequence[str], *, batch_size: int = 64,
                       show_progress: bool | None = None) -> np.ndarray:
        return self._encode_prompted(self.query_prompt, texts, batch_size, show_progress)

    def _encode_prompted(self, prompt: str, texts: Sequence[str], batch_size: int,
                         show_progress: bool | None) -> np.ndarray:
        texts = check_texts(texts)
        if prompt:
            texts = [prompt + t for t in texts]
        return self.encode(texts, batch_size=batch_size, show_progress=show_progress)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Tokens per text without special tokens (the model's tokenizer, else words)."""
        texts = check_texts(texts)
        tokenizer = getattr(self, "tokenizer", None)
        if tokenizer is None:
            return [len(_WORD.findall(t)) for t in texts]
        if not texts:
            return []
        return [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        """``(start, end)`` character offsets of each token of ``text``."""
        tokenizer = getattr(self, "tokenizer", None)
        if tokenizer is None:
            return [m.span() for m in _WORD.finditer(text)]
        offsets = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
        return [(int(s), int(e)) for s, e in offsets]


class AdaptedEncoder(BaseEncoder):
    """A protocol-v1 object (``name``, ``dim``, ``encode``) or a factory's product, seen through
    protocol v2: the same vectors, prompts from its spec, its tokenizer where it has one."""

    def __init__(self, inner: Any, spec: EncoderSpec | None = None) -> None:
        self.inner = inner
        self.name = spec.name if spec else str(inner.name)
        self.dim = int(inner.dim)
        self.kind = spec.kind if spec else str(getattr(inner, "kind", "custom"))
        self.options = dict(spec.options) if spec else dict(getattr(inner, "options", {}) or {})
        self.query_prompt = spec.query_prompt if spec else str(getattr(inner, "query_prompt", "") or "")
        self.document_prompt = spec.document_prompt if spec else str(getattr(inner, "document_prompt", "") or "")
        tokenizer = getattr(inner, "tokenizer", None)
        if tokenizer is not None:
            self.tokenizer = tokenizer
        self._max_seq_length = getattr(inner, "max_seq_length", None)

    @property
    def max_seq_length(self) -> int | None:
        return self._max_seq_length

    def encode(self, texts: Sequence[str], *, batch_size: int = 64,
               show_progress: bool | None = None) -> np.ndarray:
        if not _has(self.inner, "encode"):
            from nearspace.errors import InputError

            raise InputError(f"encoder {self.name!r} ({type(self.inner).__name__}) has no encode(texts)")
        return self.inner.encode(texts, batch_size=batch_size, show_progress=show_progress)

    def __getattr__(self, name: str) -> Any:  # fit(), precision and the like stay reachable
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def __repr__(self) -> str:
        return f"AdaptedEncoder({self.inner!r}, kind={self.kind!r})"


class RecordedEncoder(BaseEncoder):
    """An encoder known by its spec alone: it creates (or opens) a collection under that spec
    when the vectors come from elsewhere (a Parquet file, LlamaIndex), and encodes nothing."""

    def __init__(self, spec: EncoderSpec, why: str = "the vectors come from elsewhere") -> None:
        self._recorded, self.why = spec, why
        self.kind, self.name, self.dim = spec.kind, spec.name, spec.dim
        self.options, self.query_prompt, self.document_prompt = dict(spec.options), spec.query_prompt, spec.document_prompt

    @property
    def max_seq_length(self) -> int | None:
        return self._recorded.max_seq_length

    @property
    def spec(self) -> EncoderSpec:
        return self._recorded

    def encode(self, texts: Sequence[str], *, batch_size: int = 64,
               show_progress: bool | None = None) -> np.ndarray:
        from nearspace.errors import EncoderUnavailable

        raise EncoderUnavailable(f"encoder {self.name!r} is not loaded here: {self.why}")


def as_encoder(encoder: Any, spec: EncoderSpec | None = None) -> Encoder:
    """``encoder`` as protocol v2: itself when it already is, else an ``AdaptedEncoder``.

    With ``spec``, the result reports that spec (kind, options, prompts): a factory's product
    is wrapped only where its own spec differs."""
    for attr in ("name", "dim"):  # encode() is looked for when it is needed (a name checks a collection)
        if not _has(encoder, attr):
            from nearspace.errors import InputError

            raise InputError(f"an encoder needs name, dim and encode(texts); {type(encoder).__name__} has no {attr}")
    complete = all(_has(encoder, a) for a in ("encode_documents", "encode_queries", "count_tokens",
                                                  "token_spans", "spec", "max_seq_length"))
    if complete and (spec is None or _matches(encoder, spec)):
        return encoder
    return AdaptedEncoder(encoder, spec)


def _has(obj: Any, attr: str) -> bool:
    """``hasattr`` for attributes that exist but may raise when read (an unfitted ``dim``)."""
    try:
        getattr(obj, attr)
    except AttributeError:
        return attr in dir(type(obj))
    except Exception:  # noqa: BLE001 - present, just not readable now
        return True
    return True


def _matches(encoder: Any, spec: EncoderSpec) -> bool:
    """Whether ``encoder`` already reports ``spec`` (read without ``encoder.dim``, which an
    unfitted baseline cannot give yet)."""
    return (getattr(encoder, "kind", None), encoder.name, getattr(encoder, "query_prompt", ""),
            getattr(encoder, "document_prompt", "")) == (spec.kind, spec.name, spec.query_prompt,
                                                         spec.document_prompt)


def normalize_rows(vectors: np.ndarray) -> np.ndarray:
    """L2-normalise each row in place (zero rows stay zero) and return float32."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    np.divide(vectors, norms, out=vectors, where=norms > 0)
    return vectors


def check_texts(texts: Sequence[str]) -> list[str]:
    """Validate encoder input at the boundary: a list of non-empty strings."""
    if isinstance(texts, str):
        raise TypeError("encode() takes a list of texts, not a single string; wrap it in a list")
    out = list(texts)
    for i, text in enumerate(out):
        if not isinstance(text, str):
            raise TypeError(f"text #{i} is {type(text).__name__}, expected str")
    return out


#: show a progress bar by default from this many texts on
PROGRESS_THRESHOLD = 512


def encode_longest_first(texts: Sequence[str], forward: Callable[[list[str]], np.ndarray], *,
                         batch_size: int, show_progress: bool | None, label: str, dim: int = 0) -> np.ndarray:
    """Shared batching for dense encoders: validate, encode longest-first in batches (less
    padding) with ``forward(batch) -> (len(batch), dim)``, restore input order, show a Rich
    progress bar for long inputs, and return L2-normalised float32 rows."""
    texts = check_texts(texts)
    if not texts:
        return np.zeros((0, dim), dtype=np.float32)
    if show_progress is None:
        show_progress = len(texts) >= PROGRESS_THRESHOLD
    order = np.argsort([-len(t) for t in texts], kind="stable")
    out: np.ndarray | None = None

    def run(update: Callable[[int], object] = lambda n: None) -> np.ndarray:
        nonlocal out
        for start in range(0, len(texts), batch_size):
            idx = order[start:start + batch_size]
            emb = forward([texts[i] for i in idx])
            if out is None:
                out = np.empty((len(texts), emb.shape[1]), dtype=np.float32)
            out[idx] = emb
            update(len(idx))
        assert out is not None
        return out

    if show_progress:
        from nearspace.progress import progress_bar

        with progress_bar() as progress:
            task = progress.add_task(f"encoding ({label})", total=len(texts))
            vectors = run(lambda n: progress.advance(task, n))
    else:
        vectors = run()
    return normalize_rows(vectors)
