"""Shared Rich progress bar style for long-running work (encoding, indexing)."""
from __future__ import annotations

import sys


def progress_bar(transient: bool = False):
    """A Rich progress bar on stderr, so stdout stays clean for --json output."""
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)

    # on a terminal the finished bar stays as a record; in logs and pipes it would only be noise
    transient = transient or not sys.stderr.isatty()
    return Progress(TextColumn("[progress.description]{task.description}"), BarColumn(),
                    MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
                    console=Console(file=sys.stderr), transient=transient)
