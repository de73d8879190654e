"""nearspace: similar things land near each other; this package makes that useful.

The public entry points are re-exported lazily so that importing ``nearspace``
(and running ``nearspace --help``) never pulls in torch or scikit-learn.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "Store": "nearspace.api",
    "Collection": "nearspace.api",
    "open_store": "nearspace.api",
    "SearchResult": "nearspace.types",
    "load_encoder": "nearspace.encoders",
    "register_encoder": "nearspace.encoders",
    "encoder_from_spec": "nearspace.encoders",
    "EncoderSpec": "nearspace.types",
    "Document": "nearspace.types",
    "SearchResults": "nearspace.types",
    "NearspaceError": "nearspace.errors",
    # search stages and stores
    "load_reranker": "nearspace.rerank",
    "register_backend": "nearspace.store",
    # what the CLI's analyze, recommend and words commands do, from Python
    "fit_collection": "nearspace.analyze.classify",
    "predict": "nearspace.analyze.classify",
    "predict_ids": "nearspace.analyze.classify",
    "zero_shot_classifier": "nearspace.analyze.classify",
    "cluster_collection": "nearspace.analyze.cluster",
    "neighbors": "nearspace.analyze.neighbors",
    "duplicates": "nearspace.analyze.neighbors",
    "outliers": "nearspace.analyze.neighbors",
    "build_map": "nearspace.analyze.maps",
    "render_map": "nearspace.analyze.maps",
    "Recommender": "nearspace.recommend",
    "load_beir": "nearspace.evaluate.beir",
}
#: names whose attribute in their module differs from the exported name
_RENAMED = {"render_map": "render"}

if TYPE_CHECKING:  # pragma: no cover
    from nearspace.api import Collection, Store, open_store
    from nearspace.encoders import encoder_from_spec, load_encoder, register_encoder
    from nearspace.errors import NearspaceError
    from nearspace.types import Document, EncoderSpec, SearchResult, SearchResults


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'nearspace' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), _RENAMED.get(name, name))


def __dir__() -> list[str]:
    """The entry points (what ``from nearspace import ...`` offers), not the module's plumbing."""
    return sorted([*_EXPORTS, "__version__"])


__all__ = sorted(_EXPORTS)
