"""Adapters that let other libraries use nearspace: LangChain, LlamaIndex, scikit-learn, Arrow.

Each lives in its own module and imports its host library only when that module is
imported, so ``import nearspace`` never pays for (or requires) any of them. Install the
matching extra, e.g. ``pip install nearspace[langchain]``.
"""
from __future__ import annotations


def require(module: str, extra: str):
    """Import ``module`` or fail with one line naming the extra that provides it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f"{module} is not installed; install it with: pip install 'nearspace[{extra}]'") from exc
