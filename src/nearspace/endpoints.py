"""One JSON-over-HTTP client for the endpoints nearspace calls (embeddings, rerank).

POSTs a JSON body and returns the parsed answer; retries 408/409/425/429/5xx, timeouts and
dropped connections with exponential backoff (with jitter), honouring ``Retry-After`` (seconds
or an HTTP date, up to two minutes). The bearer key is read when a request is made, from a
callable, so it never sits in an object's repr, a spec or an error message.
"""
from __future__ import annotations

import email.utils
import json
import random
import threading
import time
import urllib.error
import urllib.request
from typing import Any, Callable

from nearspace.errors import EncoderUnavailable

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
#: longest wait a Retry-After may impose (a server asking for more is treated as down)
MAX_RETRY_AFTER_S = 120.0


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


class JsonClient:
    """POST JSON to one URL, retried (see the module docstring); ``requests`` counts attempts."""

    def __init__(self, url: str, *, key: Callable[[], str] = lambda: "", timeout: float = 60.0, retries: int = 8,
                 backoff: float = 0.5, error: type[Exception] = EncoderUnavailable) -> None:
        self.url, self._key, self.timeout, self.retries, self.backoff = url, key, timeout, retries, backoff
        self.error = error
        self.requests = 0
        self._lock = threading.Lock()

    def post(self, payload: Any) -> Any:
        body = json.dumps(payload).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        key = self._key()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        problem = ""
        for attempt in range(self.retries):
            wait = None
            with self._lock:
                self.requests += 1
            try:
                request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    raw = response.read()
                try:
                    return json.loads(raw)
                except ValueError:
                    raise self.error(f"{self.url} answered with something that is not JSON") from None
            except urllib.error.HTTPError as exc:
                detail = _detail(exc)
                if exc.code not in RETRY_STATUS:
                    raise self.error(f"{self.url} refused the request with HTTP {exc.code}: {detail}") from None
                problem = f"HTTP {exc.code}: {detail}"
                wait = retry_after_seconds(exc.headers.get("Retry-After") if exc.headers else None)
                if wait is not None and wait > MAX_RETRY_AFTER_S:
                    raise self.error(f"{self.url} asks to retry after {wait:.0f} s ({problem})") from None
            except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
                problem = f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
            if attempt + 1 < self.retries:
                if wait is None:  # exponential backoff with jitter, capped
                    wait = min(30.0, self.backoff * (2 ** attempt)) * (0.5 + random.random() / 2)
                time.sleep(wait)
        raise self.error(f"{self.url} kept failing after {self.retries} attempts (last: {problem})")


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
