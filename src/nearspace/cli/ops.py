"""``nearspace backup`` and ``nearspace restore``: consistent copies of a store in use."""
from __future__ import annotations

import json
from pathlib import Path

import typer

from nearspace.cli.app import _size, _stderr, app


@app.command()
def backup(store: Path = typer.Argument(..., readable=False, help="The store file to copy."),
           dest: Path = typer.Argument(..., help="Backup file (or folder) to write."),
           force: bool = typer.Option(False, "--force", help="Replace DEST if it exists."),
           as_json: bool = typer.Option(False, "--json", help="Print what was copied as JSON.")) -> None:
    """Copy a store consistently while readers and a writer keep using it (SQLite's online
    backup). ANN index files are not copied: they are rebuilt when the copy is opened."""
    from nearspace.store.sqlite.backup import backup as run_backup

    done = run_backup(store, dest, overwrite=force)
    if as_json:
        typer.echo(json.dumps(done, indent=2))
        return
    counts = ", ".join(f"{name}: {n:,}" for name, n in done["collections"].items()) or "no collections"
    _stderr().print(f"backed up {store} -> {done['backup']} ({_size(done['bytes'])}, {done['documents']:,} documents; "
                    f"{counts}) in {done['seconds']:.1f}s; check ok", highlight=False, soft_wrap=True)


@app.command()
def restore(backup_file: Path = typer.Argument(..., readable=False, help="A file written by nearspace backup."),
            store: Path = typer.Argument(..., readable=False, help="The store to restore into."),
            force: bool = typer.Option(False, "--force", help="Replace the content of an existing store.")) -> None:
    """Restore a backup into a store (stop any server on that store first)."""
    from nearspace.store.sqlite.backup import restore as run_restore

    done = run_restore(backup_file, store, overwrite=force)
    _stderr().print(f"restored {backup_file} -> {store} ({done['documents']:,} documents in "
                    f"{len(done['collections'])} collection(s)); ANN indexes are rebuilt on first use",
                    highlight=False, soft_wrap=True)
