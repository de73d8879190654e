"""Classification on embeddings, next to the keyword baselines it should beat.

Three ways to put labels on text with a sentence encoder:

* ``logreg``: logistic regression on the embeddings, its regularisation ``C`` chosen by
  stratified cross-validation on the training data only;
* ``knn``: similarity-weighted k-nearest-neighbour voting over labelled examples, ``k``
  chosen by leave-one-out on the training data;
* ``zero-shot``: no training at all; each text takes the label whose name (or short
  description) embeds closest to it.

``evaluate`` runs them side by side with the same logistic regression on one-hot
(binary bag-of-words) and TF-IDF features. ``fit_collection`` trains on a collection's
labelled documents and stores the model with the collection (one transaction).
"""
from __future__ import annotations

import io
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from nearspace.analyze.data import check_classes, load_collection
from nearspace.errors import InputError

ARTIFACT = "classifier"
METHODS = ("logreg", "knn", "zero-shot")
VARIANTS = ("embedding", "tfidf", "onehot", "knn", "zero-shot")
#: C grid for cross-validation; unit-length embeddings need large C (weak regularisation)
C_GRID = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
K_GRID = (1, 3, 5, 10, 20, 30)


# -- building blocks -------------------------------------------------------------------------
def label_text(label: str) -> str:
    """``card_arrival`` -> ``card arrival``: label names as the encoder should read them."""
    return " ".join(label.replace("_", " ").replace("-", " ").split())


def fit_logistic(features, labels: Sequence[str], *, grid: Sequence[float] = C_GRID, folds: int = 5,
                 seed: int = 0, max_iter: int = 2000):
    """Logistic regression with ``C`` chosen by stratified k-fold CV (accuracy) on ``features``.

    Returns ``(model, chosen C, CV accuracy)``. Folds shrink to the smallest class size (at
    least 2), so 5 examples per class still gets a 5-fold choice; above 5,000 examples 3 folds
    are used, because each fit of a 50,000-feature TF-IDF model takes tens of seconds there.
    """
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    labels = np.asarray(labels)
    smallest = min(Counter(labels.tolist()).values())
    if len(labels) > 5000:
        folds = min(folds, 3)  # thousands of held-out examples per fold already rank C reliably
    n_folds = max(2, min(folds, smallest))
    splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    grid = sorted(grid)
    correct = np.zeros(len(grid))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # large C on separable folds: accuracy is what counts
        for train_idx, test_idx in splitter.split(np.zeros(len(labels)), labels):
            # walk C upwards, each fit starting from the previous solution: several times faster
            model = LogisticRegression(max_iter=max_iter, warm_start=True)
            for j, c in enumerate(grid):
                model.set_params(C=c).fit(features[train_idx], labels[train_idx])
                correct[j] += float((model.predict(features[test_idx]) == labels[test_idx]).sum())
        scores = correct / len(labels)
        best = int(np.flatnonzero(scores >= scores.max() - 1e-9)[0])  # ties keep the smaller C: simpler model
        model = LogisticRegression(C=grid[best], max_iter=max_iter).fit(features, labels)
    return model, grid[best], float(scores[best])


def nearest_examples(queries: np.ndarray, examples: np.ndarray, k: int, *, exclude_self: bool = False,
                     block: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Indices and cosines of each query's ``k`` most similar examples, best first."""
    k = min(k, len(examples) - (1 if exclude_self else 0))
    idx = np.empty((len(queries), k), dtype=np.int64)
    sims_out = np.empty((len(queries), k), dtype=np.float32)
    for start in range(0, len(queries), block):
        sims = queries[start:start + block] @ examples.T
        if exclude_self:
            sims[np.arange(len(sims)), np.arange(start, start + len(sims))] = -np.inf
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        vals = np.take_along_axis(sims, top, axis=1)
        order = np.argsort(-vals, axis=1, kind="stable")
        idx[start:start + len(sims)] = np.take_along_axis(top, order, axis=1)
        sims_out[start:start + len(sims)] = np.take_along_axis(vals, order, axis=1)
    return idx, sims_out


def vote(idx: np.ndarray, sims: np.ndarray, codes: np.ndarray, n_classes: int, k: int) -> np.ndarray:
    """Per-class vote: the summed cosine of the ``k`` nearest examples of each class."""
    k = min(k, idx.shape[1])
    weights = np.clip(sims[:, :k], 0, None).astype(np.float64) + 1e-6  # ties fall to the nearer examples
    out = np.zeros((len(idx), n_classes), dtype=np.float64)
    rows = np.repeat(np.arange(len(idx)), k)
    np.add.at(out, (rows, codes[idx[:, :k]].ravel()), weights.ravel())
    return out


def knn_scores(queries: np.ndarray, examples: np.ndarray, labels: Sequence[str], classes: Sequence[str], k: int,
               *, exclude_self: bool = False) -> np.ndarray:
    """Similarity-weighted k-nearest-neighbour votes, one column per class."""
    index = {c: i for i, c in enumerate(classes)}
    codes = np.array([index[label] for label in labels])
    idx, sims = nearest_examples(queries, examples, k, exclude_self=exclude_self)
    return vote(idx, sims, codes, len(classes), k)


def choose_k(vectors: np.ndarray, labels: Sequence[str], *, grid: Sequence[int] = K_GRID) -> tuple[int, float]:
    """``k`` with the best leave-one-out accuracy on the training examples themselves."""
    classes = sorted(set(labels))
    position = {c: i for i, c in enumerate(classes)}
    codes = np.array([position[label] for label in labels])
    usable = [k for k in grid if k < len(vectors)] or [1]
    idx, sims = nearest_examples(vectors, vectors, max(usable), exclude_self=True)  # one pass for every k
    best_k, best = usable[0], -1.0
    for k in usable:
        acc = float((vote(idx, sims, codes, len(classes), k).argmax(1) == codes).mean())
        if acc > best + 1e-9:
            best_k, best = k, acc
    return best_k, best


def zero_shot_vectors(encoder, classes: Sequence[str], descriptions: Mapping[str, str] | None = None) -> np.ndarray:
    """One unit vector per class from its description, or its name read as words."""
    descriptions = descriptions or {}
    return encoder.encode([descriptions.get(c) or label_text(c) for c in classes], show_progress=False)


def scores_report(truth: Sequence[str], predicted: Sequence[str]) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score

    return {"accuracy": float(accuracy_score(truth, predicted)),
            "macro_f1": float(f1_score(truth, predicted, average="macro", zero_division=0))}


# -- side-by-side evaluation -----------------------------------------------------------------
def evaluate(train_texts: Sequence[str], train_labels: Sequence[str], test_texts: Sequence[str],
             test_labels: Sequence[str], *, encoder=None, variants: Sequence[str] = VARIANTS,
             descriptions: Mapping[str, str] | None = None, seed: int = 0,
             train_vectors: np.ndarray | None = None, test_vectors: np.ndarray | None = None,
             encode_seconds: tuple[float, float] | None = None) -> dict[str, dict[str, Any]]:
    """Accuracy, macro-F1, fit and predict seconds for each variant, keyed by variant name.

    Times include building the features: encoding the texts for the embedding variants
    (``encode_train_s`` / ``encode_test_s`` show that share), fitting the vocabulary for the
    keyword ones, and cross-validating ``C`` or ``k``. Pre-computed vectors may be passed
    (with the seconds they took) so a benchmark encodes once.
    """
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise InputError(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    if not test_texts:
        raise InputError("the test set is empty")
    check_classes(train_labels)
    results: dict[str, dict[str, Any]] = {}
    dense = [v for v in variants if v in ("embedding", "knn", "zero-shot")]
    enc_train = enc_test = 0.0
    if dense:
        if encoder is None:
            from nearspace.encoders import load_encoder

            encoder = load_encoder()
        if train_vectors is None and any(v != "zero-shot" for v in dense):
            started = time.perf_counter()
            train_vectors = encoder.encode(list(train_texts), show_progress=False)
            enc_train = time.perf_counter() - started
        if test_vectors is None:
            started = time.perf_counter()
            test_vectors = encoder.encode(list(test_texts), show_progress=False)
            enc_test = time.perf_counter() - started
        if encode_seconds is not None:
            enc_train, enc_test = encode_seconds
    classes = sorted(set(train_labels))
    for variant in variants:
        extra: dict[str, Any] = {}
        if variant in ("tfidf", "onehot"):
            from nearspace.encoders import load_encoder

            started = time.perf_counter()
            vectorizer = load_encoder(variant).fit(list(train_texts))
            model, c, cv = fit_logistic(vectorizer.encode_sparse(list(train_texts)), train_labels, seed=seed)
            fit_s = time.perf_counter() - started
            started = time.perf_counter()
            predicted = model.predict(vectorizer.encode_sparse(list(test_texts)))
            predict_s = time.perf_counter() - started
            extra = {"C": c, "cv_accuracy": cv, "features": vectorizer.dim}
        elif variant == "embedding":
            started = time.perf_counter()
            model, c, cv = fit_logistic(train_vectors, train_labels, seed=seed)
            fit_s = time.perf_counter() - started + enc_train
            started = time.perf_counter()
            predicted = model.predict(test_vectors)
            predict_s = time.perf_counter() - started + enc_test
            extra = {"C": c, "cv_accuracy": cv, "features": int(train_vectors.shape[1])}
        elif variant == "knn":
            started = time.perf_counter()
            k, loo = choose_k(train_vectors, train_labels)
            fit_s = time.perf_counter() - started + enc_train
            started = time.perf_counter()
            votes = knn_scores(test_vectors, train_vectors, train_labels, classes, k)
            predicted = [classes[i] for i in votes.argmax(1)]
            predict_s = time.perf_counter() - started + enc_test
            extra = {"k": k, "loo_accuracy": loo}
        else:  # zero-shot: the label names are the only training signal
            started = time.perf_counter()
            label_vectors = zero_shot_vectors(encoder, classes, descriptions)
            fit_s = time.perf_counter() - started
            started = time.perf_counter()
            predicted = [classes[i] for i in (test_vectors @ label_vectors.T).argmax(1)]
            predict_s = time.perf_counter() - started + enc_test
            extra = {"label_source": "descriptions" if descriptions else "label names"}
        results[variant] = {**scores_report(test_labels, predicted), "fit_s": fit_s, "predict_s": predict_s, **extra}
        if variant in ("embedding", "knn", "zero-shot"):
            results[variant]["encode_train_s"] = enc_train if variant != "zero-shot" else 0.0
            results[variant]["encode_test_s"] = enc_test
    return results


def subsample_per_class(texts: Sequence[str], labels: Sequence[str], per_class: int, seed: int = 0) -> list[int]:
    """Indices of ``per_class`` random examples of every class (all of a smaller class)."""
    rng = np.random.default_rng(seed)
    by_class: dict[str, list[int]] = {}
    for i, label in enumerate(labels):
        by_class.setdefault(label, []).append(i)
    chosen: list[int] = []
    for label in sorted(by_class):
        members = by_class[label]
        chosen.extend(rng.choice(members, size=min(per_class, len(members)), replace=False).tolist())
    return sorted(chosen)


# -- a stored classifier ----------------------------------------------------------------------
@dataclass
class Prediction:
    text: str
    label: str
    score: float
    top: list[tuple[str, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "label": self.label, "score": self.score,
                "top": [{"label": label, "score": score} for label, score in self.top]}


@dataclass
class Classifier:
    """A fitted classifier as stored with a collection."""

    method: str
    classes: list[str]
    meta: dict[str, Any]
    arrays: dict[str, np.ndarray]

    def scores(self, vectors: np.ndarray, collection=None) -> np.ndarray:
        """Per-class scores (probabilities for logreg, vote shares for knn, cosines for zero-shot)."""
        if self.method == "logreg":
            logits = vectors @ self.arrays["coef"].T + self.arrays["intercept"]
            if logits.shape[1] == 1:  # binary: scikit-learn keeps one column for the second class
                logits = np.hstack([np.zeros_like(logits), logits])
            logits -= logits.max(axis=1, keepdims=True)
            probs = np.exp(logits)
            return probs / probs.sum(axis=1, keepdims=True)
        if self.method == "zero-shot":
            return vectors @ self.arrays["labels"].T
        if collection is None:
            raise InputError("a k-nearest-neighbour classifier predicts from its collection; pass it")
        view = load_collection(collection)
        labels = view.field(self.meta["label_field"])
        keep = [i for i, label in enumerate(labels) if label is not None and str(label) in self.classes]
        if len(keep) < 1:
            raise InputError(f"collection {collection.name!r} no longer holds labelled examples")
        votes = knn_scores(vectors, view.vectors[keep], [str(labels[i]) for i in keep], self.classes,
                           int(self.meta["k"]))
        return votes / np.maximum(votes.sum(axis=1, keepdims=True), 1e-12)

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        np.savez(buffer, **self.arrays)  # plain arrays, no pickle: loading never runs code
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, value: bytes, meta: dict[str, Any]) -> "Classifier":
        with np.load(io.BytesIO(value), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        return cls(meta["method"], list(meta["classes"]), meta, arrays)


def labelled_examples(collection, label_field: str = "label", *, allow_unlabelled: bool = False):
    """``(view, indices, labels)`` of the collection's documents that carry ``label_field``."""
    view = load_collection(collection)
    if len(view) == 0:
        raise InputError(f"collection {collection.name!r} is empty")
    values = view.field(label_field)
    keep = [i for i, v in enumerate(values) if v is not None and not isinstance(v, (dict, list)) and str(v).strip()]
    if not keep:
        raise InputError(f"no document in {collection.name!r} has a '{label_field}' metadata field to learn from")
    if len(keep) < len(view) and not allow_unlabelled:
        missing = [view.ids[i] for i in range(len(view)) if i not in set(keep)]
        raise InputError(f"{len(missing)} of {len(view)} documents in {collection.name!r} have no '{label_field}' "
                         f"(e.g. {missing[0]!r}); label them, or pass allow_unlabelled / --allow-unlabelled "
                         "to train on the labelled ones only")
    return view, keep, [str(values[i]) for i in keep]


def fit_collection(collection, *, method: str = "logreg", label_field: str = "label",
                   descriptions: Mapping[str, str] | None = None, allow_unlabelled: bool = False,
                   seed: int = 0, save: bool = True) -> Classifier:
    """Train on the collection's labelled documents and store the model with it.

    Validation (labels present, at least 2 classes, at least 2 examples per class for
    ``logreg``/``knn``) happens before anything is written; the model is stored as one
    artifact in one transaction, replacing any earlier classifier.
    """
    if method not in METHODS:
        raise InputError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
    view, keep, labels = labelled_examples(collection, label_field, allow_unlabelled=allow_unlabelled)
    counts = check_classes(labels, minimum=1 if method == "zero-shot" else 2,
                           where=f"collection {collection.name!r}")
    classes = sorted(counts)
    vectors = view.vectors[keep]
    started = time.perf_counter()
    meta: dict[str, Any] = {"method": method, "classes": classes, "label_field": label_field,
                            "examples": len(keep), "encoder": collection.backend.encoder}
    if method == "logreg":
        model, c, cv = fit_logistic(vectors, labels, seed=seed)
        if list(model.classes_) != classes:
            raise AssertionError("scikit-learn reordered the classes")  # sorted both ways: never expected
        arrays = {"coef": model.coef_.astype(np.float32), "intercept": model.intercept_.astype(np.float32)}
        meta.update(C=c, cv_accuracy=cv)
    elif method == "knn":
        k, loo = choose_k(vectors, labels)
        arrays = {}
        meta.update(k=k, loo_accuracy=loo)
    else:
        _refuse_zero_shot(collection)
        arrays = {"labels": zero_shot_vectors(collection.encoder, classes, descriptions).astype(np.float32)}
        meta.update(descriptions={c: d for c, d in (descriptions or {}).items() if c in counts})
    meta["fit_s"] = time.perf_counter() - started
    clf = Classifier(method, classes, meta, arrays)
    if save:
        collection.backend.put_artifact(ARTIFACT, clf.to_bytes(), meta)
    return clf


def zero_shot_classifier(collection, labels: Sequence[str], descriptions: Mapping[str, str] | None = None,
                         *, save: bool = True) -> Classifier:
    """A zero-shot classifier from label names alone (no labelled documents needed)."""
    _refuse_zero_shot(collection)
    classes = sorted(dict.fromkeys(str(label) for label in labels if str(label).strip()))
    if len(classes) < 2:
        raise InputError("zero-shot classification needs at least 2 labels")
    meta = {"method": "zero-shot", "classes": classes, "label_field": "label", "examples": 0,
            "encoder": collection.backend.encoder, "descriptions": dict(descriptions or {})}
    clf = Classifier("zero-shot", classes, meta,
                     {"labels": zero_shot_vectors(collection.encoder, classes, descriptions).astype(np.float32)})
    if save:
        collection.backend.put_artifact(ARTIFACT, clf.to_bytes(), meta)
    return clf


def _refuse_zero_shot(collection) -> None:
    if _own_vectors(collection):
        raise InputError(f"zero-shot embeds the label names with a model, and collection {collection.name!r} holds "
                         "your own vectors without one: label some items and use logreg or knn")


def load_classifier(collection) -> Classifier:
    stored = collection.backend.get_artifact(ARTIFACT)
    if stored is None:
        raise InputError(f"collection {collection.name!r} has no classifier yet; run `nearspace classify fit` first")
    return Classifier.from_bytes(*stored)


def _own_vectors(collection) -> bool:
    return bool(getattr(collection, "vectors_only", False))


def predict(collection, texts: Sequence[str], *, top: int = 3, classifier: Classifier | None = None) -> list[Prediction]:
    """Label ``texts`` with the collection's stored classifier (encoded with its encoder)."""
    texts = list(texts)
    if not texts or any(not isinstance(t, str) or not t.strip() for t in texts):
        raise InputError("give at least one non-empty text to classify")
    if _own_vectors(collection):
        raise InputError(f"collection {collection.name!r} holds your own vectors, with no model to encode texts: "
                         "classify stored items by id instead (predict_ids, or `classify predict --id ID`)")
    clf = classifier or load_classifier(collection)
    vectors = collection.encoder.encode(texts, show_progress=False)
    return _predictions(clf, texts, clf.scores(vectors, collection), top)


def predict_ids(collection, ids: Sequence[str], *, top: int = 3,
                classifier: Classifier | None = None) -> list[Prediction]:
    """Label stored items by their stored vectors (no model needed: works on your own vectors);
    each prediction's ``text`` is the item's id."""
    ids = list(dict.fromkeys(ids))
    if not ids:
        raise InputError("give at least one stored id to classify")
    found = collection.vectors_of(ids)
    missing = [i for i in ids if i not in found]
    if missing:
        raise InputError(f"{len(missing)} id(s) are not stored in {collection.name!r}, e.g. {missing[0]!r}")
    clf = classifier or load_classifier(collection)
    vectors = np.vstack([found[i] for i in ids]).astype(np.float32)
    return _predictions(clf, ids, clf.scores(vectors, collection), top)


def _predictions(clf: Classifier, texts: Sequence[str], scores: np.ndarray, top: int) -> list[Prediction]:
    out = []
    for text, row in zip(texts, scores):
        order = np.argsort(-row)[:max(1, top)]
        out.append(Prediction(text, clf.classes[order[0]], float(row[order[0]]),
                              [(clf.classes[i], float(row[i])) for i in order]))
    return out


def describe(clf: Classifier) -> str:
    extra = {"logreg": lambda m: f"C={m['C']}, CV accuracy {m['cv_accuracy']:.3f}",
             "knn": lambda m: f"k={m['k']}, leave-one-out accuracy {m['loo_accuracy']:.3f}",
             "zero-shot": lambda m: "from label " + ("descriptions" if m.get("descriptions") else "names")}
    return (f"{clf.method} over {len(clf.classes)} classes from {clf.meta.get('examples', 0)} examples "
            f"({extra[clf.method](clf.meta)})")


def read_descriptions(path) -> dict[str, str]:
    """Label descriptions from JSON: ``{"label": "description"}``, or a list of label names."""
    from pathlib import Path

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: malformed JSON ({exc.msg})") from None
    if isinstance(data, list) and all(isinstance(x, str) for x in data):
        return {x: label_text(x) for x in data}
    if isinstance(data, dict) and all(isinstance(v, str) for v in data.values()):
        return {str(k): v for k, v in data.items()}
    raise InputError(f"{path}: expected a JSON object of label -> description, or a list of labels")
