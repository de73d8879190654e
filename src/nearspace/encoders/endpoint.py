"""An OpenAI-compatible embeddings endpoint as an encoder (kind ``openai``).

Speaks ``POST {base_url}/embeddings`` with ``{"model", "input": [...]}`` as OpenAI, Ollama,
vLLM, LM Studio, TEI's OpenAI route and ``nearspace serve`` do. What a bulk client needs:

* **base URL and key** from the spec's options or the environment (``NEARSPACE_EMBEDDINGS_URL``
  / ``OPENAI_BASE_URL``; the key from the variable the spec names, default
  ``NEARSPACE_EMBEDDINGS_KEY`` then ``OPENAI_API_KEY``). The key is never part of the spec,
  a repr, a log line or an error message: a collection records only *which variable* holds it.
* **batches** bounded by count (``batch_size``) and by an estimated token budget
  (``max_batch_tokens``; 1 token per 4 UTF-8 bytes, the usual rule of thumb);
* **retries** with exponential backoff on 429, 5xx, timeouts and dropped connections, honouring
  ``Retry-After`` (seconds or an HTTP date), up to ``retries`` attempts per batch;
* a **timeout** per request and a **concurrency** limit (batches in flight at once);
* a **dimension check**: every returned vector must have the collection's dimension, and the
  order is taken from each item's ``index``, not from the list order.

Vectors come back as unit rows (normalised here: not every server normalises). Texts whose
content hash is already stored are never sent: the collection's upsert path skips them.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Sequence

import numpy as np

from nearspace.encoders.base import BaseEncoder, check_texts
from nearspace.endpoints import JsonClient, retry_after_seconds  # noqa: F401 (re-exported)
from nearspace.errors import EncoderUnavailable, InputError

URL_VARIABLES = ("NEARSPACE_EMBEDDINGS_URL", "OPENAI_BASE_URL")
KEY_VARIABLES = ("NEARSPACE_EMBEDDINGS_KEY", "OPENAI_API_KEY")


class EndpointError(EncoderUnavailable):
    """The endpoint refused or kept failing (the message names the URL, never the key)."""


def _base_url(options: dict[str, Any]) -> str:
    url = options.get("base_url") or next((os.environ[v] for v in URL_VARIABLES if os.environ.get(v)), "")
    if not url:
        raise EncoderUnavailable(f"an 'openai' encoder needs a base URL: options base_url, or set "
                                 f"{' or '.join(URL_VARIABLES)} (e.g. http://127.0.0.1:8000/v1)")
    return str(url).rstrip("/")


def _key(options: dict[str, Any]) -> str:
    names = [options["key_env"]] if options.get("key_env") else list(KEY_VARIABLES)
    return next((os.environ[v] for v in names if os.environ.get(v)), "")


class EndpointEncoder(BaseEncoder):
    """Embeddings from an OpenAI-compatible HTTP endpoint (see the module docstring)."""

    kind = "openai"

    def __init__(self, model: str, *, dim: int | None = None, base_url: str | None = None,
                 key_env: str | None = None, batch_size: int = 64, max_batch_tokens: int = 8192,
                 timeout: float = 60.0, retries: int = 8, concurrency: int = 4, backoff: float = 0.5,
                 query_prompt: str = "", document_prompt: str = "", max_seq_length: int | None = None) -> None:
        if not isinstance(model, str) or not model.strip():
            raise InputError("an 'openai' encoder needs the endpoint's model name")
        for label, value in (("batch_size", batch_size), ("max_batch_tokens", max_batch_tokens),
                             ("retries", retries), ("concurrency", concurrency)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise InputError(f"openai encoder: {label} must be a positive integer, got {value!r}")
        if not timeout > 0:
            raise InputError(f"openai encoder: timeout must be positive, got {timeout!r}")
        self.name = model
        self.options: dict[str, Any] = {k: v for k, v in (("base_url", base_url), ("key_env", key_env)) if v}
        self.url = _base_url(self.options) + "/embeddings"
        self.batch_size, self.max_batch_tokens = batch_size, max_batch_tokens
        self.timeout, self.retries, self.concurrency, self.backoff = float(timeout), retries, concurrency, backoff
        self.query_prompt, self.document_prompt = query_prompt, document_prompt
        self._max_seq_length = max_seq_length
        self.client = JsonClient(self.url, key=lambda: _key(self.options), timeout=self.timeout,
                                 retries=retries, backoff=backoff, error=EndpointError)
        self.texts_sent = 0
        self._count_lock = threading.Lock()
        self.dim = int(dim) if dim else self._probe_dimension()

    def __repr__(self) -> str:  # never the key
        return f"EndpointEncoder(model={self.name!r}, url={self.url!r}, dim={self.dim})"

    @property
    def max_seq_length(self) -> int | None:
        return self._max_seq_length

    def _probe_dimension(self) -> int:
        vector = self._post(["dimension probe"])[0]
        return len(vector)

    # -- batching ---------------------------------------------------------------------------
    def _batches(self, texts: list[str]) -> list[tuple[int, list[str]]]:
        """``(start, texts)`` runs bounded by count and by the estimated token budget."""
        out, start, current, budget = [], 0, [], 0
        for i, text in enumerate(texts):
            cost = len(text.encode("utf-8", "surrogatepass")) // 4 + 1
            if current and (len(current) >= self.batch_size or budget + cost > self.max_batch_tokens):
                out.append((start, current))
                start, current, budget = i, [], 0
            current.append(text)
            budget += cost
        if current:
            out.append((start, current))
        return out

    def encode(self, texts: Sequence[str], *, batch_size: int = 64,
               show_progress: bool | None = None) -> np.ndarray:
        texts = check_texts(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        batches = self._batches(list(texts))

        def run(batch: tuple[int, list[str]]) -> None:
            start, chunk = batch
            vectors = self._post(chunk)
            for j, vector in enumerate(vectors):
                if len(vector) != self.dim:
                    raise EndpointError(f"{self.url} returned a {len(vector)}-dimensional vector for model "
                                        f"{self.name!r}; the collection holds {self.dim}-dimensional ones")
                out[start + j] = vector

        if len(batches) == 1 or self.concurrency == 1:
            for batch in batches:
                run(batch)
        else:
            with ThreadPoolExecutor(max_workers=min(self.concurrency, len(batches))) as pool:
                for future in [pool.submit(run, b) for b in batches]:
                    future.result()
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        if not np.isfinite(out).all() or (norms == 0).any():
            raise EndpointError(f"{self.url} returned a zero or non-finite vector for model {self.name!r}")
        return out / norms

    def _post(self, texts: list[str]) -> list[list[float]]:
        payload = self.client.post({"model": self.name, "input": texts, "encoding_format": "float"})
        with self._count_lock:
            self.texts_sent += len(texts)
        try:
            return _vectors(payload, len(texts), self.url)
        except (ValueError, KeyError, TypeError) as exc:  # an answer that is not embeddings
            raise EndpointError(f"{self.url} answered with something that is not embeddings: {exc}") from None

    @property
    def requests(self) -> int:
        """HTTP requests sent, retries included (tests and benchmarks read it)."""
        return self.client.requests


def _vectors(payload: Any, expected: int, url: str) -> list[list[float]]:
    data = payload["data"]
    if not isinstance(data, list) or len(data) != expected:
        raise ValueError(f"{len(data) if isinstance(data, list) else 'no'} embeddings for {expected} inputs")
    ordered: list[Any] = [None] * expected
    for position, item in enumerate(data):
        index = item.get("index", position)
        if not isinstance(index, int) or not 0 <= index < expected or ordered[index] is not None:
            raise ValueError(f"an embedding with index {index!r}")
        embedding = item["embedding"]
        if isinstance(embedding, str):
            raise ValueError("a base64 embedding although floats were asked for")
        ordered[index] = embedding
    return ordered
