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

import email.utils
import json
import os
import random
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Sequence

import numpy as np

from nearspace.encoders.base import BaseEncoder, check_texts
from nearspace.errors import EncoderUnavailable, InputError

URL_VARIABLES = ("NEARSPACE_EMBEDDINGS_URL", "OPENAI_BASE_URL")
KEY_VARIABLES = ("NEARSPACE_EMBEDDINGS_KEY", "OPENAI_API_KEY")
RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
#: longest wait a Retry-After may impose (a server asking for more is treated as down)
MAX_RETRY_AFTER_S = 120.0


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


def retry_after_seconds(value: str | None) -> float | None:
    """A ``Retry-After`` header as seconds (a number, or an HTTP date), None when absent or bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


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
        self.requests = 0          # HTTP requests sent, retries included (tests and benchmarks read it)
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

    # -- one request, retried ---------------------------------------------------------------
    def _post(self, texts: list[str]) -> list[list[float]]:
        body = json.dumps({"model": self.name, "input": texts, "encoding_format": "float"}).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        key = _key(self.options)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        problem = ""
        for attempt in range(self.retries):
            wait = None
            with self._count_lock:
                self.requests += 1
            try:
                request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    payload = json.loads(response.read())
                with self._count_lock:
                    self.texts_sent += len(texts)
                return _vectors(payload, len(texts), self.url)
            except urllib.error.HTTPError as exc:
                detail = _detail(exc)
                if exc.code not in RETRY_STATUS:
                    raise EndpointError(f"{self.url} refused the request with HTTP {exc.code}: {detail}") from None
                problem = f"HTTP {exc.code}: {detail}"
                wait = retry_after_seconds(exc.headers.get("Retry-After") if exc.headers else None)
                if wait is not None and wait > MAX_RETRY_AFTER_S:
                    raise EndpointError(f"{self.url} asks to retry after {wait:.0f} s ({problem})") from None
            except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
                problem = f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
            except (ValueError, KeyError, TypeError) as exc:  # an answer that is not embeddings
                raise EndpointError(f"{self.url} answered with something that is not embeddings: {exc}") from None
            if attempt + 1 < self.retries:
                if wait is None:  # exponential backoff with jitter, capped
                    wait = min(30.0, self.backoff * (2 ** attempt)) * (0.5 + random.random() / 2)
                time.sleep(wait)
        raise EndpointError(f"{self.url} kept failing after {self.retries} attempts (last: {problem})")


def _detail(exc: urllib.error.HTTPError) -> str:
    try:
        text = exc.read().decode("utf-8", "replace")
    except Exception:  # noqa: BLE001 - the status says enough
        return exc.reason or ""
    try:
        parsed = json.loads(text)
        message = parsed.get("error", parsed) if isinstance(parsed, dict) else parsed
        if isinstance(message, dict):
            message = message.get("message") or message.get("detail") or message
        text = str(message)
    except ValueError:
        pass
    return text[:300]


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
