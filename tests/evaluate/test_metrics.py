import pytest

from nearspace.evaluate.beir import load_qrels
from nearspace.evaluate.metrics import evaluate_run


def test_metrics_match_hand_computed_values():
    qrels = {"q1": {"a": 1}, "q2": {"b": 2, "c": 1}, "q3": {"z": 1}}
    run = {"q1": ["x", "a"], "q2": ["b", "y", "c"]}  # q3 retrieved nothing: it still counts, as zero
    m = evaluate_run(qrels, run)
    import math

    ndcg_q1 = (1 / math.log2(3)) / 1.0
    # trec_eval (and so BEIR) uses the relevance grade itself as the gain
    ideal_q2 = 2 + 1 / math.log2(3)
    ndcg_q2 = (2 + 1 / math.log2(4)) / ideal_q2
    assert m["ndcg@10"] == pytest.approx((ndcg_q1 + ndcg_q2) / 3, abs=1e-4)
    assert m["mrr@10"] == pytest.approx((0.5 + 1.0 + 0) / 3)
    assert m["recall@100"] == pytest.approx((1 + 1 + 0) / 3)


def test_mrr_is_cut_at_ten():
    qrels = {"q": {"hit": 1}}
    run = {"q": [f"miss{i}" for i in range(10)] + ["hit"]}
    assert evaluate_run(qrels, run)["mrr@10"] == 0.0
    assert evaluate_run(qrels, run)["recall@100"] == 1.0


def test_rank_order_is_kept_even_for_ties():
    # the run's order is what counts, never pytrec_eval's tie-breaking by document id
    qrels = {"q": {"b": 1}}
    assert evaluate_run(qrels, {"q": ["b", "a"]})["mrr@10"] == 1.0


def test_qrels_with_header_and_crlf(tmp_path):
    path = tmp_path / "test.tsv"
    path.write_bytes(b"query-id\tcorpus-id\tscore\r\n1\td1\t1\r\n1\td2\t0\r\n2\td3\t2\r\n")
    assert load_qrels(path) == {"1": {"d1": 1, "d2": 0}, "2": {"d3": 2}}
