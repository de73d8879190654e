"""Jupyter renderings (``_repr_html_``) of search results, ``ask`` answers and maps, on a real
store with the bundled model: content shown, results still a list, and stored text that looks
like markup rendered inert (parsed back with the standard library's HTML parser)."""
from __future__ import annotations

import json
import pickle
from html.parser import HTMLParser

import pytest

from nearspace.integrations.notebook import MAP_TEXT
from nearspace.search.results import SearchResult, SearchResults

from tests.conftest import SEED_QUERY

HOSTILE_ID = "\"><svg onload=alert(1)>"
HOSTILE_TITLE = "<img src=x onerror=alert(2)>"
HOSTILE_TEXT = ("Tidal turbines <script>alert(3)</script> convert the flow of the sea into electricity. "
                "</td></table><iframe src=javascript:alert(4)> Their blades turn slowly.")


class Tags(HTMLParser):
    """Every start tag with its attributes, as a browser's tokenizer would see them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def parse(markup: str) -> Tags:
    parser = Tags()
    parser.feed(markup)
    parser.close()
    return parser


@pytest.fixture()
def hostile(examples):
    """The example corpus plus one document whose id, title, text and metadata carry markup."""
    examples.upsert(ids=[HOSTILE_ID], texts=[HOSTILE_TEXT], titles=[HOSTILE_TITLE],
                    metadatas=[{"source": "javascript:alert(5)", "note": "<b>bold</b>"}])
    return examples


def test_search_results_stay_a_list(examples):
    hits = examples.search(SEED_QUERY, k=5)
    assert isinstance(hits, list) and isinstance(hits, SearchResults) and len(hits) == 5
    plain = list(hits)
    assert hits == plain and hits[0] is plain[0] and hits[:2] == plain[:2]
    assert all(isinstance(h, SearchResult) for h in hits)
    assert json.loads(json.dumps([h.to_dict() for h in hits]))[0]["id"] == hits[0].id
    again = pickle.loads(pickle.dumps(hits))
    assert again == hits and again.query == SEED_QUERY and again.mode == "hybrid"
    assert examples.search("anything", where={"topic": "no-such-topic"}) == []
    # the plain repr: a header, then one line per hit with rank, score and id
    lines = repr(hits).splitlines()
    assert lines[0] == f"5 results for {SEED_QUERY!r} (hybrid):" and len(lines) == 6
    assert lines[1].split()[:3] == ["1.", f"{hits[0].score:.3f}", hits[0].id]


def test_search_results_html_shows_each_hit(examples):
    hits = examples.search(SEED_QUERY, k=3, mode="hybrid")
    page = hits._repr_html_()
    parsed = parse(page)
    text = "".join(parsed.text)
    for hit in hits:
        assert hit.id in text and hit.title in text
    assert SEED_QUERY in text
    rows = [t for t, _ in parsed.tags if t == "tr"]
    assert len(rows) == 1 + len(hits)  # header + one row per hit
    # hybrid hits say where each mode ranked them
    assert "<th>dense rank</th>" in page and "<th>keyword rank</th>" in page
    assert "no results" in examples.search("x", where={"topic": "no-such-topic"})._repr_html_()


def _tag_names(markup: str) -> set[str]:
    return {tag for tag, _ in parse(markup).tags}


def test_search_html_escapes_stored_markup(hostile):
    hits = hostile.search("tidal turbines electricity from the sea", k=3, mode="keyword")
    assert hits[0].id == HOSTILE_ID
    page = hits._repr_html_()
    tags = parse(page)
    assert _tag_names(page) <= {"div", "style", "p", "b", "span", "table", "thead", "tbody", "tr", "th", "td",
                                "code", "br"}
    assert all(not any(k.startswith("on") for k in attrs) for _, attrs in tags.tags)
    text = "".join(tags.text)
    assert HOSTILE_ID in text and HOSTILE_TITLE in text and "<script>alert(3)</script>" in text
    assert "<b>bold</b>" in text  # metadata shown as text
    assert "<b>bold</b>" not in page and "<script>alert" not in page
    # one result alone renders the same way
    assert _tag_names(hits[0]._repr_html_()) <= _tag_names(page)


def test_answer_html_links_sentences_to_passages(examples):
    answer = examples.ask(SEED_QUERY, k=3)
    assert answer.passages and answer.answer_sentences
    page = answer._repr_html_()
    parsed = parse(page)
    anchors = {attrs["id"] for _, attrs in parsed.tags if attrs.get("id")}
    links = [attrs["href"] for tag, attrs in parsed.tags if tag == "a"]
    assert len(anchors) == len(answer.passages)
    assert len(links) >= len(answer.answer_sentences)
    assert {href.lstrip("#") for href in links} <= anchors  # each sentence points at its passage
    text = "".join(parsed.text)
    assert answer.question in text
    for sentence in answer.answer_sentences:
        assert sentence.text in text
    for passage in answer.passages:
        assert passage.citation in text
    plain = repr(answer).splitlines()  # a terminal gets the question, the counts and the sentences
    assert plain[0] == f"Answer({SEED_QUERY!r}: {len(answer.passages)} passages, {answer.tokens} tokens)"
    assert plain[1:] == [f"  - {s.text} ({s.citation})" for s in answer.answer_sentences]
    marked = [t for t, _ in parsed.tags if t == "mark"]
    assert marked  # the answer sentences are highlighted inside their passages
    # two renderings never share anchors
    assert not anchors & {attrs["id"] for _, attrs in parse(answer._repr_html_()).tags if attrs.get("id")}


def test_answer_html_escapes_and_links_only_web_sources(hostile):
    answer = hostile.ask("<b>what</b> do tidal turbines convert into electricity?", k=2)
    assert any(HOSTILE_ID in p.ids for p in answer.passages)
    answer.generated = "<img src=x onerror=alert(6)> Tidal turbines make electricity [1]."
    page = answer._repr_html_()
    parsed = parse(page)
    assert _tag_names(page) <= {"div", "style", "h4", "p", "b", "ul", "li", "a", "span", "code", "blockquote",
                                "mark"}
    hrefs = [attrs["href"] for tag, attrs in parsed.tags if tag == "a"]
    assert all(h.startswith("#") for h in hrefs)  # javascript: sources are never links
    text = "".join(parsed.text)
    assert "<b>what</b>" in text and "<script>alert(3)</script>" in text and answer.generated in text
    # an http(s) source becomes a link that opens the source
    for passage in answer.passages:
        passage.citation = passage.source = "https://example.org/tides?a=1&b=<2>"
    linked = [attrs for tag, attrs in parse(answer._repr_html_()).tags if tag == "a" and attrs.get("target")]
    assert linked and all(a["href"] == "https://example.org/tides?a=1&b=<2>" for a in linked)


def test_map_html_is_the_interactive_map_in_an_iframe(hostile):
    from nearspace.analyze.maps import build_map, render_html

    data = build_map(hostile, color_by="topic")
    assert repr(data) == f"MapData({len(data.ids)} points, PCA, coloured by 'topic', title={data.title!r})"
    page = data._repr_html_()
    outer = parse(page)
    assert [t for t, _ in outer.tags] == ["iframe"]  # nothing of the map leaks into the notebook page
    frame = outer.tags[0][1]
    assert frame["sandbox"] == "allow-scripts"
    inner_page = frame["srcdoc"]
    assert inner_page == render_html(data, max_text=MAP_TEXT)  # the escaped attribute decodes to the map page
    inner = parse(inner_page)
    scripts = [attrs for tag, attrs in inner.tags if tag == "script"]
    assert len(scripts) == 2 and scripts[0] == {"type": "application/json", "id": "map-data"}
    assert not {"img", "svg", "iframe"} & {t for t, _ in inner.tags}
    blob = json.loads(inner_page.split('id="map-data">', 1)[1].split("</script>", 1)[0])
    assert HOSTILE_ID in blob["ids"] and any("<script>alert(3)</script>" in t for t in blob["texts"])
