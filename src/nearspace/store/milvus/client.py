"""Reaching Milvus: store URIs, milvus-lite file sharing within a process, names and errors.

Imports neither pymilvus at module level nor anything above ``store``: ``index/milvus.py``
(the vector-index backend) shares these helpers with the store backend.
"""
from __future__ import annotations

import json
import re
import threading

from nearspace.errors import InputError, StoreError

#: milvus-lite files open in this process -> stores using them (the last close releases the file)
_LITE_USERS: dict[str, int] = {}
_LITE_LOCK = threading.Lock()
#: Milvus collections holding nearspace collections are named ns_<escaped name>
PREFIX = "ns_"


def parse_uri(spec: str) -> str | None:
    """The pymilvus URI for a ``milvus://``/``milvus-lite:`` store spelling, else None.

    ``milvus:/host:port`` (a ``Path`` collapses ``//``) is accepted too, so the CLI's
    ``--store`` works whichever way the shell hands it over.
    """
    spec = str(spec)
    if spec.startswith("milvus-lite:"):
        path = spec[len("milvus-lite:"):]
        if not path.endswith(".db"):
            raise InputError(f"a milvus-lite store path must end in .db (milvus-lite's rule), got {path!r}")
        from pathlib import Path

        Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        return str(Path(path).expanduser())
    match = re.match(r"^milvus(s?):/+(.+)$", spec)
    if match:
        return f"{'https' if match.group(1) else 'http'}://{match.group(2)}"
    return None


def is_lite(uri: str) -> bool:
    """A milvus-lite file (served in this process), not a ``scheme://`` server address."""
    return not re.match(r"^[a-z]+://", uri)


def lite_acquire(uri: str) -> None:
    """Count one more user of a milvus-lite file in this process (see :func:`lite_release`)."""
    with _LITE_LOCK:
        _LITE_USERS[uri] = _LITE_USERS.get(uri, 0) + 1


def lite_release(uri: str) -> None:
    """One user of a milvus-lite file is done; the last one lets the file go.

    milvus-lite serves the file from a server this process started and holds its lock until
    released: the last user in this process releases it, so another process may open it.
    """
    with _LITE_LOCK:
        _LITE_USERS[uri] -= 1
        last = _LITE_USERS[uri] == 0
    if last:
        from milvus_lite.server_manager import server_manager_instance

        server_manager_instance.release_server(uri)


def like_prefix(prefix: str) -> str:
    """A Milvus ``LIKE "..."`` pattern body matching keys that start with ``prefix``.

    ``%`` and ``_`` are escaped for LIKE; the string literal takes JSON escapes except ``\\uXXXX``
    (Milvus's parser rejects it), so the key separator \\x1f is passed as the raw character.
    """
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return json.dumps(escaped, ensure_ascii=False)[1:-1].replace("\\u001f", "\x1f") + "%"


def milvus_name(name: str) -> str:
    # injective: '_' -> '__', '-' -> '_0', '.' -> '_1' (Milvus names allow letters, digits and '_')
    return PREFIX + name.replace("_", "__").replace("-", "_0").replace(".", "_1")


def client_error(exc: Exception, where: str) -> StoreError:
    return StoreError(f"Milvus refused {where}: {getattr(exc, 'message', None) or exc}")
