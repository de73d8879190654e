"""Progress for long-running work (encoding, indexing, copying), always on stderr.

On a terminal: a Rich progress bar. Off a terminal (a log file, a pipe, CI): plain lines, one at
most every ``NEARSPACE_PROGRESS_INTERVAL`` seconds (default 5) and a last one when the work
ends, so ``nearspace index ... 2> log`` shows that work is moving. ``NEARSPACE_PROGRESS`` picks
``rich``, ``plain`` or ``off`` instead of choosing by the terminal (``auto``, the default).
"""
from __future__ import annotations

import os
import sys
import time
from typing import Any


def progress_bar(transient: bool = False):
    """A progress display on stderr (stdout stays clean for --json output); see the module docstring."""
    mode = os.environ.get("NEARSPACE_PROGRESS", "auto").strip().lower()
    if mode == "off":
        return PlainProgress(interval=float("inf"), final=False)
    if mode == "plain" or (mode != "rich" and not sys.stderr.isatty()):
        return PlainProgress()
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)

    return Progress(TextColumn("[progress.description]{task.description}"), BarColumn(),
                    MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
                    console=Console(file=sys.stderr), transient=transient)


class PlainProgress:
    """The part of Rich's ``Progress`` API nearspace uses, as plain timed lines on stderr."""

    def __init__(self, interval: float | None = None, *, final: bool = True) -> None:
        if interval is None:
            try:
                interval = float(os.environ.get("NEARSPACE_PROGRESS_INTERVAL", "5"))
            except ValueError:
                interval = 5.0
        self.interval, self.final = max(interval, 0.0), final
        self.tasks: dict[int, dict[str, Any]] = {}

    def __enter__(self) -> "PlainProgress":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        return None

    def add_task(self, description: str, total: float | None = None, **_: Any) -> int:
        task = len(self.tasks)
        now = time.monotonic()
        self.tasks[task] = {"description": description, "total": total, "completed": 0.0, "started": now,
                            "printed": now, "lines": 0}
        return task

    def advance(self, task: int, advance: float = 1) -> None:
        self.update(task, advance=advance)

    def update(self, task: int, *, advance: float = 0, completed: float | None = None,
               description: str | None = None, total: float | None = None, **_: Any) -> None:
        state = self.tasks[task]
        state["completed"] = completed if completed is not None else state["completed"] + advance
        if description is not None:
            state["description"] = description
        if total is not None:
            state["total"] = total
        now = time.monotonic()
        if now - state["printed"] >= self.interval:
            self._line(state, now)

    def stop(self) -> None:
        now = time.monotonic()
        for state in self.tasks.values():
            # a last line for work long enough to have reported (short work stays silent)
            if self.final and (state["lines"] or now - state["started"] >= self.interval):
                self._line(state, now, done=True)

    def _line(self, state: dict[str, Any], now: float, *, done: bool = False) -> None:
        total, completed = state["total"], state["completed"]
        elapsed = now - state["started"]
        amount = f"{completed:,.0f}/{total:,.0f} ({100 * completed / total:.0f}%)" if total else f"{completed:,.0f}"
        rest = ""
        if not done and total and completed:
            rest = f", about {elapsed * (total - completed) / completed:.0f} s left"
        print(f"{state['description']}: {amount}, {elapsed:.0f} s{' (done)' if done else rest}",
              file=sys.stderr, flush=True)
        state["printed"], state["lines"] = now, state["lines"] + 1
