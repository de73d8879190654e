"""Shared fixtures: the real bundled model (loaded once), real SQLite files in tmp dirs."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "documents.jsonl"
DATA = Path(os.environ.get("NEARSPACE_DATA", ROOT.parent / "shared" / "data"))
SEED_QUERY = "how to reduce overfitting in neural networks"


@pytest.fixture(scope="session")
def encoder():
    from nearspace.encoders import load_encoder

    return load_encoder()


@pytest.fixture()
def store(tmp_path, encoder):
    from nearspace import open_store

    with open_store(tmp_path / "store.db", encoder=encoder) as opened:
        yield opened


@pytest.fixture(scope="session")
def example_docs() -> list[dict]:
    return [json.loads(line) for line in EXAMPLES.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="session")
def example_vectors(encoder, example_docs):
    """Encoded once per session; the same text the store would embed (title + text)."""
    return encoder.encode([f"{d['title']} {d['text']}" for d in example_docs])


@pytest.fixture()
def examples(store, example_docs, example_vectors):
    """The example corpus indexed into collection 'examples'."""
    coll = store.collection("examples")
    coll.upsert(ids=[d["id"] for d in example_docs], texts=[d["text"] for d in example_docs],
                titles=[d["title"] for d in example_docs], metadatas=[d["metadata"] for d in example_docs],
                vectors=example_vectors)
    return coll


def require_data(*parts: str) -> Path:
    path = DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"evaluation data not found at {path} (set NEARSPACE_DATA or place shared/data beside the repo)")
    return path
