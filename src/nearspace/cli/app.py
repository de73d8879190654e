"""``nearspace`` command-line interface."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import List, Optional

import typer

# plain click help: Rich's help renderer (typer.rich_utils, markdown-it) costs more import time
# than the whole rest of `nearspace --help`
app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="Embeddings put to work: index documents, then search them by meaning, "
                       "by keywords, or both.")

# readable=False: the store layer reports an unreadable file as one line with what to do
StoreOpt = typer.Option(None, "--store", readable=False, help="Store file (SQLite); overrides the global --store.")
CollectionOpt = typer.Option(None, "--collection", "-c", help="Collection name; overrides the global --collection.")


class Settings:
    """Global options, given before or after the command name."""

    def __init__(self, store: Path, collection: str) -> None:
        self.store, self.collection = store, collection


def _print_version(value: bool) -> None:
    if value:
        from nearspace import __version__

        typer.echo(f"nearspace {__version__}")
        raise typer.Exit()


@app.callback()
def _global(ctx: typer.Context,
            version: bool = typer.Option(False, "--version", is_eager=True, callback=_print_version,
                                         help="Print nearspace's version and exit."),
            store: Path = typer.Option(Path("nearspace.db"), "--store", envvar="NEARSPACE_STORE", readable=False,
                                       help="Store file (SQLite); env NEARSPACE_STORE."),
            collection: str = typer.Option("default", "--collection", "-c", envvar="NEARSPACE_COLLECTION",
                                           help="Collection name; env NEARSPACE_COLLECTION.")) -> None:
    ctx.obj = Settings(store, collection)


def _where(ctx: typer.Context, store: Optional[Path], collection: Optional[str]) -> tuple[Path, str]:
    settings: Settings = ctx.obj
    return store or settings.store, collection or settings.collection
PrecisionOpt = typer.Option("auto", "--precision",
                            help="Encoder precision: auto (bf16 for bulk where the CPU has native bf16), bf16, fp32, "
                                 "or int8 (new collections on a quantised ONNX graph, named all-MiniLM-L6-v2-int8).")


RerankOpt = typer.Option(None, "--rerank", envvar="NEARSPACE_RERANK",
                         help="Rerank the top --rerank-k candidates: ce:FOLDER_OR_NAME (a cross-encoder) or "
                              "rerank:MODEL@URL (a /v1/rerank endpoint). Measure it first: nearspace eval --rerank.")
RerankKOpt = typer.Option(None, "--rerank-k", min=1, max=1000, help="Candidates the reranker reads (default max(k, 50)).")


def _stderr():
    from rich.console import Console

    return Console(stderr=True)


def _stdout():
    from rich.console import Console

    return Console()


def _open(store: Path, precision: str = "auto", model: Optional[str] = None):
    from nearspace.api import open_store

    return open_store(store, precision=precision, encoder=model)


def _is_uri(store: Path) -> bool:
    """A store named by a scheme (``milvus://``, ``milvus-lite:``, a registered one), not a file path."""
    from nearspace.store.registry import is_scheme

    return is_scheme(str(store))


@app.command()
def index(ctx: typer.Context, paths: List[Path] = typer.Argument(
              ..., help="Folders, or files: .jsonl records (BEIR corpus.jsonl works as is), .parquet "
                        "(id, text, title, metadata, vector columns; a file of your own vectors needs only "
                        "id and vector), .npy (your own vectors, with --ids), .txt, .md, .html, "
                        ".pdf, .docx, .csv/.tsv."),
          store: Optional[Path] = StoreOpt, collection: Optional[str] = CollectionOpt, precision: str = PrecisionOpt,
          batch_size: Optional[int] = typer.Option(None, "--batch-size", min=1,
                                                   help="Records per committed batch (default 256; vector files 4096)."),
          ids_file: Optional[Path] = typer.Option(None, "--ids", help=".npy input: the ids, one per line in row order."),
          metadata_file: Optional[Path] = typer.Option(None, "--metadata",
                                                       help=".npy input: JSON Lines, one metadata object per row."),
          vector_column: Optional[str] = typer.Option(None, "--vector-column",
                                                      help="Parquet column of your own vectors (default: vector, "
                                                           "embedding or embeddings)."),
          chunk_tokens: int = typer.Option(200, "--chunk-tokens", min=16, help="Chunk size in word pieces."),
          overlap: int = typer.Option(40, "--overlap", min=0, help="Overlap between chunks in word pieces."),
          text_column: Optional[str] = typer.Option(None, "--text-column",
                                                    help="CSV columns embedded as text, comma-separated (default: every "
                                                         "column of prose that is not id or a --metadata-column)."),
          metadata_column: Optional[List[str]] = typer.Option(None, "--metadata-column",
                                                              help="CSV column kept as metadata (repeat)."),
          max_mb: int = typer.Option(50, "--max-mb", min=1, help="Skip files larger than this."),
          chunk_records: bool = typer.Option(True, "--chunk-records/--no-chunk-records",
                                             help="Split .jsonl records longer than the model's window into chunks "
                                                  "(<id>#0, <id>#1, ...) like files; off: refuse such records."),
          model: Optional[str] = typer.Option(None, "--model", envvar="NEARSPACE_MODEL",
                                              help="Embedding model of a new collection (an existing one keeps "
                                                   "its own and refuses another): all-MiniLM-L6-v2 (default), "
                                                   "st:FOLDER_OR_NAME, onnx:FOLDER, openai:MODEL[@URL], or a "
                                                   "plugin's name. See `nearspace models`."),
          ray: bool = typer.Option(False, "--ray", help="Encode on a Ray cluster (extra 'ray'); .jsonl/.txt/.md inputs."),
          ray_address: Optional[str] = typer.Option(None, "--ray-address", envvar="RAY_ADDRESS",
                                                    help="Ray cluster address (default: a local cluster).")) -> None:
    """Index documents: upsert by id; unchanged content is never re-embedded.

    .jsonl files given directly are records (one document each, validated before anything
    is written). Folders and other files are parsed, chunked with the encoder's tokenizer and
    tracked: a re-run embeds only changed files, follows renames, and drops deleted files.
    """
    store, collection = _where(ctx, store, collection)
    err = _stderr()
    vector_batch, batch_size = batch_size or 4096, batch_size or 256
    npy = [p for p in paths if p.suffix.lower() == ".npy"]
    if npy or ids_file or metadata_file:  # your own vectors: no model is loaded for these
        _index_npy(npy, ids_file, metadata_file, paths, store, collection, vector_batch)
        return
    if ray:
        from nearspace.ingest.distributed import index_with_ray

        done = index_with_ray(paths, str(store), collection, address=ray_address, batch_size=min(batch_size, 256),
                              chunk_tokens=chunk_tokens, overlap=overlap, precision=precision)
        err.print(f"[bold]{collection}[/]: {done['added']} added, {done['updated']} updated, {done['metadata']} "
                  f"metadata-only, {done['unchanged']} unchanged; {done['encoded']} encoded on Ray in "
                  f"{done['seconds']:.1f}s ({done['count']} in collection)", highlight=False)
        return
    records = [p for p in paths if p.is_file() and p.suffix.lower() in (".jsonl", ".ndjson")]
    parquet = [p for p in paths if p.is_file() and p.suffix.lower() == ".parquet"]
    files = [p for p in paths if p not in records and p not in parquet]
    if parquet:  # rows with vectors from the same encoder are stored as they are; the rest are encoded
        records += _index_parquet(parquet, store, collection, precision, batch_size, vector_column, vector_batch)
    if not records and not files:
        return
    started = time.perf_counter()
    with _open(store, precision, model) as opened:
        target = opened.collection(collection)
        summary = target.index(records + files, chunk_tokens=chunk_tokens, overlap_tokens=overlap,
                               chunk_records=chunk_records, max_bytes=max_mb * 1024 * 1024, text_column=text_column,
                               metadata_columns=metadata_column, batch_size=batch_size, show_progress=None)
        total = target.count()
    if records:
        _report_records(collection, summary, time.perf_counter() - started, total)
    if files:
        _report_files(collection, files, summary.files, total)


def _report_records(collection: str, summary, elapsed: float, total: int) -> None:
    err = _stderr()
    chunked = (f", {summary.chunked} long record(s) chunked into {summary.pieces} pieces" if summary.chunked else "")
    err.print(f"[bold]{collection}[/]: {summary.added} added, {summary.updated} updated, "
              f"{summary.metadata} metadata-only, {summary.unchanged} unchanged "
              f"({summary.records} documents from {summary.record_files} file(s){chunked} in {elapsed:.1f}s; "
              f"{total} in collection)")
    if summary.duplicates:
        err.print(f"[yellow]{summary.duplicates} repeated id(s) in the input: the last occurrence was kept[/]")


def _report_files(collection: str, files: List[Path], summary, total: int) -> None:
    err = _stderr()
    # a file named on the command line that cannot be indexed is an error, not a skip
    explicit = {p.name for p in files if not p.is_dir()} | {str(p) for p in files}
    hard = [(path, reason) for path, reason in summary.failed + summary.skipped if path in explicit]
    if hard and not (summary.added or summary.changed or summary.unchanged or summary.renamed):
        for path, reason in hard:
            err.print(f"[red]error:[/] {path}: {reason}", highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    err.print(f"[bold]{collection}[/]: {summary.files_seen} files: {summary.added} added, {summary.changed} changed, "
              f"{summary.unchanged} unchanged, {summary.renamed} renamed, {summary.deleted} deleted; "
              f"{summary.chunks_written} chunks written, {summary.chunks_deleted} removed "
              f"in {summary.seconds:.1f}s ({total} in collection)", highlight=False)
    for path, encoding in summary.decoded:
        err.print(f"[dim]{path}: not UTF-8, read as {encoding}[/]", highlight=False)
    for path, reason in summary.skipped:
        err.print(f"[dim]skipped {path}: {reason}[/]", highlight=False)
    for path, reason in summary.failed:
        err.print(f"[yellow]failed {path}: {reason}[/]", highlight=False)


def _index_parquet(paths: List[Path], store: Path, collection: str, precision: str, batch_size: int,
                   vector_column: Optional[str] = None, vector_batch: int = 4096) -> List[Path]:
    """Index Parquet files that carry usable vectors; returns those whose texts need encoding."""
    from nearspace.ingest.vectors import parquet_vector_column
    from nearspace.integrations.arrow import index_parquet

    err, rest = _stderr(), []
    with _open(store, precision) as opened:
        for path in paths:
            column = parquet_vector_column(path, vector_column)
            existing = opened.get_collection(collection) if collection in opened.list_collections() else None
            # your own vectors (no nearspace encoder recorded): a vectors-only collection, no model
            # loaded; a file that also has text, into a collection with a model, is encoded instead
            if column is not None and (existing is None or existing.vectors_only or vector_column
                                       or not _has_text_column(path)):
                _index_vector_file(opened, collection, path, None, None, vector_batch, column)
                continue
            counts = index_parquet(opened, collection, path, batch_size=batch_size,
                                   echo=lambda line: err.print(f"[yellow]{line}[/]", highlight=False))
            if counts is None:
                rest.append(path)
            else:
                err.print(f"[bold]{collection}[/]: {path}: {counts['added']} added, {counts['updated']} updated, "
                          f"{counts['metadata']} metadata-only, {counts['unchanged']} unchanged "
                          "(vectors taken from the file)", highlight=False)
    return rest


def _has_text_column(path: Path) -> bool:
    import pyarrow.parquet as pq

    return "text" in pq.read_schema(path).names


def _index_npy(npy: List[Path], ids_file: Optional[Path], metadata_file: Optional[Path], paths: List[Path],
               store: Path, collection: str, batch_size: int) -> None:
    """``nearspace index vectors.npy --ids ids.txt [--metadata meta.jsonl]``: one matrix per run."""
    if len(npy) != 1 or len(paths) != 1:
        raise _fail("give exactly one .npy file (with --ids, and optionally --metadata) per run")
    if ids_file is None:
        raise _fail(f"{npy[0]}: a .npy matrix needs --ids FILE (one id per line, in row order)")
    with _open(store) as opened:
        _index_vector_file(opened, collection, npy[0], ids_file, metadata_file, batch_size)


def _index_vector_file(opened, collection: str, path: Path, ids_file: Optional[Path],
                       metadata_file: Optional[Path], batch_size: int, column: Optional[str] = None) -> None:
    from nearspace.ingest.vectors import index_vectors, read_npy_vectors, read_parquet_vectors

    started = time.perf_counter()
    if column is not None:
        items = read_parquet_vectors(path, column)
    else:
        items = read_npy_vectors(path, ids_file, metadata_file)
    counts = index_vectors(opened, collection, items, batch_size=batch_size)
    total = opened.get_collection(collection).count()
    if counts["metadata"]:
        _stderr().print(f"[yellow]{counts['metadata']} stored item(s) had their metadata replaced by {path.name}'s "
                        "(an upsert replaces metadata whole: keys only in the earlier metadata are gone)[/]",
                        highlight=False)
    _stderr().print(f"[bold]{collection}[/]: {path}: {counts['added']} added, {counts['updated']} updated, "
                    f"{counts['metadata']} metadata-only, {counts['unchanged']} unchanged "
                    f"(your own {items.dim}-d vectors, in {time.perf_counter() - started:.1f}s; "
                    f"{total} in collection)", highlight=False)


@app.command()
def models(ctx: typer.Context, store: Optional[Path] = StoreOpt,
           as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """The model kinds available here, and the model each collection of the store was built with."""
    from nearspace.encoders import DEFAULT_ENCODER
    from nearspace.encoders.registry import MODEL_PREFIXES, encoder_kinds

    store, _ = _where(ctx, store, None)
    collections = []
    if _is_uri(store) or store.exists():
        with _open(store) as opened:
            from nearspace.api import model_stamp

            for name in opened.list_collections():
                collections.append({"collection": name, **model_stamp(opened.get_collection(name).backend)})
    payload = {"default": DEFAULT_ENCODER, "kinds": encoder_kinds(), "model_strings": list(MODEL_PREFIXES),
               "collections": collections}
    if as_json:
        typer.echo(json.dumps(payload, ensure_ascii=False, indent=2))
        return
    from rich.table import Table

    out = _stdout()
    out.print(f"default model: [bold]{DEFAULT_ENCODER}[/]; kinds here: {', '.join(payload['kinds'])}; "
              f"model strings: {', '.join(p + '...' for p in MODEL_PREFIXES)}", highlight=False)
    table = Table(title=f"collections in {store}")
    for column in ("collection", "kind", "model", "dim", "query prompt", "document prompt", "where", "fingerprint"):
        table.add_column(column)
    for c in collections:
        options = c.get("options", {})
        table.add_row(c["collection"], c["kind"], c["name"], str(c["dim"]), repr(c.get("query_prompt", "")),
                      repr(c.get("document_prompt", "")), str(options.get("model") or options.get("base_url") or ""),
                      c["fingerprint"] or "-")
    out.print(table)


@app.command()
def export(ctx: typer.Context, collection_name: str = typer.Argument(..., metavar="COLLECTION",
                                                                     help="Collection to export."),
           out: Path = typer.Argument(..., help="Parquet file to write (replaced atomically)."),
           store: Optional[Path] = StoreOpt) -> None:
    """Write a collection to Parquet: id, title, text, metadata (JSON) and vector
    (fixed-size float32 list); `nearspace index out.parquet` reads it back without re-encoding."""
    from nearspace.integrations.arrow import export_parquet

    store, _ = _where(ctx, store, None)
    if not _is_uri(store) and not store.exists():
        raise _fail(f"no store at {store} (index something first, or pass --store)")
    with _open(store) as opened:
        n = export_parquet(opened.get_collection(collection_name), out)
    _stderr().print(f"[bold]{collection_name}[/]: {n} rows written to {out}", highlight=False)


@app.command()
def search(ctx: typer.Context, query: Optional[str] = typer.Argument(None, help="What to look for."),
           k: int = typer.Option(10, "--k", "-k", min=1, max=10_000, help="Number of results."),
           mode: str = typer.Option("hybrid", "--mode", "-m",
                                    help="hybrid, dense, keyword, or all (the three side by side)."),
           where: Optional[List[str]] = typer.Option(None, "--where", "-w",
                                                     help="Metadata filter key=value (also !=, >=, <=, >, <, a|b); repeat to AND."),
           as_json: bool = typer.Option(False, "--json", help="Print a JSON array of results."),
           vector_of: Optional[str] = typer.Option(None, "--vector-of",
                                                   help="Neighbours of this stored item, by its stored vector "
                                                        "(the item itself left out); no query text."),
           rerank: Optional[str] = RerankOpt, rerank_k: Optional[int] = RerankKOpt,
           store: Optional[Path] = StoreOpt, collection: Optional[str] = CollectionOpt, precision: str = PrecisionOpt) -> None:
    """Search a collection by a query, or find the neighbours of a stored item (--vector-of ID)."""
    store, collection = _where(ctx, store, collection)
    from nearspace.store.filters import parse_cli_filter

    if query is None and vector_of is None:
        raise _fail("give a query, or --vector-of ID for the neighbours of a stored item")
    if query is not None and vector_of is not None:
        raise _fail("give a query or --vector-of ID, not both")
    if vector_of is not None and mode not in ("hybrid", "dense"):  # hybrid is only the default here
        raise _fail(f"--vector-of searches by the stored vector (dense); --mode {mode} does not apply")
    filters = [parse_cli_filter(w) for w in where or []]
    where_obj = None if not filters else filters[0] if len(filters) == 1 else {"$and": filters}
    modes = ["keyword", "dense", "hybrid"] if mode == "all" else [mode]
    with _open(store, precision) as opened:
        target = opened.get_collection(collection)
        if vector_of is not None:
            # one more than asked, so k remain when the item itself (usually first) is dropped
            hits = target.search(vector=target.vector_of(vector_of), k=k + 1, where=where_obj)
            mode, modes, query = "dense", ["dense"], f"neighbours of {vector_of}"
            results = {"dense": [h for h in hits if h.id != vector_of][:k]}
            for rank, hit in enumerate(results["dense"], start=1):  # ranks among the neighbours
                hit.ranks["dense"] = rank
        else:
            own = getattr(target, "vectors_only", False)
            if own and mode != "keyword":
                raise _fail(f"collection {collection!r} holds your own vectors, with no model to encode a query: "
                            "find neighbours of a stored item with --vector-of ID, or use --mode keyword "
                            "over stored texts")
            if own and not target.has_words():
                raise _fail(f"collection {collection!r} holds your own vectors without text: there is nothing "
                            "to search by keyword; find neighbours of a stored item with --vector-of ID")
            reranker = None
            if rerank:
                from nearspace.rerank import load_reranker

                reranker = load_reranker(rerank)  # loaded once for every mode
            results = {m: target.search(query, k=k, mode=m, where=where_obj, rerank=reranker, rerank_k=rerank_k)
                       for m in modes}
    if as_json:
        payload = {m: [r.to_dict() for r in rs] for m, rs in results.items()}
        typer.echo(json.dumps(payload if mode == "all" else payload[mode], ensure_ascii=False, indent=2))
        return
    _print_results(query, results)


def _snippet(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit].rsplit(" ", 1)[0] + "…"


def _cell(result) -> str:
    """Title, id and score, then the start of the text: ids alone tell a newcomer nothing."""
    from rich.markup import escape

    head = f"[bold]{escape(_snippet(result.title, 60))}[/]\n" if result.title else ""
    return (f"{head}{escape(result.id)} [dim]({result.score:.3f})[/]\n"
            f"[dim]{escape(_snippet(_shown_text(result), 90))}[/]")


def _shown_text(result) -> str:
    """The text, or for an item of your own vectors without text its metadata."""
    if result.text.strip() or not result.metadata:
        return result.text
    return json.dumps(result.metadata, ensure_ascii=False)


def _print_results(query: str, results: dict) -> None:
    from rich.markup import escape
    from rich.table import Table

    out = _stdout()
    if len(results) > 1:
        table = Table(title=f"“{query}”: keyword vs dense vs hybrid", show_lines=False)
        table.add_column("#", justify="right")
        for mode in results:
            table.add_column(mode, overflow="fold")  # ids are the point here: wrap, never cut
        depth = max(len(rs) for rs in results.values())
        for i in range(depth):
            row = [str(i + 1)]
            for rs in results.values():
                row.append(_cell(rs[i]) if i < len(rs) else "")
            table.add_row(*row, end_section=True)
        out.print(table)
        return
    (mode, rs), = results.items()
    table = Table(title=f"“{query}” ({mode})")
    for column in ("#", "id", "score", "ranks", "text"):
        table.add_column(column, overflow="fold", max_width=70 if column == "text" else None)
    for i, r in enumerate(rs, start=1):
        ranks = " ".join(f"{m}:{rank if rank is not None else '-'}" for m, rank in r.ranks.items())
        snippet = (f"[bold]{escape(r.title)}[/] " if r.title else "") + escape(_snippet(_shown_text(r), 200))
        table.add_row(str(i), escape(r.id), f"{r.score:.4f}", ranks, snippet)
    out.print(table)
    if not rs:
        out.print("[dim]no results[/]")


@app.command()
def ask(ctx: typer.Context, question: str = typer.Argument(..., help="The question."),
        k: int = typer.Option(5, "--k", "-k", min=1, max=100, help="Passages at most."),
        budget: int = typer.Option(1000, "--budget", min=16, help="Token budget for all passages."),
        output: str = typer.Option("text", "--format", help="text, markdown or json."),
        where: Optional[List[str]] = typer.Option(None, "--where", "-w", help="Metadata filter (as in search)."),
        generate: bool = typer.Option(False, "--generate", help="Answer with the LLM at NEARSPACE_LLM_URL."),
        rerank: Optional[str] = RerankOpt, rerank_k: Optional[int] = RerankKOpt,
        store: Optional[Path] = StoreOpt, collection: Optional[str] = CollectionOpt) -> None:
    """Retrieve context for a question: cited passages and the most relevant sentences."""
    from nearspace.store.filters import parse_cli_filter

    if output not in ("text", "markdown", "json"):
        raise _fail(f"--format must be text, markdown or json, got {output!r}")
    store, collection = _where(ctx, store, collection)
    filters = [parse_cli_filter(w) for w in where or []]
    where_obj = None if not filters else filters[0] if len(filters) == 1 else {"$and": filters}
    with _open(store) as opened:
        answer = opened.get_collection(collection).ask(question, k=k, budget=budget, where=where_obj,
                                                       generate=generate, rerank=rerank, rerank_k=rerank_k)
    if output == "json":
        typer.echo(json.dumps(answer.to_dict(), ensure_ascii=False, indent=2))
        return
    from nearspace.rag.render import render_markdown, render_text

    if output == "markdown":
        typer.echo(render_markdown(answer))
    else:
        _stdout().print(render_text(answer))


@app.command()
def delete(ctx: typer.Context, ids: List[str] = typer.Argument(..., help="Document ids to delete."),
           store: Optional[Path] = StoreOpt, collection: Optional[str] = CollectionOpt) -> None:
    """Delete documents by id."""
    store, collection = _where(ctx, store, collection)
    with _open(store) as opened:
        target = opened.get_collection(collection)
        removed = target.delete(ids)
    _stderr().print(f"deleted {removed} of {len(ids)} id(s) from {collection}")
    if removed < len(ids):
        _stderr().print(f"[yellow]{len(ids) - removed} id(s) were not stored[/]")


@app.command()
def info(ctx: typer.Context, store: Optional[Path] = StoreOpt, as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Collections, counts, encoders and sizes on disk."""
    store, _ = _where(ctx, store, None)
    if not _is_uri(store) and not store.exists():
        raise _fail(f"no store at {store} (index something first, or pass --store)")
    with _open(store) as opened:
        details = opened.info()
    if as_json:
        typer.echo(json.dumps(details, indent=2))
        return
    from rich.table import Table

    table = Table(title=f"{details['path']} ({_size(details['bytes'])} on disk)")
    for column in ("collection", "documents", "encoder", "dim", "ANN index"):
        table.add_column(column)
    for c in details["collections"]:
        table.add_row(c["name"], str(c["count"]), c["encoder"], str(c["dim"]),
                      _size(c["ann_bytes"]) if c["ann_bytes"] else "exact")
    _stdout().print(table)
    _stdout().print(f"[dim]bundled model: {details['encoder_choice']} "
                    f"(NEARSPACE_BACKEND=onnx|torch overrides)[/]")


@app.command()
def compact(ctx: typer.Context, store: Optional[Path] = StoreOpt) -> None:
    """Give the space of deleted documents back to the file system."""
    store, _ = _where(ctx, store, None)
    with _open(store) as opened:
        before = opened.info()["bytes"]
        opened.compact()
        after = opened.info()["bytes"]
    _stderr().print(f"{_size(before)} -> {_size(after)}")


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _fail(message: str) -> typer.Exit:
    _stderr().print(f"[red]error:[/] {message}", highlight=False)
    return typer.Exit(1)


def main() -> None:
    """Entry point: bad input becomes a one-line error and exit status 1."""
    import sqlite3

    from nearspace.errors import NearspaceError, translate

    try:
        app()
    except NearspaceError as exc:
        _stderr().print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except (OSError, sqlite3.Error, OverflowError, RecursionError, MemoryError) as exc:
        # a fault below the API (disk full while saving an index file, ...): one line, not a traceback
        mapped = translate(exc) if not isinstance(exc, MemoryError) else None
        if isinstance(mapped, NearspaceError):
            message = str(mapped)
        elif isinstance(exc, MemoryError):
            message = "out of memory; use a smaller --batch-size, or split the input"
        else:
            message = f"{type(exc).__name__}: {exc}"
        _stderr().print(f"[red]error:[/] {message}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except KeyboardInterrupt:
        _stderr().print("[yellow]interrupted: every committed batch is kept; run the same command to resume[/]")
        sys.exit(130)


# commands defined in sibling modules register themselves on ``app``
from nearspace.cli import evaluation as _evaluation  # noqa: E402,F401
from nearspace.cli import recommend as _recommend  # noqa: E402,F401
from nearspace.cli import serve as _serve  # noqa: E402,F401
from nearspace.cli import analyze as _analyze  # noqa: E402,F401
from nearspace.cli import ops as _ops  # noqa: E402,F401
from nearspace.cli import scale as _scale  # noqa: E402,F401
