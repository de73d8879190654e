"""A time limit per parsed file, so one hostile file ends in a per-file error, never a hang.

``time_limit(seconds)`` arms a SIGALRM interval timer around the parse; when it fires, a
``ParseTimeout`` (a ``ParseError``) is raised in the parsing code at its next Python bytecode,
which the folder indexer records as that file's failure before moving on. Signals are only
delivered to the main thread, so elsewhere (a server thread) the limit is not armed. Parsers
stuck inside one C call are interrupted when it returns. ``NEARSPACE_PARSE_TIMEOUT`` (seconds,
default 120; 0 turns it off) sets the limit.
"""
from __future__ import annotations

import os
import signal
import threading
from contextlib import contextmanager
from typing import Iterator

from nearspace.ingest.parsers import ParseError

DEFAULT_SECONDS = 120.0


class ParseTimeout(ParseError):
    """Parsing one file took longer than the limit."""


def default_seconds() -> float:
    try:
        return float(os.environ.get("NEARSPACE_PARSE_TIMEOUT", DEFAULT_SECONDS))
    except ValueError:
        return DEFAULT_SECONDS


@contextmanager
def time_limit(seconds: float | None = None) -> Iterator[None]:
    seconds = default_seconds() if seconds is None else seconds
    if seconds <= 0 or threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def expire(signum, frame) -> None:
        raise ParseTimeout(f"parsing took longer than {seconds:g}s (NEARSPACE_PARSE_TIMEOUT); skipped")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
