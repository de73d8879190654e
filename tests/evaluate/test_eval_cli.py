"""``nearspace eval / tune / adapt`` end to end on a small BEIR folder made from the examples."""
from __future__ import annotations

import json
import shutil

import pytest

from tests.cli.test_cli import run
from tests.conftest import EXAMPLES, require_data
from tests.rerank.test_rerank import tiny_cross_encoder  # noqa: F401 (fixture)

QUERIES = {
    "q1": ("how to reduce overfitting in neural networks", "regularization-techniques"),
    "q2": ("finding planets around other stars", "exoplanet-transit-method"),
    "q3": ("what happens when a massive star collapses", "what-are-black-holes"),
    "q4": ("making bread with a natural starter", None),
    "q5": ("why printed books spread so quickly in europe", "gutenberg-printing-press"),
    "q6": ("newton's laws", "newtons-laws-of-motion"),
}


@pytest.fixture(scope="module")
def beir_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("mini-beir") / "mini"
    (root / "qrels").mkdir(parents=True)
    shutil.copy(EXAMPLES, root / "corpus.jsonl")
    docs = [json.loads(line) for line in EXAMPLES.read_text().splitlines()]
    bread = next(d["id"] for d in docs if "sourdough" in d["text"].lower())
    with (root / "queries.jsonl").open("w") as handle:
        for qid, (text, _) in QUERIES.items():
            handle.write(json.dumps({"_id": qid, "text": text}) + "\n")
    splits = {"train": ["q1", "q2", "q3"], "dev": ["q4"], "test": ["q5", "q6", "q1"]}
    for split, qids in splits.items():
        lines = ["query-id\tcorpus-id\tscore"]
        for qid in qids:
            lines.append(f"{qid}\t{QUERIES[qid][1] or bread}\t1")
        (root / "qrels" / f"{split}.tsv").write_text("\r\n".join(lines) + "\r\n")
    return root


def test_eval_json_has_every_mode_and_metric(beir_dir, tmp_path):
    db = tmp_path / "eval.db"
    out = json.loads(run("--store", str(db), "eval", str(beir_dir), "--json").stdout)
    assert {"keyword", "dense", "hybrid"} <= set(out)
    for metrics in out.values():
        assert {"ndcg@10", "recall@100", "mrr@10", "map@100"} <= set(metrics)
        assert all(0.0 <= metrics[k] <= 1.0 for k in ("ndcg@10", "recall@100", "mrr@10", "map@100"))
    assert out["dense"]["mrr@10"] > out["keyword"]["mrr@10"] or out["dense"]["mrr@10"] == 1.0
    # second run: the corpus is already stored, nothing is re-encoded
    again = run("--store", str(db), "eval", str(beir_dir), "--json")
    assert "indexed" not in again.stderr
    second = json.loads(again.stdout)["dense"]
    assert {k: second[k] for k in ("ndcg@10", "mrr@10")} == pytest.approx({k: out["dense"][k] for k in ("ndcg@10", "mrr@10")})


def test_tune_refuses_test_and_stores_its_choice(beir_dir, tmp_path):
    db = tmp_path / "tune.db"
    refused = run("--store", str(db), "tune", str(beir_dir), "--split", "test", check=False)
    assert refused.returncode == 1 and "refusing to tune on test" in refused.stderr
    report = json.loads(run("--store", str(db), "tune", str(beir_dir), "--json").stdout)
    assert report["fusion"]["method"] in ("rrf", "convex", "adaptive") and "test" in report
    info = json.loads(run("--store", str(db), "info", "--json").stdout)
    stored = info["collections"][0]["config"].get("fusion")
    # stored only when it beat the default where it was checked; otherwise the default stands
    assert report["stored"] == (report["held_out_ndcg@10"] > report["default_held_out_ndcg@10"])
    assert (stored or {}).get("tuned_on") == ("mini/dev" if report["stored"] else None)
    evaluated = json.loads(run("--store", str(db), "eval", str(beir_dir), "--json").stdout)
    assert ("hybrid-tuned" in evaluated) == report["stored"]


def test_sts_spearman_matches_published_range():
    path = require_data("sts", "stsbenchmark", "sts-test.csv")
    out = json.loads(run("eval", "sts", str(path), "--json").stdout)
    # all-MiniLM-L6-v2 on STS-B test: published about 0.82 Spearman (sentence-transformers model card / MTEB)
    assert out["pairs"] == 1379
    assert 0.80 <= out["spearman"] <= 0.85


def test_empty_documents_are_skipped_with_a_count_and_strict_refuses(beir_dir, tmp_path):
    root = tmp_path / "with-empty"
    shutil.copytree(beir_dir, root)
    with (root / "corpus.jsonl").open("a") as handle:
        handle.write(json.dumps({"_id": "471", "title": "", "text": ""}) + "\n")
        handle.write(json.dumps({"_id": "472", "title": "Only a title about telescopes", "text": ""}) + "\n")
    db = tmp_path / "e.db"
    done = run("--store", str(db), "eval", str(root), "--json")
    out = json.loads(done.stdout)
    assert out["skipped_documents"]["count"] == 1 and "'471'" in out["skipped_documents"]["examples"][0]
    assert "skipped 1 unusable corpus row" in done.stderr
    assert out["keyword"]["ndcg@10"] > 0  # the evaluation ran
    assert json.loads(run("--store", str(db), "info", "--json").stdout)["collections"][0]["count"] == 61
    refused = run("--store", str(tmp_path / "strict.db"), "eval", str(root), "--strict", check=False)
    assert refused.returncode == 1 and "text is empty" in refused.stderr


def test_eval_reports_each_mode_with_and_without_a_reranker(beir_dir, tmp_path, tiny_cross_encoder):
    db = tmp_path / "rerank.db"
    out = json.loads(run("--store", str(db), "eval", str(beir_dir), "--json", "--rerank", f"ce:{tiny_cross_encoder}",
                         "--rerank-k", "20").stdout)
    for mode in ("keyword", "dense", "hybrid"):
        assert {mode, f"{mode}+rerank"} <= set(out)
        # only the top 20 are reordered: what the first stage found by depth 100 is unchanged
        assert out[f"{mode}+rerank"]["recall@100"] == pytest.approx(out[mode]["recall@100"])
        assert out[f"{mode}+rerank"]["queries/s"] < out[mode]["queries/s"]  # the reranker's cost is counted
    # a random cross-encoder is a bad reranker: the table shows it losing to the plain modes
    assert out["dense+rerank"]["mrr@10"] <= out["dense"]["mrr@10"]
