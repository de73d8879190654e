"""scikit-learn: TextEmbedder in a Pipeline and GridSearchCV on the example corpus (real model),
clone/pickle without the model, and scikit-learn's own estimator checks that apply to text input.

``check_estimator`` itself skips every check for an estimator whose input tags say "text,
not a 2-D numeric array" (it cannot generate text data), so the applicable checks are run one
by one below. Not applicable, because they feed random float matrices (or sparse / complex /
NaN matrices) as X and assert numeric-array behaviour: check_fit_score_takes_y,
check_estimators_overwrite_params, check_dont_overwrite_parameters, check_estimators_fit_returns_self,
check_readonly_memmap_input, check_n_features_in_after_fitting, check_positive_only_tag_during_fit,
check_estimators_dtypes, check_complex_data, check_dtype_object, check_estimators_empty_data_messages,
check_pipeline_consistency, check_estimators_nan_inf, check_estimator_sparse_tag/array/matrix,
check_estimators_pickle, check_f_contiguous_array_estimator, check_transformer_data_not_an_array,
check_transformer_general, check_transformers_unfitted_stateless, check_methods_sample_order_invariance,
check_methods_subset_invariance, check_fit2d_1sample, check_fit2d_1feature, check_dict_unchanged,
check_fit_idempotent, check_fit_check_is_fitted, check_n_features_in, check_fit2d_predict1d.
The properties the important ones guard (fit returns self, idempotent fit, pickling, sample-order
and subset invariance, stateless transform before fit, pipeline consistency) are tested here on text.
"""
from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.utils import estimator_checks

from nearspace.integrations.sklearn import TextEmbedder

APPLICABLE_CHECKS = [
    "check_estimator_cloneable", "check_estimator_tags_renamed", "check_valid_tag_types",
    "check_estimator_repr", "check_no_attributes_set_in_init", "check_do_not_raise_errors_in_init_or_set_params",
    "check_mixin_order", "check_transformer_n_iter", "check_parameters_default_constructible",
    "check_get_params_invariance", "check_set_params", "check_fit1d",
]


@pytest.mark.parametrize("check_name", APPLICABLE_CHECKS)
def test_sklearn_estimator_check(check_name):
    getattr(estimator_checks, check_name)("TextEmbedder", TextEmbedder())


@pytest.fixture(scope="module")
def corpus(example_docs):
    texts = [f"{d['title']}. {d['text']}" for d in example_docs]
    return texts, np.array([d["metadata"]["topic"] for d in example_docs])


def test_transform_is_the_bundled_encoder(corpus, encoder):
    texts, _ = corpus
    emb = TextEmbedder()
    assert emb.fit(texts) is emb and emb.n_features_out_ == encoder.dim
    out = emb.transform(texts[:5])
    assert out.shape == (5, encoder.dim) and out.dtype == np.float32
    np.testing.assert_allclose(out, encoder.encode(texts[:5]), atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    # stateless: transform before fit works; order and subsets do not change a row
    np.testing.assert_allclose(TextEmbedder().transform(texts[4::-1]), out[::-1], atol=1e-5)
    np.testing.assert_allclose(emb.transform(texts[2:3]), out[2:3], atol=1e-5)
    # a single-column 2-D input (what ColumnTransformer passes) equals the 1-D input
    np.testing.assert_allclose(emb.transform(np.array(texts[:5], dtype=object)[:, None]), out, atol=1e-6)
    assert list(emb.get_feature_names_out()[:2]) == ["textembedder0", "textembedder1"]


def test_pipeline_and_grid_search_classify_topics(example_docs):
    # titles only: short texts keep the ~20 encodes of a grid search quick on a shared CPU
    texts, labels = [d["title"] for d in example_docs], np.array([d["metadata"]["topic"] for d in example_docs])
    cv = StratifiedKFold(n_splits=2, shuffle=True, random_state=0)
    pipe = make_pipeline(TextEmbedder(), LogisticRegression(C=10.0, max_iter=2000))
    accuracy = cross_val_score(pipe, texts, labels, cv=cv).mean()
    # 15 balanced topics, 2 training texts per topic per fold: chance is 0.067
    assert accuracy > 0.4, accuracy  # six times chance, from two examples per class
    grid = GridSearchCV(pipe, {"logisticregression__C": [0.01, 10.0], "textembedder__prefix": ["", "topic: "]},
                        cv=cv).fit(texts, labels)
    assert grid.best_params_["logisticregression__C"] == 10.0  # heavy L2 on unit vectors underfits
    assert grid.best_score_ >= accuracy - 0.05
    assert (grid.predict(texts) == labels).mean() > 0.95


def test_clone_and_pickle_carry_parameters_not_the_model(corpus):
    texts, _ = corpus
    emb = TextEmbedder(batch_size=8, prefix="x: ")
    before = emb.transform(texts[:3])
    blob = pickle.dumps(emb)
    assert len(blob) < 2_000  # the 90 MB model is not in it
    restored = pickle.loads(blob)
    assert restored.get_params() == emb.get_params()
    np.testing.assert_allclose(restored.transform(texts[:3]), before, atol=1e-6)
    cloned = clone(emb)
    assert cloned.get_params() == emb.get_params() and "_loaded" not in cloned.__dict__


@pytest.mark.parametrize("bad, message", [
    ("one string", "not a single string"),
    ([["a", "b"]], "one text per sample"),
    (["ok", 3], "sample 1 is int"),
])
def test_bad_input_is_one_clear_error(bad, message):
    with pytest.raises(ValueError, match=message):
        TextEmbedder().transform(bad)
