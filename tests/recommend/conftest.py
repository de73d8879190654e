"""Synthetic interaction logs with a known structure: four genres, users who stick to one."""
from __future__ import annotations

import random
from pathlib import Path

import pytest

GENRES = {
    "Sci-Fi": ["Starship {n}: war among the galaxies", "Alien invasion of planet {n}", "Robots and lasers on Mars {n}",
               "Time travel spaceship odyssey {n}", "Galactic empire space battle {n}"],
    "Horror": ["The haunted house of blood {n}", "Zombie night of terror {n}", "The ghost in the cellar {n}",
               "Vampire graveyard screams {n}", "Demonic possession nightmare {n}"],
    "Romance": ["Love letters in Paris {n}", "A wedding and a kiss {n}", "Falling in love again {n}",
                "Sweethearts by the sea {n}", "The heart of a bride {n}"],
    "Western": ["Cowboys of the dusty frontier {n}", "Sheriff showdown at high noon {n}",
                "Outlaws riding the prairie {n}", "Gunslinger of the wild west {n}", "Cattle drive to Texas {n}"],
}
ITEMS_PER_GENRE = 10


def catalogue() -> list[tuple[str, str, str]]:
    """(item id, title, genre): ids i0..i39, ten per genre."""
    out = []
    for g, (genre, patterns) in enumerate(GENRES.items()):
        for j in range(ITEMS_PER_GENRE):
            out.append((f"i{g * ITEMS_PER_GENRE + j}", patterns[j % len(patterns)].format(n=j + 1), genre))
    return out


def interactions(users: int = 80, seed: int = 0) -> list[tuple[str, str, int, int]]:
    """(user, item, rating, timestamp): each user rates 7 items of their genre highly and 2 others low."""
    rng = random.Random(seed)
    items = catalogue()
    by_genre = {genre: [i for i, _, g in items if g == genre] for genre in GENRES}
    rows = []
    clock = 1_000_000
    for u in range(users):
        genre = list(GENRES)[u % len(GENRES)]
        liked = rng.sample(by_genre[genre], 7)
        other = rng.sample([i for i, _, g in items if g != genre], 2)
        picks = [(item, rng.choice([4, 5])) for item in liked] + [(item, rng.choice([1, 2])) for item in other]
        rng.shuffle(picks)  # off-genre items at random moments, not always last
        for item, rating in picks:
            clock += rng.randint(1, 50)
            rows.append((f"u{u}", item, rating, clock))
    return rows


def genre_of() -> dict[str, str]:
    return {i: g for i, _, g in catalogue()}


def write_log(path: Path, rows, header: str | None = "user,item,rating,timestamp", sep: str = ",") -> Path:
    lines = [header] if header else []
    lines += [sep.join(str(v) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_items(path: Path, extra: list[tuple[str, str, str]] | None = None) -> Path:
    """A CSV of id,title,genres (extra rows: items without interactions, i.e. cold items)."""
    lines = ["item_id,title,genres"] + [f"{i},{t},{g}" for i, t, g in catalogue() + (extra or [])]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture()
def log_file(tmp_path) -> Path:
    return write_log(tmp_path / "ratings.csv", interactions())


@pytest.fixture()
def items_file(tmp_path) -> Path:
    return write_items(tmp_path / "items.csv", extra=[("new-scifi", "Starship armada: the galaxy war returns", "Sci-Fi"),
                                                      ("new-horror", "Haunted cellar of the zombie ghosts", "Horror")])
