"""HTML for Jupyter: what ``_repr_html_`` of search results, ``ask`` answers and maps returns.

Standard library only (``html.escape``), so the result types can offer rich output without
any notebook package installed. Every piece of stored text (ids, titles, texts, metadata,
citations, questions) is escaped: a document is data, never markup. Each rendering gets its
own id prefix so several outputs in one notebook never share anchors.
"""
from __future__ import annotations

import html
import itertools
import json
from typing import Any, Sequence
from urllib.parse import urlparse

#: characters of a result's text shown before it is cut (the full text stays in the object)
SNIPPET = 300
_ids = itertools.count(1)

_STYLE = ("<style>.nearspace table{border-collapse:collapse;font-size:13px}"
          ".nearspace th,.nearspace td{border-bottom:1px solid #ddd;padding:4px 8px;text-align:left;"
          "vertical-align:top}.nearspace .dim{color:#777;font-size:12px}"
          ".nearspace mark{background:#fff3a8}.nearspace blockquote{margin:4px 0 10px 12px;"
          "padding-left:8px;border-left:3px solid #ccc;white-space:pre-wrap}</style>")


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _cut(text: str, limit: int = SNIPPET) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[:limit].rsplit(" ", 1)[0] + "…"


def _uid() -> str:
    return f"ns{next(_ids)}"


def _href(source: str) -> str | None:
    """A link target for a citation's source: only http(s) URLs (a local path means nothing to
    the browser showing the notebook, and ``javascript:`` must never become a link)."""
    base = str(source).split("#", 1)[0]
    try:
        parsed = urlparse(base)
    except ValueError:
        return None
    if parsed.scheme in ("http", "https") and parsed.netloc:
        return str(source)
    return None


def _score(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def results_html(results: Sequence[Any], *, query: str | None = None, mode: str | None = None) -> str:
    """A table of search results: rank, score, title and id, the start of the text, metadata,
    and where each mode ranked the hit."""
    head = ""
    if query is not None:
        head = f"<p><b>{_e(query)}</b> <span class='dim'>({_e(mode or 'search')}, {len(results)} results)</span></p>"
    if not results:
        return f"<div class='nearspace'>{_STYLE}{head}<p class='dim'>no results</p></div>"
    modes = list(dict.fromkeys(m for r in results for m in (r.ranks or {})))
    rows = []
    for i, r in enumerate(results, start=1):
        title = f"<b>{_e(r.title)}</b><br>" if r.title else ""
        meta = json.dumps(r.metadata, ensure_ascii=False, default=str) if r.metadata else ""
        ranks = "".join(f"<td>{'' if r.ranks.get(m) is None else _e(r.ranks[m])}</td>" for m in modes)
        rows.append(f"<tr><td>{i}</td><td>{_score(r.score)}</td><td>{title}<code>{_e(r.id)}</code></td>"
                    f"<td>{_e(_cut(r.text))}</td><td class='dim'>{_e(_cut(meta, 160))}</td>{ranks}</tr>")
    rank_heads = "".join(f"<th>{_e(m)} rank</th>" for m in modes)
    return (f"<div class='nearspace'>{_STYLE}{head}<table><thead><tr><th>#</th><th>score</th><th>id</th>"
            f"<th>text</th><th>metadata</th>{rank_heads}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>")


def results_text(results: Sequence[Any], *, query: str | None = None, mode: str | None = None) -> str:
    """The plain ``repr``: one line per hit (rank, score, id, title or text start)."""
    head = f"{len(results)} results" + (f" for {query!r} ({mode})" if query is not None else "")
    lines = [head + (":" if results else "")]
    for i, r in enumerate(results, start=1):
        lines.append(f"{i:>3}. {r.score:.3f}  {r.id}  {_cut(r.title or r.text, 70)}")
    return "\n".join(lines)


def _highlight(text: str, sentences: Sequence[str]) -> str:
    """Escaped ``text`` with the picked sentences inside ``<mark>`` (matched on the raw text,
    escaped piece by piece, so a sentence containing markup is still found and still inert)."""
    spans = []
    for sentence in sentences:
        start = text.find(sentence) if sentence else -1
        if start >= 0 and not any(s < start + len(sentence) and start < e for s, e in spans):
            spans.append((start, start + len(sentence)))
    out, pos = [], 0
    for start, end in sorted(spans):
        out += [_e(text[pos:start]), "<mark>", _e(text[start:end]), "</mark>"]
        pos = end
    out.append(_e(text[pos:]))
    return "".join(out)


def _citation(citation: str, source: str) -> str:
    link = _href(citation) or _href(source)
    label = f"<code>{_e(citation)}</code>"
    return f"<a href='{_e(link)}' target='_blank' rel='noopener'>{label}</a>" if link else label


def answer_html(answer: Any) -> str:
    """An ``ask`` answer: the generated text (if any), the answer sentences each linked to its
    numbered passage below, then the passages with their citations (linked when the source is
    a web address) and the answer sentences highlighted."""
    uid = _uid()
    number = {id(p): i for i, p in enumerate(answer.passages, start=1)}
    by_source: dict[str, int] = {}
    for i, p in enumerate(answer.passages, start=1):
        by_source.setdefault(p.source, i)
    parts = [f"<div class='nearspace'>{_STYLE}<h4>{_e(answer.question)}</h4>"]
    if answer.generated:
        parts.append(f"<p style='white-space:pre-wrap'>{_e(answer.generated)}</p>")
    if answer.answer_sentences:
        items = []
        for s in answer.answer_sentences:
            n = by_source.get(s.source)
            ref = f" <a href='#{uid}-p{n}'>[{n}]</a>" if n else ""
            items.append(f"<li>{_e(s.text)}{ref} <span class='dim'>{_e(s.citation)}</span></li>")
        parts.append(f"<p><b>Most relevant sentences</b></p><ul>{''.join(items)}</ul>")
    else:
        parts.append("<p class='dim'>no passage answered this question</p>")
    picked = [s.text for s in answer.answer_sentences]
    for p in answer.passages:
        n = number[id(p)]
        parts.append(f"<p id='{uid}-p{n}'>[{n}] {_citation(p.citation, p.source)} "
                     f"<span class='dim'>score {_score(p.score)}</span></p>"
                     f"<blockquote>{_highlight(p.text, picked)}</blockquote>")
    parts.append(f"<p class='dim'>{len(answer.passages)} passages, {answer.tokens} tokens</p></div>")
    return "".join(parts)


#: hover texts in a notebook's map are cut shorter than in a map file: the page is saved in the .ipynb
MAP_TEXT = 300


def map_html(data: Any, *, height: int = 520) -> str:
    """The interactive map (``MapData.page``, self-contained: inline data and script, no
    network) inside an ``iframe`` whose ``srcdoc`` is the escaped page, so its script and styles
    stay out of the notebook's own page. (The map renders itself: this module imports nothing of
    nearspace, so the result types can use it from the bottom layer.)"""
    page = data.page(max_text=MAP_TEXT)
    return (f"<iframe srcdoc=\"{html.escape(page, quote=True)}\" style=\"width:100%;height:{int(height)}px;"
            f"border:1px solid #ddd\" sandbox=\"allow-scripts\" title=\"{_e(data.title)}\"></iframe>")
