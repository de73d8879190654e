"""The URI-scheme factory: which backend opens a store location.

``milvus://HOST:PORT``, ``milvuss://`` (TLS) and ``milvus-lite:PATH.db`` name a Milvus store;
anything else is a SQLite file path. :func:`register_backend` adds a scheme (a plugin's
engine), checked before the built-in ones.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from nearspace.store.base import StoreBackend

#: schemes added by register_backend (checked before the built-in ones)
_SCHEMES: dict[str, Callable[..., StoreBackend]] = {}


def register_backend(prefix: str, opener: Callable[..., StoreBackend]) -> None:
    """Open locations starting with ``prefix`` (``"mydb:"``, say) with ``opener(location, **options)``."""
    if not isinstance(prefix, str) or not prefix.endswith(":"):
        raise ValueError(f"a store scheme ends with ':' (like 'milvus:'), got {prefix!r}")
    _SCHEMES[prefix] = opener


def _milvus(location: str, *, exact_threshold: int | None = None, **options: Any) -> StoreBackend:
    from nearspace.store.milvus.backend import MilvusStore  # pymilvus loads only for Milvus stores
    from nearspace.store.milvus.client import parse_uri

    return MilvusStore(parse_uri(location), **options)  # the engine picks its own index: no threshold


_BUILTIN: dict[str, Callable[..., StoreBackend]] = {"milvus:": _milvus, "milvuss:": _milvus, "milvus-lite:": _milvus}


def is_scheme(location: str) -> bool:
    """Whether ``location`` names a store by a scheme rather than a SQLite file path."""
    return any(str(location).startswith(p) for p in (*_SCHEMES, *_BUILTIN))


def open_backend(location: str | Path, **options: Any) -> StoreBackend:
    """The store backend for ``location``: a registered scheme, else a SQLite file path."""
    text = str(location)
    for prefix, opener in (*_SCHEMES.items(), *_BUILTIN.items()):
        if text.startswith(prefix):
            return opener(text, **options)
    from nearspace.store.sqlite.backend import SQLiteStore

    return SQLiteStore(location, **options)
