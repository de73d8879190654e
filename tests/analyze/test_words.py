"""Word vectors learned from context with gensim, stored as a collection, and evaluated."""
from __future__ import annotations

import json
import random

import numpy as np
import pytest

from nearspace.analyze import words as W
from nearspace.errors import InputError
from tests.cli.test_cli import run
from tests.conftest import require_data

ANIMALS = ["cat", "dog", "horse", "cow", "sheep"]
FRUITS = ["apple", "banana", "pear", "plum", "cherry"]
TOOLS = ["hammer", "wrench", "saw", "drill", "chisel"]


def _corpus(n: int = 1500, seed: int = 0) -> list[str]:
    """Three word families that only ever appear in their own kinds of sentence."""
    rng = random.Random(seed)
    frames = [(ANIMALS, ["the {} eats hay in the barn", "a hungry {} sleeps near the farm fence",
                         "the farmer feeds the {} every morning"]),
              (FRUITS, ["she peeled the ripe {} for dessert", "a sweet {} grows on the orchard tree",
                        "he sliced the juicy {} into the salad"]),
              (TOOLS, ["the carpenter grabbed a heavy {} from the workshop", "use the steel {} to fix the bench",
                       "a rusty {} lay in the toolbox"])]
    out = []
    for _ in range(n):
        family, templates = rng.choice(frames)
        out.append(rng.choice(templates).format(rng.choice(family)) + ".")
    return out


@pytest.fixture(scope="module")
def toy() -> W.WordVectors:
    return W.train(_corpus(), dim=32, epochs=15, min_count=2, seed=0)


def test_words_in_the_same_contexts_end_up_near_each_other(toy):
    for family in (ANIMALS, FRUITS, TOOLS):
        for word in family:
            nearest = [w for w, _ in toy.similar(word, k=len(family) - 1)]
            assert len(set(nearest) & set(family)) >= len(family) - 2, (word, nearest)
    assert toy.meta["vocabulary"] == len(toy) and toy.meta["tokens"] > 5000
    with pytest.raises(InputError, match="not in the vocabulary .*'zebra'"):
        toy.similar("zebra")
    with pytest.raises(InputError, match="did you mean"):
        toy.analogy("cat", "dogg", "pear")


def test_stored_as_a_collection_of_words_and_replaced_atomically(store, toy):
    W.save_words(store, "toy.words", toy, source="toy corpus")
    data = store.db.collection("toy.words")
    assert W.is_words_collection(data) and data.count() == len(toy)
    assert data.get(["horse"])[0].metadata["count"] > 0
    loaded = W.load_words(store, "toy.words")
    assert loaded.words == toy.words and np.allclose(loaded.vectors, toy.vectors)
    got, expected = loaded.similar("cat", 3), toy.similar("cat", 3)
    assert [w for w, _ in got] == [w for w, _ in expected]
    assert [s for _, s in got] == pytest.approx([s for _, s in expected], abs=1e-6)
    # retraining on other text swaps the vocabulary in one step, with no leftovers
    smaller = W.train(_corpus(400, seed=1), dim=16, epochs=5, min_count=2)
    W.save_words(store, "toy.words", smaller)
    assert store.db.collection("toy.words").count() == len(smaller)
    assert [n for n in store.list_collections() if "toy" in n] == ["toy.words"]
    # a collection of documents is never overwritten
    docs = store.collection("notes")
    docs.upsert(ids=["a"], texts=["a note"], vectors=np.ones((1, 384), dtype=np.float32) / np.sqrt(384))
    with pytest.raises(InputError, match="holds documents, not word vectors"):
        W.save_words(store, "notes", toy)
    assert docs.count() == 1 and sorted(store.list_collections()) == ["notes", "toy.words"]


def test_a_corpus_too_small_to_learn_from_is_refused():
    with pytest.raises(InputError, match="need more text"):
        W.train(["just a few words here"], min_count=2)
    with pytest.raises(InputError, match="no words"):
        W.train(["...", "!!!"])


def test_evaluation_side_by_side_on_the_public_sets(encoder):
    folder = require_data("words")
    wv = W.train(_corpus(), dim=32, epochs=5, min_count=2)  # a tiny vocabulary: coverage is near zero
    ws = W.evaluate_similarity(W.read_pairs(folder / "wordsim353.tsv"), wv, encoder)
    assert ws["pairs"] == 353 and ws["covered"] < 10 and ws["coverage"] == ws["covered"] / 353
    sentence = ws["results"]["sentence encoder"]["spearman_all"]
    assert 0.5 < sentence < 0.95  # MiniLM reading single words still tracks human judgements
    simlex = W.evaluate_similarity(W.read_pairs(folder / "simlex999.txt"), None, None)
    assert simlex["pairs"] == 999
    assert simlex["results"]["one-hot"]["spearman_all"] is None  # constant: no ranking at all
    assert simlex["results"]["one-hot"]["distinct_pair_similarity"] == 0.0
    questions = W.read_analogies(folder / "questions-words.txt")
    assert len(questions) == 19544 and len({q[0] for q in questions}) == 14
    family = [q for q in questions if q[0] == "family"]  # 506 questions over 46 words: quick to encode
    analogies = W.evaluate_analogies(family, wv, encoder)
    assert analogies["one-hot"]["accuracy"] in (0.0, None)
    full = analogies["sentence encoder (closed, all questions)"]
    assert full["questions"] == full["covered"] == len(family) and 0.05 < full["accuracy"] < 0.95
    assert full["semantic"] == full["accuracy"] and full["syntactic"] is None


def test_analogy_protocol_on_planted_offsets():
    """b - a + c must land on d when the offsets are exactly shared."""
    rng = np.random.default_rng(0)
    base = {w: rng.normal(size=16) for w in ["man", "king", "paris", "france"]}
    gender = rng.normal(size=16)
    base["woman"] = base["man"] + gender
    base["queen"] = base["king"] + gender
    base["rome"] = rng.normal(size=16)
    base["italy"] = base["rome"] + (base["france"] - base["paris"])
    words = list(base)
    wv = W.WordVectors(words, np.array([base[w] for w in words], dtype=np.float32), [1] * len(words))
    assert wv.analogy("queen", "woman", "man")[0][0] == "king"
    questions = [("family", "man", "woman", "king", "queen"), ("capital-world", "paris", "france", "rome", "italy"),
                 ("capital-world", "paris", "france", "berlin", "germany")]
    result = W.analogy_accuracy(questions, wv.words, wv.vectors)
    assert result["covered"] == 2 and result["accuracy"] == 1.0 and result["semantic"] == 1.0


def test_words_commands(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(_corpus()))
    db = str(tmp_path / "s.db")
    proc = run("--store", db, "-c", "farm", "words", "train", str(corpus), "--dim", "32", "--epochs", "10",
               "--min-count", "2", "--json")
    meta = json.loads(proc.stdout)
    assert meta["collection"] == "farm.words" and meta["vocabulary"] > 20
    similar = json.loads(run("--store", db, "-c", "farm", "words", "similar", "banana", "--k", "3", "--json").stdout)
    assert len(similar) == 3 and all(-1 <= s["score"] <= 1 for s in similar)
    bad = run("--store", db, "-c", "farm", "words", "analogy", "king", "man", "woman", check=False)
    assert bad.returncode == 1 and "not in the vocabulary" in bad.stderr and "Traceback" not in bad.stderr
    weat = json.loads(run("--store", db, "bias", "--words", "farm.words", "--x", "cat,dog,horse",
                          "--y", "apple,pear,plum", "--a", "barn,farm,hay", "--b", "dessert,salad,orchard",
                          "--json").stdout)
    (result,) = weat["results"]
    assert result["effect_size"] > 1.0 and result["exact"]  # animals share contexts with the farm words
    empty = tmp_path / "empty.txt"
    empty.write_text("tiny\n")
    bad = run("--store", db, "-c", "farm", "words", "train", str(empty), check=False)
    assert bad.returncode == 1 and "need more text" in bad.stderr
    assert json.loads(run("--store", db, "info", "--json").stdout)["collections"][0]["count"] == meta["vocabulary"]
