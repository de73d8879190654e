"""Recommendations: users and items embedded in one space, stored with the store.

Owns reading interaction logs and item side data (``data``), fitting and scoring the models
(most-popular, item-kNN, ALS and BPR through ``implicit``, MiniLM content, and the hybrid;
``models``), the stored ``Recommender`` and its operations (``engine``), and offline
evaluation on temporal/random splits and cold-start items (``evaluate``). Heavy libraries
(implicit, scipy, torch) are imported only when used.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "load_interactions": "nearspace.recommend.data",
    "load_items": "nearspace.recommend.data",
    "Interactions": "nearspace.recommend.data",
    "ItemData": "nearspace.recommend.data",
    "Params": "nearspace.recommend.models",
    "Recommender": "nearspace.recommend.engine",
    "Recommendation": "nearspace.recommend.engine",
    "open_recommender": "nearspace.recommend.engine",
    "evaluate_split": "nearspace.recommend.evaluate",
    "evaluate_cold_start": "nearspace.recommend.evaluate",
}

if TYPE_CHECKING:  # pragma: no cover
    from nearspace.recommend.data import Interactions, ItemData, load_interactions, load_items
    from nearspace.recommend.engine import Recommendation, Recommender, open_recommender
    from nearspace.recommend.evaluate import evaluate_cold_start, evaluate_split
    from nearspace.recommend.models import Params


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'nearspace.recommend' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


__all__ = sorted(_EXPORTS)
