import numpy as np
import pytest

from nearspace.encoders import Encoder, load_encoder

CORPUS = ["the cat sat on the mat", "dogs chase cats", "stock markets fell sharply today"]


@pytest.mark.parametrize("name", ["onehot", "tfidf"])
def test_sparse_baselines_follow_the_protocol(name):
    enc = load_encoder(name).fit(CORPUS)
    assert isinstance(enc, Encoder)
    vectors = enc.encode(["the cat", "markets"])
    assert vectors.shape == (2, enc.dim) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0)
    # keyword spaces only know shared words: "feline" shares none with anything
    assert not enc.encode(["feline"]).any()


def test_onehot_is_binary_and_tfidf_weights_rare_words():
    onehot = load_encoder("onehot").fit(CORPUS)
    counts = onehot.encode_sparse(["the the the cat"]).toarray()
    assert set(np.unique(counts)) <= {0, 1}
    tfidf = load_encoder("tfidf").fit(CORPUS + ["the end"])
    row = tfidf.encode(["the markets"])[0]
    vocab = tfidf.vectorizer.vocabulary_
    assert row[vocab["markets"]] > row[vocab["the"]]


def test_unfitted_baseline_says_so():
    with pytest.raises(RuntimeError, match="fit"):
        load_encoder("tfidf").encode(["x"])
