"""Typed search results: one ``SearchResult`` per hit, ``SearchResults`` (a list) per search."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Iterable


@dataclass
class SearchResult:
    """One hit: ``ranks`` and ``scores`` say where each mode placed it (None: not found by it)."""

    id: str
    score: float
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)
    title: str = ""
    ranks: dict[str, int | None] = field(default_factory=dict)
    scores: dict[str, float | None] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def _repr_html_(self) -> str:
        from nearspace.integrations.notebook import results_html

        return results_html([self])


class SearchResults(list):
    """The hits of one search, best first: a plain ``list`` of ``SearchResult`` (index it,
    slice it, compare it with a list, serialise it) that also remembers the query and mode
    and renders as a table in Jupyter (``_repr_html_``) and as one line per hit in a terminal."""

    def __init__(self, hits: Iterable[SearchResult] = (), *, query: str | None = None,
                 mode: str | None = None) -> None:
        super().__init__(hits)
        self.query = query
        self.mode = mode

    def __repr__(self) -> str:
        from nearspace.integrations.notebook import results_text

        return results_text(self, query=self.query, mode=self.mode)

    def _repr_html_(self) -> str:
        from nearspace.integrations.notebook import results_html

        return results_html(self, query=self.query, mode=self.mode)
