"""The HTTP server behind ``nearspace serve``.

Owns the FastAPI app factory (``create_app``), the OpenAI-compatible ``/v1/embeddings`` and
``/v1/models`` endpoints, the collection endpoints (documents, search), request limits and
API-key auth, the single-writer access to the SQLite store, and the static search page
served at ``/``. Nothing here is imported by ``nearspace`` itself: FastAPI loads only when
a server is created.
"""
from __future__ import annotations

from nearspace.server.config import ServerConfig

__all__ = ["ServerConfig", "create_app"]


def create_app(config: ServerConfig):  # noqa: ANN201 - FastAPI is imported lazily
    """Build the FastAPI application for ``config`` (see ``nearspace.server.app``)."""
    from nearspace.server.app import create_app as _create

    return _create(config)
