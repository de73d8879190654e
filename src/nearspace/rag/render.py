"""Human renderings of an Answer: Rich text for terminals, Markdown for documents."""
from __future__ import annotations

from nearspace.rag.ask import Answer


def _highlight(text: str, sentences: list[str], start: str, end: str) -> str:
    for sentence in sentences:
        if sentence in text:
            text = text.replace(sentence, f"{start}{sentence}{end}", 1)
    return text


def render_markdown(answer: Answer) -> str:
    lines = [f"## {answer.question}", ""]
    if answer.generated:
        lines += [answer.generated, ""]
    lines.append("**Most relevant sentences**")
    lines += [f"- {s.text} ({s.citation})" for s in answer.answer_sentences]
    lines += ["", "**Passages**", ""]
    picked = [s.text for s in answer.answer_sentences]
    for i, p in enumerate(answer.passages, start=1):
        lines.append(f"[{i}] `{p.citation}` (score {p.score:.3f})")
        lines.append("")
        lines.append("> " + _highlight(p.text, picked, "**", "**").replace("\n", "\n> "))
        lines.append("")
    return "\n".join(lines)


def render_text(answer: Answer):
    from rich.console import Group
    from rich.markup import escape
    from rich.panel import Panel
    from rich.text import Text

    parts = []
    if answer.generated:
        parts.append(Panel(escape(answer.generated), title="generated answer"))
    summary = Text()
    for s in answer.answer_sentences:
        summary.append("• ")
        summary.append(s.text, style="bold yellow")
        summary.append(f"  ({s.citation})\n", style="dim")
    parts.append(Panel(summary, title=f"answer sentences: {answer.question}"))
    picked = [s.text for s in answer.answer_sentences]
    for i, p in enumerate(answer.passages, start=1):
        body = Text(p.text)
        for sentence in picked:
            start = p.text.find(sentence)
            if start >= 0:
                body.stylize("bold yellow", start, start + len(sentence))
        parts.append(Panel(body, title=f"[{i}] {escape(p.citation)}", subtitle=f"score {p.score:.3f}",
                           title_align="left"))
    parts.append(Text(f"{len(answer.passages)} passages, {answer.tokens} tokens", style="dim"))
    return Group(*parts)
