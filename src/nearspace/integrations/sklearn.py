"""scikit-learn: ``TextEmbedder``, a stateless transformer from texts to sentence vectors.

    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.linear_model import LogisticRegression
    >>> clf = make_pipeline(TextEmbedder(), LogisticRegression()).fit(texts, labels)

``fit`` learns nothing (the model is pre-trained); ``transform`` returns an ``(n, dim)``
float32 array of unit vectors. Input is one text per sample: a list, a 1-D array or Series,
or a single-column 2-D array/DataFrame (as ``ColumnTransformer`` passes it). The model is
loaded on first use and never pickled: a pickled or cloned embedder carries only its
parameters, and loads the (shared, cached) model again where it is used.
scikit-learn is a base dependency, so this needs no extra.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from nearspace.encoders import DEFAULT_ENCODER


class TextEmbedder(TransformerMixin, BaseEstimator):
    """Texts -> sentence embeddings with a nearspace encoder (the bundled model by default).

    Parameters: ``model`` (an encoder name nearspace can load), ``batch_size``,
    ``precision`` (``auto``/``fp32``/``bf16``), ``role`` (``"document"``, the default, or
    ``"query"``: which of the model's prompts applies, e.g. e5's ``"passage: "``/``"query: "``)
    and ``prefix`` (prepended to every text after that prompt).
    """

    def __init__(self, model: str = DEFAULT_ENCODER, batch_size: int = 64, precision: str = "auto",
                 prefix: str = "", role: str = "document") -> None:
        self.model = model
        self.batch_size = batch_size
        self.precision = precision
        self.prefix = prefix
        self.role = role

    # -- sklearn protocol ----------------------------------------------------------------
    def fit(self, X: Any, y: Any = None) -> "TextEmbedder":
        """No learning: checks the input and records the output width."""
        _texts(X)
        self.n_features_out_ = self._encoder().dim
        return self

    def transform(self, X: Any) -> np.ndarray:
        texts = _texts(X)
        encoder = self._encoder()
        if not texts:
            return np.zeros((0, encoder.dim), dtype=np.float32)
        if self.role not in ("document", "query"):
            from nearspace.errors import InputError

            raise InputError(f"role must be 'document' or 'query', got {self.role!r}")
        encode = encoder.encode_queries if self.role == "query" else encoder.encode_documents
        return encode([self.prefix + t for t in texts], batch_size=self.batch_size, show_progress=False)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.array([f"textembedder{i}" for i in range(self._encoder().dim)], dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # one string per sample; no numeric matrices, no sparse input
        tags.input_tags.two_d_array = False
        tags.input_tags.one_d_array = True
        tags.input_tags.string = True
        tags.requires_fit = False  # a pre-trained model: transform works before fit
        tags.transformer_tags.preserves_dtype = []
        return tags

    def __sklearn_is_fitted__(self) -> bool:
        return True

    # -- the model: loaded lazily, never pickled ----------------------------------------------
    def _encoder(self):
        from nearspace.encoders import load_encoder

        if not isinstance(self.batch_size, int) or isinstance(self.batch_size, bool) or self.batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {self.batch_size!r}")
        cached = self.__dict__.get("_loaded")
        if cached is None or cached[0] != (self.model, self.precision):
            cached = ((self.model, self.precision), load_encoder(self.model, precision=self.precision))
            self.__dict__["_loaded"] = cached
        return cached[1]

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state.pop("_loaded", None)
        return state


def _texts(X: Any) -> list[str]:
    """One text per sample from a list, 1-D array/Series or single-column 2-D input."""
    if isinstance(X, str):
        raise ValueError("TextEmbedder expects a list of texts (one per sample), not a single string; "
                         "wrap it in a list")
    if hasattr(X, "iloc") and getattr(X, "ndim", 1) == 2:  # DataFrame
        if X.shape[1] != 1:
            raise ValueError(f"TextEmbedder takes one text column; got a DataFrame with {X.shape[1]} columns")
        X = X.iloc[:, 0]
    array = np.asarray(X, dtype=object)
    if array.ndim == 2:
        if array.shape[1] != 1:
            raise ValueError(f"TextEmbedder takes one text per sample; got a 2-D array of shape {array.shape}")
        array = array[:, 0]
    if array.ndim != 1:
        raise ValueError(f"TextEmbedder takes one text per sample; got an array of shape {array.shape}")
    out = array.tolist()
    for i, text in enumerate(out):
        if not isinstance(text, str):
            raise ValueError(f"TextEmbedder: sample {i} is {type(text).__name__}, expected a string")
    return out
