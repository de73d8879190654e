"""WEAT: the statistic on planted associations, the paper's tests on the real sentence encoder."""
from __future__ import annotations

import json
import math
from itertools import combinations

import numpy as np
import pytest

from nearspace.analyze import bias as B
from nearspace.errors import InputError
from tests.cli.test_cli import run


def _planted(rng, strength: float, n: int = 8, dim: int = 32):
    """X leans toward A and Y toward B by ``strength``; 0 plants nothing."""
    a_dir, b_dir = rng.normal(size=dim), rng.normal(size=dim)
    a = a_dir + 0.5 * rng.normal(size=(n, dim))
    b = b_dir + 0.5 * rng.normal(size=(n, dim))
    x = rng.normal(size=(n, dim)) + strength * a_dir
    y = rng.normal(size=(n, dim)) + strength * b_dir
    return x, y, a, b


def test_effect_size_and_p_value_match_the_definition():
    rng = np.random.default_rng(0)
    x, y, a, b = _planted(rng, 1.0, n=6)
    d, p, stat, used, exact = B.weat_from_vectors(x, y, a, b)
    unit = lambda m: m / np.linalg.norm(m, axis=1, keepdims=True)  # noqa: E731
    s = lambda w: (unit(w) @ unit(a).T).mean(1) - (unit(w) @ unit(b).T).mean(1)  # noqa: E731
    sx, sy = s(x), s(y)
    both = np.concatenate([sx, sy])
    assert d == pytest.approx((sx.mean() - sy.mean()) / both.std(ddof=1))
    assert stat == pytest.approx(sx.sum() - sy.sum())
    # exact permutation test by brute force: C(12, 6) = 924 partitions
    assert exact and used == math.comb(12, 6)
    brute = np.mean([both[list(i)].sum() - np.delete(both, list(i)).sum() > stat + 1e-12
                     for i in combinations(range(12), 6)])
    assert p == pytest.approx(brute)
    assert d > 1.0 and p < 0.01


def test_no_planted_association_gives_a_small_effect_and_a_large_p():
    rng = np.random.default_rng(1)
    x, y, a, b = _planted(rng, 0.0, n=8)
    d, p, *_ = B.weat_from_vectors(x, y, a, b)
    assert abs(d) < 1.0 and p > 0.05


def test_sampled_p_value_agrees_with_the_exact_one():
    rng = np.random.default_rng(2)
    x, y, a, b = _planted(rng, 0.3, n=7)
    _, exact_p, _, _, exact = B.weat_from_vectors(x, y, a, b, permutations=10_000)
    _, sampled_p, _, used, sampled_exact = B.weat_from_vectors(x, y, a, b, permutations=2000)
    assert exact and not sampled_exact and used == 2000
    assert sampled_p == pytest.approx(exact_p, abs=0.03)


def test_the_ten_standard_tests_are_complete():
    assert list(B.STANDARD_TESTS) == [f"weat{i}" for i in range(1, 11)]
    for t in B.STANDARD_TESTS.values():
        assert len(t.x) == len(t.y) and len(t.a) == len(t.b), t.name
        assert len(set(t.x)) == len(t.x) and len(set(t.a)) == len(t.a), t.name
        assert t.paper_d is not None
    assert len(B.STANDARD_TESTS["weat1"].x) == 25 and "rose" in B.STANDARD_TESTS["weat1"].x
    assert "Einstein" in B.STANDARD_TESTS["weat8"].x


def test_sentence_encoder_associates_flowers_with_pleasant(encoder):
    result = B.run_weat(B.STANDARD_TESTS["weat1"], B.encoder_embedder(encoder), permutations=20_000)
    assert result.effect_size > 0.5 and result.p_value < 0.01
    assert result.sizes == {"flowers": 25, "insects": 25, "pleasant": 25, "unpleasant": 25}
    assert not result.exact and result.permutations == 20_000


def test_missing_words_are_dropped_and_too_few_are_refused():
    vocab = {w: np.eye(4)[i % 4] for i, w in enumerate("rose tulip ant bee love peace filth crash".split())}
    embed = B.vocabulary_embedder(lambda w: vocab.get(w))
    test = B.custom_test("t", ["rose", "tulip", "daisy"], ["ant", "bee"], ["love", "peace"], ["filth", "crash"])
    result = B.run_weat(test, embed)
    assert result.missing == {"X": ["daisy"]} and result.sizes["X"] == 2
    with pytest.raises(InputError, match="only 1 of the 2 'Y' words"):
        B.run_weat(B.custom_test("u", ["rose", "tulip"], ["ant", "wasp"], ["love", "peace"], ["filth", "crash"]), embed)
    with pytest.raises(InputError, match="at least 2 words"):
        B.custom_test("v", "rose", "ant,bee", "love,peace", "filth,crash")
    with pytest.raises(InputError, match="missing B"):
        B.custom_test_from_dict({"X": ["a", "b"], "Y": ["c", "d"], "A": ["e", "f"]})


def test_bias_command_standard_and_user_sets(tmp_path):
    proc = run("--store", str(tmp_path / "s.db"), "bias", "--test", "weat1", "--test", "weat6",
               "--x", "rose,tulip,daisy,lily", "--y", "ant,wasp,flea,maggot", "--a", "love,peace,joy,gift",
               "--b", "filth,murder,vomit,grief", "--permutations", "2000", "--json")
    report = json.loads(proc.stdout)
    by_name = {r["name"]: r for r in report["results"]}
    assert set(by_name) == {"weat1", "weat6", "custom"}
    assert by_name["custom"]["exact"] and by_name["custom"]["permutations"] == math.comb(8, 4)
    assert by_name["weat1"]["effect_size"] > 0.5
    bad = run("bias", "--x", "rose,tulip", check=False)
    assert bad.returncode == 1 and "needs all four sets" in bad.stderr and "Traceback" not in bad.stderr
    assert not (tmp_path / "s.db").exists()  # the sentence encoder path never opens a store
