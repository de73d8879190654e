"""The ten WEAT word lists are pinned: a change to any list must be deliberate.

The lists were checked against a public transcription of Caliskan et al. (2017)'s
supplementary lists; WEAT 3 omits the names the paper excluded (e.g. Temeka) and includes Yvette.
"""
from __future__ import annotations

import hashlib

from nearspace.analyze.bias import STANDARD_TESTS

PINNED = {  # name: (|X|, |Y|, |A|, |B|, sha256 of the lists, first 16 hex digits)
    "weat1": (25, 25, 25, 25, "f693a9203ae105a5"),
    "weat2": (25, 25, 25, 25, "691db66bffba389a"),
    "weat3": (32, 32, 25, 25, "aa13f07ee0605d8e"),
    "weat4": (18, 18, 25, 25, "e072852b8c1afc0d"),
    "weat5": (18, 18, 8, 8, "4eadddca66f60421"),
    "weat6": (8, 8, 8, 8, "a6ba0e57d4fcdc8b"),
    "weat7": (8, 8, 8, 8, "5b15e99f90b4effb"),
    "weat8": (8, 8, 8, 8, "8e9c4888e6577c53"),
    "weat9": (6, 6, 7, 7, "6e57820d1d93d741"),
    "weat10": (8, 8, 8, 8, "f39d1961904c6227"),
}


def test_all_ten_lists_are_pinned():
    assert set(STANDARD_TESTS) == set(PINNED)
    for name, test in STANDARD_TESTS.items():
        lists = (test.x, test.y, test.a, test.b)
        digest = hashlib.sha256("|".join(" ".join(words) for words in lists).encode()).hexdigest()[:16]
        assert (*map(len, lists), digest) == PINNED[name], name
        assert all(len(set(words)) == len(words) for words in lists), f"{name} repeats a word"


def test_weat3_names_follow_the_paper():
    names = STANDARD_TESTS["weat3"].y
    assert "Yvette" in names and "Temeka" not in names
    assert len(STANDARD_TESTS["weat3"].x) == len(names) == 32
