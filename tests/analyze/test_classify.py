"""Classification on a small Banking77 subset: real model, real store, real scikit-learn."""
from __future__ import annotations

import json
import sqlite3
from collections import Counter

import numpy as np
import pytest

from nearspace.analyze import classify as C
from nearspace.analyze.data import read_labelled
from nearspace.errors import InputError
from tests.cli.test_cli import run
from tests.conftest import require_data

CLASSES = 8
TRAIN_PER_CLASS = 12
TEST_PER_CLASS = 10


def _take(path, labels: list[str], per_class: int) -> list[dict]:
    out, seen = [], Counter()
    for line in path.read_text().splitlines():
        row = json.loads(line)
        if row["label"] in labels and seen[row["label"]] < per_class:
            seen[row["label"]] += 1
            out.append(row)
    return out


@pytest.fixture(scope="module")
def banking():
    """Eight intents, 12 training and 10 test questions each (a few-shot setting)."""
    folder = require_data("classification", "banking77")
    labels = json.loads((folder / "labels.json").read_text())[:CLASSES]
    return _take(folder / "train.jsonl", labels, TRAIN_PER_CLASS), _take(folder / "test.jsonl", labels, TEST_PER_CLASS)


@pytest.fixture(scope="module")
def banking_vectors(banking, encoder):
    train, test = banking
    return encoder.encode([r["text"] for r in train]), encoder.encode([r["text"] for r in test])


def _labelled_collection(store, banking, banking_vectors, name="bank"):
    train, _ = banking
    coll = store.collection(name)
    coll.upsert(ids=[f"t{i}" for i in range(len(train))], texts=[r["text"] for r in train],
                metadatas=[{"label": r["label"]} for r in train], vectors=banking_vectors[0])
    return coll


def _artifacts(coll) -> list[tuple]:
    return coll.backend.data.conn.execute("SELECT name, version FROM artifacts WHERE collection_id = ? AND name != 'encoder_probe'",
                                  (coll.backend.data.cid,)).fetchall()


def test_every_variant_side_by_side_and_dense_wins_few_shot(banking, banking_vectors, encoder):
    train, test = banking
    results = C.evaluate([r["text"] for r in train], [r["label"] for r in train], [r["text"] for r in test],
                         [r["label"] for r in test], encoder=encoder, train_vectors=banking_vectors[0],
                         test_vectors=banking_vectors[1], encode_seconds=(1.0, 0.5))
    assert list(results) == ["embedding", "tfidf", "onehot", "knn", "zero-shot"]
    for name, r in results.items():
        assert 0 <= r["macro_f1"] <= 1 and r["fit_s"] >= 0 and r["predict_s"] >= 0, name
        assert r["accuracy"] > 2 / CLASSES, name  # well above chance (1/8)
    # with 12 examples per class the sentence encoder's prior knowledge should show
    assert results["embedding"]["accuracy"] > max(results["tfidf"]["accuracy"], results["onehot"]["accuracy"])
    assert results["embedding"]["C"] in C.C_GRID and results["knn"]["k"] in C.K_GRID
    assert results["embedding"]["fit_s"] >= 1.0 and results["embedding"]["encode_train_s"] == 1.0
    assert results["zero-shot"]["accuracy"] > 0.4  # label names alone, no training examples


def test_fit_store_reopen_predict(tmp_path, encoder, banking, banking_vectors):
    from nearspace import open_store

    _, test = banking
    with open_store(tmp_path / "s.db", encoder=encoder) as store:
        coll = _labelled_collection(store, banking, banking_vectors)
        clf = C.fit_collection(coll, method="logreg")
        assert clf.meta["C"] in C.C_GRID and len(clf.classes) == CLASSES
        version = coll.backend.artifact_version(C.ARTIFACT)
    with open_store(tmp_path / "s.db", encoder=encoder) as store:  # persisted with the store
        coll = store.get_collection("bank")
        assert coll.backend.artifact_version(C.ARTIFACT) == version
        predictions = C.predict(coll, [r["text"] for r in test], top=3)
        accuracy = np.mean([p.label == r["label"] for p, r in zip(predictions, test)])
        assert accuracy > 0.7
        assert all(len(p.top) == 3 and p.top[0][0] == p.label for p in predictions)
        assert all(abs(sum(s for _, s in p.top) - 1) < 1 for p in predictions)  # probabilities
        # k-NN replaces the stored model; it votes over the collection itself
        knn = C.fit_collection(coll, method="knn")
        assert knn.method == "knn" and coll.backend.artifact_version(C.ARTIFACT) > version
        knn_acc = np.mean([p.label == r["label"] for p, r in zip(C.predict(coll, [r["text"] for r in test]), test)])
        assert knn_acc > 0.6


def test_zero_shot_from_label_descriptions_needs_no_examples(store):
    coll = store.collection("support")
    coll.upsert(ids=["x"], texts=["placeholder"])
    descriptions = {"lost_card": "my card was lost or stolen", "exchange_rate": "currency exchange rates",
                    "top_up": "adding money to my account balance"}
    C.zero_shot_classifier(coll, list(descriptions), descriptions)
    got = [p.label for p in C.predict(coll, ["someone stole my card yesterday", "what is the euro to dollar rate",
                                             "how do I add money to my balance"])]
    assert got == ["lost_card", "exchange_rate", "top_up"]


def test_bad_labels_are_refused_and_nothing_is_stored(store, banking, banking_vectors, tmp_path):
    coll = _labelled_collection(store, banking, banking_vectors)
    before = _artifacts(coll)
    # a single class
    single = store.collection("single")
    single.upsert(ids=["a", "b", "c"], texts=["one", "two", "three"], metadatas=[{"label": "x"}] * 3,
                  vectors=banking_vectors[0][:3])
    with pytest.raises(InputError, match="single class"):
        C.fit_collection(single)
    # a class with one example
    coll.upsert(ids=["rare"], texts=["a rare intent"], metadatas=[{"label": "rare_intent"}],
                vectors=banking_vectors[0][:1])
    with pytest.raises(InputError, match="fewer than 2 examples: 'rare_intent'"):
        C.fit_collection(coll)
    coll.delete(["rare"])
    # a document without a label
    coll.upsert(ids=["nolabel"], texts=["no label here"], vectors=banking_vectors[0][:1])
    with pytest.raises(InputError, match="1 of 97 documents .* have no 'label'"):
        C.fit_collection(coll)
    assert _artifacts(coll) == before == [] and _artifacts(single) == []
    C.fit_collection(coll, allow_unlabelled=True, method="knn")  # the explicit opt-in works
    with pytest.raises(InputError, match="unknown method"):
        C.fit_collection(coll, method="svm")
    # files: unlabelled lines are reported with their line numbers
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "a", "label": "x"}\n{"text": "b"}\n{"text": "c", "label": ""}\n')
    with pytest.raises(InputError, match=r"2 line\(s\) have no 'label' \(line 2, 3\)"):
        read_labelled(path)


def test_classify_commands(tmp_path, banking):
    train, test = banking
    small = [r for r in train if r["label"] in {train[0]["label"], train[-1]["label"]}]
    train_path, test_path = tmp_path / "train.jsonl", tmp_path / "test.jsonl"
    train_path.write_text("".join(json.dumps(r) + "\n" for r in small))
    test_rows = [r for r in test if r["label"] in {small[0]["label"], small[-1]["label"]}]
    test_path.write_text("".join(json.dumps(r) + "\n" for r in test_rows))
    report = json.loads(run("classify", "eval", str(train_path), str(test_path), "--json").stdout)
    assert set(report) == {"embedding", "tfidf", "onehot", "knn", "zero-shot"}
    assert all({"accuracy", "macro_f1"} <= set(r) for r in report.values())
    assert report["embedding"]["accuracy"] >= 0.8

    db = tmp_path / "s.db"
    run("--store", str(db), "-c", "bank", "classify", "fit", str(train_path))
    got = json.loads(run("--store", str(db), "-c", "bank", "classify", "predict", test_rows[0]["text"],
                         test_rows[-1]["text"], "--json").stdout)
    assert [g["label"] for g in got] == [test_rows[0]["label"], test_rows[-1]["label"]]

    # bad input: one line without a label -> one-line error, the store is untouched
    bad = tmp_path / "bad.jsonl"
    bad.write_text(train_path.read_text() + '{"text": "unlabelled question"}\n')
    with sqlite3.connect(db) as conn:
        before = conn.execute("SELECT count(*), max(version) FROM docs, artifacts").fetchone()
    proc = run("--store", str(db), "-c", "bank", "classify", "fit", str(bad), check=False)
    assert proc.returncode == 1 and "have no 'label'" in proc.stderr and "Traceback" not in proc.stderr
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*), max(version) FROM docs, artifacts").fetchone() == before
    proc = run("--store", str(db), "-c", "nothing", "classify", "predict", "hello", check=False)
    assert proc.returncode == 1 and "unknown collection" in proc.stderr
