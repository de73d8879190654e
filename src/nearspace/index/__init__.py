"""Vector backends behind one protocol, chosen by name from a registry.

    >>> from nearspace import index
    >>> backend = index.create("hnsw", dim=384, metric="cosine", M=16)
    >>> backend.add(rows, vectors); rows, scores = backend.search(query, k=10, allowed=subset)
    >>> backend.save("/path/prefix"); same = index.load("/path/prefix")

A new backend is one module with a class following :class:`VectorBackend` (``kind``, ``add``,
``remove``, ``search``, ``save``, classmethod ``load``, ``stats``, ``__len__``) and one entry
in :data:`BACKENDS` (or a call to :func:`register`); the conformance suite in
``tests/index`` then runs against it. Entries are ``"module:Class"`` strings so that naming a
backend never imports another one's dependency (hnswlib, a remote client).
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from nearspace.errors import InputError
from nearspace.index.base import IndexFileError, VectorBackend, read_header

#: backend name -> "module:Class" (imported on first use) or the class itself
BACKENDS: dict[str, str | type] = {
    "exact": "nearspace.index.exact:ExactBackend",
    "hnsw": "nearspace.index.hnsw:HNSWBackend",
    "int8": "nearspace.index.quantized:Int8Backend",
    "binary": "nearspace.index.quantized:BinaryBackend",
    "milvus": "nearspace.index.milvus:MilvusBackend",  # vectors in a Milvus server or milvus-lite file
}

__all__ = ["BACKENDS", "IndexFileError", "VectorBackend", "backend_class", "create", "load", "register"]


def register(kind: str, target: str | type) -> None:
    """Add (or replace) a backend: ``target`` is a class or a ``"module:Class"`` string."""
    BACKENDS[kind] = target


def backend_class(kind: str) -> type:
    try:
        target = BACKENDS[kind]
    except KeyError:
        raise InputError(f"unknown vector backend {kind!r}; choose one of {', '.join(sorted(BACKENDS))}") from None
    if not isinstance(target, str):
        return target
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def create(kind: str, dim: int, metric: str = "cosine", **options: Any) -> VectorBackend:
    """A new, empty backend of ``kind``."""
    if not isinstance(dim, int) or dim < 1:
        raise InputError(f"dim must be a positive integer, got {dim!r}")
    return backend_class(kind)(dim, metric, **options)


def load(prefix: str | Path, *, full_check: bool = False, mmap: bool = True) -> VectorBackend:
    """The backend saved under ``prefix`` (its header names the kind); IndexFileError if the files
    are missing, damaged or disagree with their header."""
    header = read_header(prefix)
    return backend_class(header["kind"]).load(prefix, header, full_check=full_check, mmap=mmap)
