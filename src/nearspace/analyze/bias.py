"""The Word Embedding Association Test (Caliskan, Bryson, Narayanan, Science 2017).

For target word sets X, Y and attribute sets A, B:

    s(w, A, B) = mean_a cos(w, a) - mean_b cos(w, b)
    effect size d = (mean_x s(x) - mean_y s(y)) / std_{w in X u Y} s(w)      (sample std)
    p = P[ sum_Xi s - sum_Yi s  >  sum_X s - sum_Y s ] over equal-size re-partitions of X u Y

The p-value is one-sided and comes from a permutation test: exact when the number of
partitions is small, otherwise from random partitions. Any encoder works: a word is
embedded on its own (optionally inside a template such as ``"This is {}."``, as in SEAT),
or looked up in trained word vectors, where missing words are dropped and reported.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from itertools import combinations
from typing import Callable, Mapping, Sequence

import numpy as np

from nearspace.errors import InputError

# Pleasant / unpleasant attribute sets (Greenwald et al. 1998), as used by WEAT 1-3.
_PLEASANT = ("caress freedom health love peace cheer friend heaven loyal pleasure diamond gentle honest "
             "lucky rainbow diploma gift honor miracle sunrise family happy laughter paradise vacation").split()
_UNPLEASANT = ("abuse crash filth murder sickness accident death grief poison stink assault disaster hatred "
               "pollute tragedy divorce jail poverty ugly cancer kill rotten vomit agony prison").split()
# WEAT 3 and 4 swap "agony, prison" for "bomb, evil".
_UNPLEASANT_NAMES = ("abuse crash filth murder sickness accident death grief poison stink assault disaster "
                     "hatred pollute tragedy bomb divorce jail poverty ugly cancer evil kill rotten vomit").split()
_PLEASANT_SHORT = "joy love peace wonderful pleasure friend laughter happy".split()
_UNPLEASANT_SHORT = "agony terrible horrible nasty evil war awful failure".split()
_EA_NAMES_B = ("Brad Brendan Geoffrey Greg Brett Jay Matthew Neil Todd Allison Anne Carrie Emily Jill Laurie "
               "Kristen Meredith Sarah").split()
_AA_NAMES_B = ("Darnell Hakim Jermaine Kareem Jamal Leroy Rasheed Tremayne Tyrone Aisha Ebony Keisha Kenya "
               "Latonya Lakisha Latoya Tamika Tanisha").split()


@dataclass(frozen=True)
class WeatTest:
    """Two target sets compared on their association with two attribute sets."""

    name: str
    title: str
    x_name: str
    x: tuple[str, ...]
    y_name: str
    y: tuple[str, ...]
    a_name: str
    a: tuple[str, ...]
    b_name: str
    b: tuple[str, ...]
    #: effect size the paper reports for GloVe (Common Crawl), for orientation only
    paper_d: float | None = None


def _t(name, title, xn, x, yn, y, an, a, bn, b, d=None) -> WeatTest:
    split = (lambda s: tuple(s.split()) if isinstance(s, str) else tuple(s))
    return WeatTest(name, title, xn, split(x), yn, split(y), an, split(a), bn, split(b), d)


#: The ten tests of Caliskan et al. (2017), word lists as published in the paper's
#: supplementary material (names the authors dropped for low frequency are left out).
STANDARD_TESTS: dict[str, WeatTest] = {t.name: t for t in [
    _t("weat1", "Flowers vs insects / pleasant vs unpleasant",
       "flowers", "aster clover hyacinth marigold poppy azalea crocus iris orchid rose bluebell daffodil lilac "
                  "pansy tulip buttercup daisy lily peony violet carnation gladiola magnolia petunia zinnia",
       "insects", "ant caterpillar flea locust spider bedbug centipede fly maggot tarantula bee cockroach gnat "
                  "mosquito termite beetle cricket hornet moth wasp blackfly dragonfly horsefly roach weevil",
       "pleasant", _PLEASANT, "unpleasant", _UNPLEASANT, 1.50),
    _t("weat2", "Instruments vs weapons / pleasant vs unpleasant",
       "instruments", "bagpipe cello guitar lute trombone banjo clarinet harmonica mandolin trumpet bassoon drum "
                      "harp oboe tuba bell fiddle harpsichord piano viola bongo flute horn saxophone violin",
       "weapons", "arrow club gun missile spear axe dagger harpoon pistol sword blade dynamite hatchet rifle tank "
                  "bomb firearm knife shotgun teargas cannon grenade mace slingshot whip",
       "pleasant", _PLEASANT, "unpleasant", _UNPLEASANT, 1.53),
    _t("weat3", "European vs African American names / pleasant vs unpleasant",
       "european_american_names", "Adam Harry Josh Roger Alan Frank Justin Ryan Andrew Jack Matthew Stephen Brad "
                                  "Greg Paul Jonathan Peter Amanda Courtney Heather Melanie Katie Betsy Kristin "
                                  "Nancy Stephanie Ellen Lauren Colleen Emily Megan Rachel",
       "african_american_names", "Alonzo Jamel Theo Alphonse Jerome Leroy Torrance Darnell Lamar Lionel Tyree "
                                 "Deion Lamont Malik Terrence Tyrone Lavon Marcellus Wardell Nichelle Shereen "
                                 "Ebony Latisha Shaniqua Jasmine Tanisha Tia Lakisha Latoya Yolanda Malika Yvette",
       "pleasant", _PLEASANT, "unpleasant", _UNPLEASANT_NAMES, 1.41),
    _t("weat4", "European vs African American names (Bertrand & Mullainathan) / pleasant vs unpleasant",
       "european_american_names", _EA_NAMES_B, "african_american_names", _AA_NAMES_B,
       "pleasant", _PLEASANT, "unpleasant", _UNPLEASANT_NAMES, 1.50),
    _t("weat5", "European vs African American names / pleasant vs unpleasant (short lists)",
       "european_american_names", _EA_NAMES_B, "african_american_names", _AA_NAMES_B,
       "pleasant", _PLEASANT_SHORT, "unpleasant", _UNPLEASANT_SHORT, 1.28),
    _t("weat6", "Male vs female names / career vs family",
       "male_names", "John Paul Mike Kevin Steve Greg Jeff Bill",
       "female_names", "Amy Joan Lisa Sarah Diana Kate Ann Donna",
       "career", "executive management professional corporation salary office business career",
       "family", "home parents children family cousins marriage wedding relatives", 1.81),
    _t("weat7", "Math vs arts / male vs female terms",
       "math", "math algebra geometry calculus equations computation numbers addition",
       "arts", "poetry art dance literature novel symphony drama sculpture",
       "male_terms", "male man boy brother he him his son",
       "female_terms", "female woman girl sister she her hers daughter", 1.06),
    _t("weat8", "Science vs arts / male vs female terms",
       "science", "science technology physics chemistry Einstein NASA experiment astronomy",
       "arts", "poetry art Shakespeare dance literature novel symphony drama",
       "male_terms", "brother father uncle grandfather son he his him",
       "female_terms", "sister mother aunt grandmother daughter she hers her", 1.24),
    _t("weat9", "Mental vs physical disease / temporary vs permanent",
       "mental_disease", "sad hopeless gloomy tearful miserable depressed",
       "physical_disease", "sick illness influenza disease virus cancer",
       "temporary", "impermanent unstable variable fleeting short-term brief occasional",
       "permanent", "stable always constant persistent chronic prolonged forever", 1.38),
    _t("weat10", "Young vs old people's names / pleasant vs unpleasant",
       "young_names", "Tiffany Michelle Cindy Kristy Brad Eric Joey Billy",
       "old_names", "Ethel Bernice Gertrude Agnes Cecil Wilbert Mortimer Edgar",
       "pleasant", _PLEASANT_SHORT, "unpleasant", _UNPLEASANT_SHORT, 1.21),
]}


@dataclass
class WeatResult:
    name: str
    title: str
    effect_size: float
    p_value: float
    statistic: float
    permutations: int
    exact: bool
    sizes: dict[str, int]
    missing: dict[str, list[str]] = field(default_factory=dict)
    paper_d: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def custom_test(name: str, x: Sequence[str], y: Sequence[str], a: Sequence[str], b: Sequence[str], *,
                names: Sequence[str] = ("X", "Y", "A", "B"), title: str | None = None) -> WeatTest:
    """A user-supplied test; word lists may also be given as comma-separated strings."""
    sets = []
    for label, words in zip(names, (x, y, a, b)):
        if isinstance(words, str):
            words = [w for w in words.replace(",", " ").split()]
        words = tuple(dict.fromkeys(w.strip() for w in words if isinstance(w, str) and w.strip()))
        if len(words) < 2:
            raise InputError(f"WEAT set {label!r} needs at least 2 words, got {len(words)}")
        sets.append(words)
    return WeatTest(name, title or name, names[0], sets[0], names[1], sets[1], names[2], sets[2], names[3], sets[3])


def custom_test_from_dict(spec: Mapping) -> WeatTest:
    """``{"name", "X", "Y", "A", "B"}`` (optionally ``"X_name"``...), as read from a JSON file."""
    if not isinstance(spec, Mapping):
        raise InputError("a custom WEAT test must be a JSON object with keys X, Y, A, B")
    missing = [k for k in ("X", "Y", "A", "B") if k not in spec]
    if missing:
        raise InputError(f"custom WEAT test is missing {', '.join(missing)} (needs X, Y, A, B word lists)")
    return custom_test(str(spec.get("name", "custom")), spec["X"], spec["Y"], spec["A"], spec["B"],
                       names=tuple(str(spec.get(f"{k}_name", k)) for k in ("X", "Y", "A", "B")),
                       title=spec.get("title"))


def association(w: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """s(w, A, B) for each row of ``w`` (all rows unit-normalised)."""
    return (w @ a.T).mean(axis=1) - (w @ b.T).mean(axis=1)


def weat_from_vectors(x: np.ndarray, y: np.ndarray, a: np.ndarray, b: np.ndarray, *,
                      permutations: int = 100_000, seed: int = 0) -> tuple[float, float, float, int, bool]:
    """Effect size, one-sided p-value, test statistic, partitions used, whether exact."""
    x, y, a, b = (_unit(m) for m in (x, y, a, b))
    s_all = association(np.vstack([x, y]), a, b)
    nx = len(x)
    s_x, s_y = s_all[:nx], s_all[nx:]
    statistic = float(s_x.sum() - s_y.sum())
    spread = float(s_all.std(ddof=1))
    effect = float((s_x.mean() - s_y.mean()) / spread) if spread > 0 else 0.0
    n = len(s_all)
    total = s_all.sum()
    count = math.comb(n, nx)
    # sum_Xi - sum_Yi = 2 * sum_Xi - total: only the subset sums matter
    if count <= permutations:
        subset = np.fromiter((s_all[list(idx)].sum() for idx in combinations(range(n), nx)), dtype=np.float64,
                             count=count)
        exact, used = True, count
    else:
        rng = np.random.default_rng(seed)
        subset = np.empty(permutations)
        for start in range(0, permutations, 4096):
            m = min(4096, permutations - start)
            order = np.argsort(rng.random((m, n)), axis=1)[:, :nx]
            subset[start:start + m] = s_all[order].sum(axis=1)
        exact, used = False, permutations
    stats = 2 * subset - total
    # strictly greater, as in the paper; a tiny tolerance keeps the observed split itself out
    p = float((stats > statistic + 1e-12).mean())
    if not exact:
        p = float(((stats > statistic + 1e-12).sum() + 1) / (used + 1))  # never report p = 0 from samples
    return effect, p, statistic, used, exact


def run_weat(test: WeatTest, embed: Callable[[list[str]], tuple[np.ndarray, list[str]]], *,
             permutations: int = 100_000, seed: int = 0) -> WeatResult:
    """Run one test. ``embed(words)`` returns (vectors for the words it knows, the missing words)."""
    vectors, missing, sizes = [], {}, {}
    for set_name, words in ((test.x_name, test.x), (test.y_name, test.y), (test.a_name, test.a),
                            (test.b_name, test.b)):
        matrix, lost = embed(list(words))
        if lost:
            missing[set_name] = list(lost)
        if len(matrix) < 2:
            raise InputError(f"{test.name}: only {len(matrix)} of the {len(words)} '{set_name}' words are in the "
                             f"vocabulary (missing: {', '.join(lost[:12])}{'...' if len(lost) > 12 else ''}); "
                             "a WEAT set needs at least 2")
        vectors.append(matrix)
        sizes[set_name] = len(matrix)
    effect, p, statistic, used, exact = weat_from_vectors(*vectors, permutations=permutations, seed=seed)
    return WeatResult(test.name, test.title, effect, p, statistic, used, exact, sizes, missing, test.paper_d)


def encoder_embedder(encoder, template: str | None = None) -> Callable[[list[str]], tuple[np.ndarray, list[str]]]:
    """Embed words with any text encoder (every word is known), optionally inside a template."""
    if template is not None and "{}" not in template:
        raise InputError(f"template {template!r} must contain '{{}}' where the word goes")

    def embed(words: list[str]) -> tuple[np.ndarray, list[str]]:
        texts = [template.format(w) if template else w for w in words]
        return encoder.encode(texts, show_progress=False), []

    return embed


def vocabulary_embedder(lookup: Callable[[str], np.ndarray | None]) -> Callable[[list[str]], tuple[np.ndarray, list[str]]]:
    """Embed words by lookup (trained word vectors); missing words are dropped and reported."""

    def embed(words: list[str]) -> tuple[np.ndarray, list[str]]:
        found, lost = [], []
        for word in words:
            vector = lookup(word)
            (lost.append(word) if vector is None else found.append(vector))
        dim = len(found[0]) if found else 1
        return (np.vstack(found) if found else np.zeros((0, dim), dtype=np.float32)), lost

    return embed


def _unit(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    return np.divide(m, norms, out=np.zeros_like(m), where=norms > 0)
