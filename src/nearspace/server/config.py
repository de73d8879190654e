"""Server settings: where the store is, who may call, and how big a request may be."""
from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from pathlib import Path

MB = 1024 * 1024


@dataclass(frozen=True)
class ServerConfig:
    store: Path
    api_key: str | None = None
    #: bytes; larger bodies are refused with 413 before they are read
    max_body_bytes: int = 10 * MB
    #: documents per write request and inputs per embeddings request (OpenAI allows 2048)
    max_batch: int = 2048
    #: largest ``k`` a search may ask for
    max_k: int = 1000
    #: threads that serve searches and reads, each with its own SQLite connection
    readers: int = 4
    precision: str = "auto"
    #: a second key that may only read (search, ask, get, embeddings); writes answer 403
    read_api_key: str | None = None
    #: Host header names served (port ignored); None: the loopback names (plus the bound host).
    #: A DNS-rebinding page reaches the server under its own name, which is not on the list.
    #: ``("*",)`` serves any name (only sensible behind a key or a proxy that checks Host).
    allowed_hosts: tuple[str, ...] | None = None
    #: the address bound, added to the default allow-list when it is a specific name or address
    bind_host: str = "127.0.0.1"
    #: a reranker string (``ce:FOLDER``, ``rerank:MODEL@URL``): enables /v1/rerank and ``rerank`` in
    #: search and ask requests (a client never names a model to load: only the operator does)
    rerank: str | None = None

    def __post_init__(self) -> None:
        if self.api_key is not None and not self.api_key.strip():
            object.__setattr__(self, "api_key", None)  # an empty key means "no key", never "any key"
        if self.read_api_key is not None and not self.read_api_key.strip():
            object.__setattr__(self, "read_api_key", None)
        if self.read_api_key is not None and self.read_api_key == self.api_key:
            raise ValueError("the read-only key must differ from the read-write key")
        for name in ("max_body_bytes", "max_batch", "max_k", "readers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")


def is_loopback(host: str) -> bool:
    """True when every address ``host`` names is a loopback address."""
    host = host.strip("[]")
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    addresses = {info[4][0] for info in infos}
    return bool(addresses) and all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addresses)


LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1", "localhost.localdomain")


def host_allow_list(config: ServerConfig) -> frozenset[str] | None:
    """Lower-case host names the server answers to; None when any name is allowed."""
    if config.allowed_hosts is not None:
        names = {h.strip().lower().strip("[]") for h in config.allowed_hosts if h.strip()}
        return None if "*" in names else frozenset(names)
    names = set(LOOPBACK_NAMES)
    bind = config.bind_host.strip("[]").lower()
    if bind in ("0.0.0.0", "::", ""):
        # bound to every interface: names cannot be guessed; a key is required there (serve refuses
        # otherwise), and a rebinding page has no key
        return None if (config.api_key or config.read_api_key) else frozenset(names)
    names.add(bind)
    return frozenset(names)


def host_of(header: str) -> str:
    """The name in a Host header, without the port ('[::1]:8000' -> '::1')."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header
