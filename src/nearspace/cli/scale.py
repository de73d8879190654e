"""``nearspace copy``: move a collection between stores (SQLite <-> Milvus) with its vectors."""
from __future__ import annotations

import json
from typing import Optional

import typer

from nearspace.cli.app import _stderr, app


@app.command()
def copy(ctx: typer.Context,
         source: str = typer.Option(..., "--from", help="Source store: a SQLite file, milvus://HOST:PORT or "
                                                        "milvus-lite:PATH.db."),
         target: str = typer.Option(..., "--to", help="Target store (same spellings)."),
         collection: Optional[str] = typer.Option(None, "--collection", "-c",
                                                  help="Collection to copy (default: every collection)."),
         batch_size: int = typer.Option(500, "--batch-size", min=1, help="Documents per committed batch."),
         as_json: bool = typer.Option(False, "--json", help="Print the counts as JSON.")) -> None:
    """Copy collections with their vectors (nothing re-encoded); resumable: a re-run skips
    documents already in the target with the same content; ends with a count check."""
    from nearspace.api import open_store
    from nearspace.errors import InputError
    from nearspace.progress import progress_bar
    from nearspace.transfer import copy_collection

    if source == target:
        raise InputError("--from and --to name the same store")
    reports = []
    with open_store(source) as src, open_store(target) as dst:
        names = [collection] if collection else src.list_collections()
        if not names:
            raise InputError(f"no collections in {source}")
        for name in names:
            total = src.get_collection(name).count()
            with progress_bar() as progress:
                task = progress.add_task(f"copying {name}", total=total)
                report = copy_collection(src, dst, name, batch_size=batch_size,
                                         on_batch=lambda n: progress.advance(task, n))
            reports.append(report)
    if as_json:
        typer.echo(json.dumps([vars(r) for r in reports], indent=2))
        return
    for r in reports:
        _stderr().print(f"[bold]{r.collection}[/]: {r.added} added, {r.updated} updated, {r.metadata} metadata-only, "
                        f"{r.unchanged} already there; count check ok ({r.target_count} = {r.source_count})",
                        highlight=False)
