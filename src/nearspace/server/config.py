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

    def __post_init__(self) -> None:
        if self.api_key is not None and not self.api_key.strip():
            object.__setattr__(self, "api_key", None)  # an empty key means "no key", never "any key"
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
