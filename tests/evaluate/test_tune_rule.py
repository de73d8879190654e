"""``tune`` keeps the default fusion unless its choice beats it on held-out queries."""
from __future__ import annotations

from nearspace.evaluate.retrieval import Candidates, choose_fusion


def _candidates(n: int, dense_good: bool) -> tuple[Candidates, dict]:
    """n queries whose relevant document is first in the good list and missing from the other,
    which ranks the good list's runners-up first: fusing the two lifts those above it."""
    dense, keyword, qrels = {}, {}, {}
    for i in range(n):
        good = [(f"rel{i}", 0.50)] + [(f"x{i}-{j}", 0.495 - j / 1000) for j in range(9)]
        bad = [(f"x{i}-{j}", 0.9 - j / 1000) for j in range(9)]
        dense[f"q{i}"], keyword[f"q{i}"] = (good, bad) if dense_good else (bad, good)
        qrels[f"q{i}"] = {f"rel{i}": 1}
    return Candidates({"dense": dense, "keyword": keyword}, {"dense": 1.0, "keyword": 1.0}, n,
                      {f"q{i}": 3 for i in range(n)}), qrels


KEYWORD_ONLY = {"method": "convex", "norm": "minmax", "weights": {"dense": 0.0, "keyword": 1.0}}


def test_a_choice_that_beats_the_default_on_held_out_queries_is_stored():
    candidates, qrels = _candidates(20, dense_good=True)
    choice = choose_fusion(candidates, qrels, default=KEYWORD_ONLY)  # a default that misses every relevant one
    assert choice["queries"] == {"tuned": 16, "held_out": 4}
    assert choice["store"] and choice["held_out"] > choice["default_held_out"]


def test_the_default_stands_when_nothing_beats_it():
    # one list is perfect for half the queries, the other for the rest: the tuned weight overfits
    a, qa = _candidates(10, dense_good=True)
    b, qb = _candidates(10, dense_good=False)
    merged = Candidates({m: {**{f"a{q}": h for q, h in a.lists[m].items()}, **{f"b{q}": h for q, h in b.lists[m].items()}}
                         for m in ("dense", "keyword")}, {"dense": 1.0, "keyword": 1.0}, 20,
                        {**{f"a{q}": 3 for q in a.n_terms}, **{f"b{q}": 3 for q in b.n_terms}})
    qrels = {**{f"a{q}": r for q, r in qa.items()}, **{f"b{q}": r for q, r in qb.items()}}
    choice = choose_fusion(merged, qrels)
    assert not choice["store"] or choice["held_out"] > choice["default_held_out"]
    # the default already finds every relevant document first: no grid choice can beat it
    perfect, qp = _candidates(20, dense_good=True)
    kept = choose_fusion(perfect, qp)
    assert kept["default_held_out"] == 1.0 and not kept["store"]
    few, few_q = _candidates(3, dense_good=True)
    small = choose_fusion(few, few_q)
    assert small["queries"]["held_out"] == 0  # too few to hold out: checked on the tuning queries themselves
