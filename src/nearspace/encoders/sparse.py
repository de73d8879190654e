"""Keyword baselines behind the encoder protocol: one-hot bag-of-words and TF-IDF.

They must be fitted on a corpus first (the vocabulary is the space). ``encode`` returns
dense unit rows to honour the protocol; ``encode_sparse`` keeps the scipy matrix for
large vocabularies and linear models.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from nearspace.encoders.base import BaseEncoder, check_texts, normalize_rows


class _FittedVectorizerEncoder(BaseEncoder):
    """Kind ``onehot``/``tfidf``: the spec reopens an unfitted baseline (the vocabulary is not
    stored), so these are for side-by-side comparisons, not for a stored collection."""

    name = "sparse"

    def __init__(self, vectorizer) -> None:
        self.vectorizer = vectorizer
        self.fitted = False

    @property
    def dim(self) -> int:
        if not self.fitted:
            raise RuntimeError(f"{self.name} encoder is not fitted: call fit(corpus) first")
        return len(self.vectorizer.vocabulary_)

    def fit(self, corpus: Sequence[str]) -> "_FittedVectorizerEncoder":
        texts = check_texts(corpus)
        if not texts:
            raise ValueError(f"cannot fit the {self.name} encoder on an empty corpus")
        self.vectorizer.fit(texts)
        self.fitted = True
        return self

    def encode_sparse(self, texts: Sequence[str]):
        if not self.fitted:
            raise RuntimeError(f"{self.name} encoder is not fitted: call fit(corpus) first")
        return self.vectorizer.transform(check_texts(texts))

    def encode(self, texts: Sequence[str], *, batch_size: int = 64,
               show_progress: bool | None = None) -> np.ndarray:
        matrix = self.encode_sparse(texts)
        return normalize_rows(matrix.toarray())


class OneHotEncoder(_FittedVectorizerEncoder):
    """Binary bag-of-words: each vocabulary word is one dimension, present or not."""

    name = kind = "onehot"

    def __init__(self, *, max_features: int | None = 20000, lowercase: bool = True) -> None:
        from sklearn.feature_extraction.text import CountVectorizer

        super().__init__(CountVectorizer(binary=True, max_features=max_features, lowercase=lowercase))


class TfidfEncoder(_FittedVectorizerEncoder):
    """TF-IDF weighted bag of words and bigrams with sublinear term frequency."""

    name = kind = "tfidf"

    def __init__(self, *, max_features: int | None = 50000, ngram_range: tuple[int, int] = (1, 2),
                 sublinear_tf: bool = True) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer

        super().__init__(TfidfVectorizer(max_features=max_features, ngram_range=ngram_range,
                                         sublinear_tf=sublinear_tf))
