"""``nearspace recommend ...`` (fit, user, new-user, item, similar-users, explain, info) and
the ``recs`` branch of ``nearspace eval``. Heavy imports happen inside the commands."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, List, Optional

import typer

from nearspace.cli.app import PrecisionOpt, StoreOpt, _stderr, _stdout, _where, app

recommend_app = typer.Typer(no_args_is_help=True, rich_markup_mode="rich",
                            help="Recommendations: embed users and items of an interaction log in one space, "
                                 "then recommend, find similar items/users and explain why.")
app.add_typer(recommend_app, name="recommend")

NameOpt = typer.Option(None, "--name", "-n", "--collection", "-c",
                       help="Recommender name (its collections are NAME-items and NAME-users); default: the collection named by the global option.")
KOpt = typer.Option(10, "--k", "-k", min=1, max=10_000, help="Number of results.")
ModelOpt = typer.Option(None, "--model", "-m",
                        help="popular, itemknn, als, bpr, content or hybrid (default: hybrid when fitted, else als).")
WhereOpt = typer.Option(None, "--where", "-w", help="Item metadata filter key=value (also !=, >=, <=, >, <, a|b); "
                                                    "repeat to AND, e.g. --where genres=Comedy --where year>=1990.")
JsonOpt = typer.Option(False, "--json", help="Print JSON.")
# sidecar item files found next to an interactions file (eval has no --items option)
ITEM_SIDECARS = ("u.item", "movies.dat", "movies.csv", "items.csv", "items.tsv", "items.jsonl", "items.parquet")


def _open(ctx: typer.Context, store: Optional[Path], name: Optional[str], must_exist: bool = True):
    from nearspace.api import open_store
    from nearspace.errors import InputError
    from nearspace.recommend import Recommender

    store_path, name = _where(ctx, store, name)
    if must_exist and not store_path.exists():
        raise InputError(f"no store at {store_path}; fit a recommender first (nearspace recommend fit FILE)")
    opened = open_store(store_path)
    return opened, Recommender(opened, name)


def _filter(where: Optional[List[str]]) -> Optional[dict]:
    from nearspace.store.filters import parse_cli_filter

    filters = [parse_cli_filter(w) for w in where or []]
    return None if not filters else filters[0] if len(filters) == 1 else {"$and": filters}


def _liked(values: List[str]) -> dict[str, float | None] | list[str]:
    """``ITEM`` or ``ITEM=RATING`` (an item without a rating counts as a typical 'liked' value)."""
    from nearspace.errors import InputError

    if not any("=" in v for v in values):
        return list(values)
    out: dict[str, float | None] = {}
    for value in values:
        item, _, rating = value.partition("=")
        try:
            out[item] = float(rating) if rating else None
        except ValueError:
            raise InputError(f"liked item {value!r}: rating {rating!r} is not a number") from None
    return out


def _print(results: list, title: str, as_json: bool, *, reasons: bool = True) -> None:
    if as_json:
        typer.echo(json.dumps([r.to_dict() for r in results], ensure_ascii=False, indent=2))
        return
    from rich.table import Table

    table = Table(title=title)
    for column in ("#", "id", "score", "title", "genres") + (("because",) if reasons else ()):
        table.add_column(column, overflow="fold", max_width=60 if column in ("title", "because") else None)
    for i, r in enumerate(results, start=1):
        genres = r.metadata.get("genres") or ""
        row = [str(i), r.id, f"{r.score:.4f}", r.title + (" [dim](cold)[/]" if r.cold else ""),
               ", ".join(genres) if isinstance(genres, list) else str(genres)]
        if reasons:
            row.append("; ".join(b.title or b.item for b in r.because))
        table.add_row(*row)
    _stdout().print(table)
    if not results:
        _stdout().print("[dim]no results[/]")


@recommend_app.command("fit")
def fit(ctx: typer.Context, file: Path = typer.Argument(..., help="Interactions: CSV, TSV, Parquet or JSONL "
                                                              "(MovieLens u.data works as is)."),
        items: Optional[Path] = typer.Option(None, "--items", help="Item side data (MovieLens u.item, movies.csv, "
                                                                   "or a file with id + title/description/genres)."),
        user_col: Optional[str] = typer.Option(None, "--user-col", help="User column name (default: found by header)."),
        item_col: Optional[str] = typer.Option(None, "--item-col", help="Item column name."),
        rating_col: Optional[str] = typer.Option(None, "--rating-col", help="Explicit rating column."),
        weight_col: Optional[str] = typer.Option(None, "--weight-col", help="Implicit weight column (counts, plays)."),
        time_col: Optional[str] = typer.Option(None, "--time-col", help="Timestamp column (epoch seconds or ISO 8601)."),
        columns: Optional[str] = typer.Option(None, "--columns",
                                              help="Names of a headerless file's columns in order, "
                                                   "e.g. user,item,rating,timestamp."),
        delimiter: Optional[str] = typer.Option(None, "--delimiter", help="Field separator (default: sniffed)."),
        duplicates: str = typer.Option("auto", "--duplicates",
                                       help="Repeated user-item rows: auto (sum a plain log, refuse repeated "
                                            "ratings), error, sum, last or max."),
        models: str = typer.Option("als,bpr", "--models", help="Collaborative models to fit: als, bpr or both."),
        factors: int = typer.Option(64, "--factors", min=1, help="ALS and BPR dimensions."),
        name: Optional[str] = NameOpt, store: Optional[Path] = StoreOpt, precision: str = PrecisionOpt,
        as_json: bool = JsonOpt) -> None:
    """Fit (or refit, atomically replacing) a recommender from an interaction log."""
    from nearspace.api import open_store
    from nearspace.recommend import Params, Recommender, load_interactions, load_items

    store_path, name = _where(ctx, store, name)
    interactions = load_interactions(file, user=user_col, item=item_col, rating=rating_col, weight=weight_col,
                                     timestamp=time_col, delimiter=delimiter, duplicates=duplicates,
                                     columns=[c for c in columns.split(",")] if columns else None)
    side = load_items(items) if items is not None else None
    err = _stderr()
    summary = interactions.summary()
    err.print(f"{file}: {summary['interactions']} interactions, {summary['users']} users, {summary['items']} items"
              + (f" ({interactions.merged} repeated rows combined)" if interactions.merged else "")
              + (f"; {len(side)} described items" if side is not None else ""), highlight=False)
    params = Params(factors=factors, bpr_factors=factors)
    with open_store(store_path, precision=precision) as opened:
        report = Recommender(opened, name).fit(interactions, side, models=[m.strip() for m in models.split(",")
                                                                           if m.strip()], params=params)
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    seconds = ", ".join(f"{k} {v:.1f}s" for k, v in report["fit_seconds"].items())
    err.print(f"[bold]{name}[/]: fitted {', '.join(report['models'])} on {report['interactions']} interactions "
              f"({report['users']} users, {report['items']} items, {report['described_items']} of them described; "
              f"{seconds}; {report['seconds']:.1f}s in all); ALS regularization {report['als_regularization']}, "
              f"hybrid weights {report['hybrid_weights']}; stored in {store_path}", highlight=False)


@recommend_app.command("user")
def user(ctx: typer.Context, user_id: str = typer.Argument(..., help="A user id from the interactions."),
         k: int = KOpt, model: Optional[str] = ModelOpt, where: Optional[List[str]] = WhereOpt,
         include_seen: bool = typer.Option(False, "--include-seen", help="Also recommend items the user has seen."),
         liked: Optional[List[str]] = typer.Option(None, "--liked", "-l",
                                                   help="Items the user liked (ITEM or ITEM=RATING); for an unknown "
                                                        "user this is the new-user path."),
         name: Optional[str] = NameOpt, store: Optional[Path] = StoreOpt, as_json: bool = JsonOpt) -> None:
    """Recommend items for a user, each with the user's items that pulled it in."""
    opened, rec = _open(ctx, store, name)
    with opened:
        results = rec.recommend(user_id, k=k, exclude_seen=not include_seen, where=_filter(where), model=model,
                                liked=_liked(liked) if liked else None)
    _print(results, f"recommendations for user {user_id}", as_json)


@recommend_app.command("new-user")
def new_user(ctx: typer.Context, liked: List[str] = typer.Argument(..., help="Liked items: ITEM or ITEM=RATING."),
             k: int = KOpt, model: Optional[str] = ModelOpt, where: Optional[List[str]] = WhereOpt,
             name: Optional[str] = NameOpt, store: Optional[Path] = StoreOpt, as_json: bool = JsonOpt) -> None:
    """Recommend for a new user from a handful of liked items (cold items count through their content)."""
    opened, rec = _open(ctx, store, name)
    with opened:
        results = rec.recommend_for_items(_liked(liked), k=k, where=_filter(where), model=model)
    _print(results, f"recommendations for a new user who liked {', '.join(liked)}", as_json)


@recommend_app.command("item")
def item(ctx: typer.Context, item_id: str = typer.Argument(..., help="An item id."), k: int = KOpt,
         model: Optional[str] = ModelOpt, where: Optional[List[str]] = WhereOpt,
         name: Optional[str] = NameOpt, store: Optional[Path] = StoreOpt, as_json: bool = JsonOpt) -> None:
    """Items similar to an item."""
    opened, rec = _open(ctx, store, name)
    with opened:
        results = rec.similar_items(item_id, k=k, where=_filter(where), model=model)
    _print(results, f"items similar to {item_id}", as_json, reasons=False)


@recommend_app.command("similar-users")
def similar_users(ctx: typer.Context, user_id: str = typer.Argument(..., help="A user id."), k: int = KOpt,
                  model: Optional[str] = ModelOpt, name: Optional[str] = NameOpt,
                  store: Optional[Path] = StoreOpt, as_json: bool = JsonOpt) -> None:
    """Users whose collaborative vectors are nearest to a user's."""
    opened, rec = _open(ctx, store, name)
    with opened:
        results = rec.similar_users(user_id, k=k, model=model)
    if as_json:
        typer.echo(json.dumps([{"id": r.id, "score": r.score, "metadata": r.metadata} for r in results], indent=2))
        return
    from rich.table import Table

    table = Table(title=f"users similar to {user_id}")
    for column in ("#", "user", "cosine", "interactions"):
        table.add_column(column)
    for i, r in enumerate(results, start=1):
        table.add_row(str(i), r.id, f"{r.score:.4f}", str(r.metadata.get("interactions", "")))
    _stdout().print(table)


@recommend_app.command("explain")
def explain(ctx: typer.Context, user_id: str = typer.Argument(...), item_id: str = typer.Argument(...),
            model: Optional[str] = ModelOpt, name: Optional[str] = NameOpt, store: Optional[Path] = StoreOpt,
            as_json: bool = JsonOpt) -> None:
    """Which of a user's items pull an item in (contribution to its score)."""
    opened, rec = _open(ctx, store, name)
    with opened:
        reasons = rec.explain(user_id, item_id, model=model)
    if as_json:
        typer.echo(json.dumps([r.to_dict() for r in reasons], ensure_ascii=False, indent=2))
        return
    for r in reasons[:10]:
        _stdout().print(f"{r.contribution:+.4f}  {r.item}  {r.title}", highlight=False)


@recommend_app.command("info")
def info(ctx: typer.Context, name: Optional[str] = NameOpt, store: Optional[Path] = StoreOpt,
         as_json: bool = JsonOpt) -> None:
    """What a fitted recommender holds."""
    opened, rec = _open(ctx, store, name)
    with opened:
        details = rec.info()
    if as_json:
        typer.echo(json.dumps(details, indent=2, default=str))
        return
    _stdout().print(f"[bold]{rec.name}[/]: {details['users']} users, {details['items']} items "
                    f"({details['described_items']} described, {details['cold_items']} cold), "
                    f"{details['interactions']} interactions from {details.get('source')}; models "
                    f"{', '.join(details['models'])} (default {details['default_model']})", highlight=False)


# -- nearspace eval recs --------------------------------------------------------------------
def find_item_sidecar(file: Path) -> Path | None:
    for candidate in ITEM_SIDECARS:
        path = file.with_name(candidate)
        if path.exists() and path != file:
            return path
    return None


def eval_recs(ctx: typer.Context, file: Path, split: str, as_json: bool, store: Optional[Path],
              collection: Optional[str], precision: str) -> None:
    """``nearspace eval recs FILE``: every model and both baselines on one split."""
    from nearspace.errors import InputError
    from nearspace.recommend.data import load_interactions, load_items
    from nearspace.recommend.evaluate import SPLITS, evaluate_cold_start, evaluate_split

    err = _stderr()
    interactions = load_interactions(file)
    how = split if split != "test" else ("temporal" if interactions.timestamps is not None else "random")
    if how not in SPLITS:
        raise InputError(f"--split for recs must be temporal or random, got {split!r}")
    if how == "temporal" and interactions.timestamps is None:
        err.print(f"[yellow]{file.name} has no timestamps: using the random split[/]")
        how = "random"
    content = None
    sidecar = find_item_sidecar(file)
    if sidecar is not None:
        content = _content_vectors(ctx, interactions, load_items(sidecar), store, collection, precision, file)
        err.print(f"item side data: {sidecar}", highlight=False)
    report = evaluate_split(interactions, how, content=content,
                            log=lambda message: err.print(message, highlight=False))
    cold = evaluate_cold_start(interactions, content) if content is not None else None
    results = report["results"]
    if as_json:
        typer.echo(json.dumps(results, indent=2))
        if cold is not None:
            err.print(_cold_text(cold), highlight=False, soft_wrap=True)
        return
    _recs_table(f"{file.name}: {how} split ({report['test_users']} users, {report['test_interactions']} held-out "
                f"interactions)", results)
    if cold is not None:
        _stdout().print(_cold_text(cold), highlight=False, soft_wrap=True)


def _content_vectors(ctx: typer.Context, interactions: Any, items: Any, store: Optional[Path],
                     collection: Optional[str], precision: str, file: Path):
    """MiniLM vectors of the item texts, cached in a collection of the store (re-runs skip encoding)."""
    import re

    import numpy as np

    from nearspace.api import open_store

    store_path, _ = _where(ctx, store, None)
    name = collection or "recs-" + (re.sub(r"[^A-Za-z0-9_.-]", "-", file.parent.name or file.stem)[:40] or "eval")
    with open_store(store_path, precision=precision) as opened:
        target = opened.collection(f"{name}-items")
        target.upsert(ids=items.ids, texts=items.texts, titles=items.titles, metadatas=items.metadatas)
        ids, matrix = target.vector_matrix()
        position = {doc_id: n for n, doc_id in enumerate(ids)}
    content = np.zeros((interactions.n_items, matrix.shape[1]), dtype=np.float32)
    for i, item in enumerate(interactions.item_ids):
        if item in position:
            content[i] = matrix[position[item]]
    return content


def _recs_table(title: str, results: dict[str, dict[str, float]]) -> None:
    from rich.table import Table

    from nearspace.recommend.evaluate import METRIC_KEYS

    table = Table(title=title)
    table.add_column("model")
    for label in ("P@10", "R@10", "nDCG@10", "MAP@10", "coverage"):  # short: fits 80 columns
        table.add_column(label, justify="right")
    table.add_column("vs pop", justify="right")
    table.add_column("vs knn", justify="right")
    base, knn = results["popular"]["ndcg@10"], results["itemknn"]["ndcg@10"]
    for model, metrics in results.items():
        table.add_row(model, *[f"{metrics[k]:.4f}" for k in METRIC_KEYS],
                      f"{metrics['ndcg@10'] / base:.2f}x" if base else "-",
                      f"{metrics['ndcg@10'] / knn:.2f}x" if knn else "-")
    _stdout().print(table)


def _cold_text(cold: dict[str, Any]) -> str:
    lines = [f"cold-start items: {cold['protocol']}"]
    for name, metrics in cold["results"].items():
        lines.append(f"  {name:13s} " + "  ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
    return "\n".join(lines)
