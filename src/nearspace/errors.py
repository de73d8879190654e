"""Error types: every user-facing failure is a NearspaceError with a one-line message."""
from __future__ import annotations


class NearspaceError(Exception):
    """Base class for errors caused by bad input or bad state, shown to users as one line."""


class InputError(NearspaceError):
    """The caller passed something invalid (empty text, bad JSON, wrong dimension, ...)."""


class StoreError(NearspaceError):
    """The store cannot be opened or written (path is a directory, unwritable, corrupt)."""


class CollectionNotFound(NearspaceError):
    """A named collection does not exist in the store."""


class EncoderMismatch(NearspaceError):
    """A collection was built with a different encoder or dimension than the one offered."""


class EncoderUnavailable(NearspaceError):
    """The encoder's weights or library cannot be loaded (offline, package missing)."""
