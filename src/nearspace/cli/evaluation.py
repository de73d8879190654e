"""``nearspace eval``, ``tune`` and ``adapt``: measure, tune fusion, learn a query adapter."""
from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Optional

import typer

from nearspace.cli.app import CollectionOpt, PrecisionOpt, StoreOpt, _fail, _stderr, _stdout, _where, app

METRIC_KEYS = ("ndcg@10", "recall@100", "mrr@10", "map@100", "queries/s")


def _prepare(ctx: typer.Context, folder: Path, store: Optional[Path], collection: Optional[str],
             precision: str = "auto", strict: bool = False):
    """Load a BEIR folder and make sure its corpus is indexed (unchanged docs are not re-encoded)."""
    from nearspace.api import open_store
    from nearspace.evaluate.beir import load_beir

    store_path, _ = _where(ctx, store, None)
    dataset = load_beir(folder, strict=strict)
    if dataset.skipped:
        _stderr().print(f"[yellow]skipped {len(dataset.skipped)} unusable corpus row(s), e.g. "
                        f"{dataset.skipped[0]}; they count as never retrieved (--strict refuses them)[/]")
    opened = open_store(store_path, precision=precision)
    target = opened.collection(collection or dataset.name)
    counts = target.write_documents(dataset.corpus, show_progress=True)
    if counts["added"] or counts["updated"]:
        target.flush()
        _stderr().print(f"indexed {counts['added'] + counts['updated']} documents into {target.name}")
    if target.count() != len(dataset.corpus):
        _stderr().print(f"[yellow]collection {target.name} holds {target.count()} documents, the corpus "
                        f"{len(dataset.corpus)}: extra documents take part in retrieval[/]")
    return dataset, target, opened


def _table(title: str, results: dict[str, dict[str, float]]) -> None:
    from rich.table import Table

    table = Table(title=title)
    table.add_column("mode")
    for key in METRIC_KEYS:
        table.add_column(key, justify="right")
    for mode, metrics in results.items():
        table.add_row(mode, *[f"{metrics[k]:.4f}" if k != "queries/s" else f"{metrics[k]:.0f}"
                              for k in METRIC_KEYS if k in metrics])
    _stdout().print(table)


@app.command("eval")
def evaluate(ctx: typer.Context,
             target: str = typer.Argument(..., help="A BEIR folder; or 'sts' and an STS-B csv file; or 'recs' and an "
                                              "interaction log (user, item[, rating, timestamp])."),
             file: Optional[Path] = typer.Argument(None, help="With 'sts': the sentence-pair file."),
             split: str = typer.Option("test", "--split", help="Qrels file under qrels/ to score against; with recs: "
                                                "temporal (each user's last interactions held out) or random."),
             as_json: bool = typer.Option(False, "--json", help="Print one JSON object keyed by mode."),
             store: Optional[Path] = StoreOpt, collection: Optional[str] = CollectionOpt,
             precision: str = PrecisionOpt,
             strict: bool = typer.Option(False, "--strict", help="Refuse a corpus with unusable rows "
                                         "(default: skip them and report the count)."),
             rerank: Optional[str] = typer.Option(None, "--rerank", help="Also score keyword, dense and hybrid "
                                                  "with this reranker (ce:FOLDER, rerank:MODEL@URL) on their top "
                                                  "--rerank-k: does it help on your data?"),
             rerank_k: int = typer.Option(50, "--rerank-k", min=1, max=1000,
                                          help="Candidates of each mode the reranker reorders.")) -> None:
    """Score every search mode on a BEIR folder (nDCG@10, Recall@100, MRR@10, MAP@100), an encoder on STS
    (eval sts FILE), or the recommenders on an interaction log (eval recs FILE --split temporal|random)."""
    if target == "sts":
        if file is None:
            raise _fail("usage: nearspace eval sts FILE")
        from nearspace.encoders import load_encoder
        from nearspace.evaluate.sts import evaluate_sts

        result = evaluate_sts(load_encoder(precision=precision), file)
        if as_json:
            typer.echo(json.dumps(result))
        else:
            _stdout().print(f"{file}: Spearman {result['spearman']:.4f}, Pearson {result['pearson']:.4f} "
                            f"over {result['pairs']} pairs")
        return
    if target == "recs":
        if file is None:
            raise _fail("usage: nearspace eval recs FILE [--split temporal|random] [--json]")
        from nearspace.cli.recommend import eval_recs

        eval_recs(ctx, file, split, as_json, store, collection, precision)
        return
    from nearspace.evaluate.retrieval import evaluate_modes

    dataset, coll, opened = _prepare(ctx, Path(target), store, collection, precision, strict)
    with opened:
        qrels = dataset.qrels(split)
        tuned = coll.backend.config().get("fusion")
        results = evaluate_modes(coll, dataset.queries, qrels, tuned=tuned, adapter=True, rerank=rerank,
                                 rerank_k=rerank_k)
    if dataset.skipped:
        results["skipped_documents"] = {"count": len(dataset.skipped), "examples": dataset.skipped[:5]}
    if as_json:
        typer.echo(json.dumps(results, indent=2))
    else:
        _table(f"{dataset.name} ({split}, {len(qrels)} queries)",
               {m: v for m, v in results.items() if m != "skipped_documents"})
        if dataset.skipped:
            _stdout().print(f"{len(dataset.skipped)} unusable corpus row(s) skipped (never retrieved)")


@app.command()
def tune(ctx: typer.Context, folder: Path = typer.Argument(..., help="A BEIR folder."),
         split: Optional[str] = typer.Option(None, "--split", help="Tuning qrels: dev if present, else train. Never test."),
         store: Optional[Path] = StoreOpt, collection: Optional[str] = CollectionOpt,
         as_json: bool = typer.Option(False, "--json")) -> None:
    """Choose hybrid fusion and weights on training or dev qrels; store it; report test separately."""
    from nearspace.evaluate.retrieval import choose_fusion, evaluate_modes, retrieve_candidates

    dataset, coll, opened = _prepare(ctx, folder, store, collection)
    with opened:
        splits = dataset.splits()
        split = split or ("dev" if "dev" in splits else "train")
        if split == "test":
            raise _fail("refusing to tune on test qrels: pick --split train or dev")
        qrels = dataset.qrels(split)
        queries = {q: dataset.queries[q] for q in qrels if q in dataset.queries}
        candidates = retrieve_candidates(coll, queries)
        choice = choose_fusion(candidates, qrels)
        best, score = choice["fusion"], choice["score"]
        if choice["store"]:
            coll.backend.set_config(fusion={**best, "tuned_on": f"{dataset.name}/{split}", f"{split}_ndcg@10": score})
        elif coll.backend.config().get("fusion"):
            coll.backend.set_config(fusion=None)  # an earlier choice is not kept either: the default stands
        report = {"fusion": best, f"{split}_ndcg@10": score, "stored": choice["store"],
                  "held_out_ndcg@10": choice["held_out"], "default_held_out_ndcg@10": choice["default_held_out"],
                  "queries": choice["queries"]}
        if "test" in splits and split != "test":
            test = evaluate_modes(coll, dataset.queries, dataset.qrels("test"), tuned=best if choice["store"] else None)
            report["test"] = test
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    where = (f"{choice['queries']['held_out']} held-out {split} queries" if choice["queries"]["held_out"]
             else f"the {choice['queries']['tuned']} {split} queries (too few to hold any out)")
    if choice["store"]:
        _stdout().print(f"chosen on {split}: {best} -> nDCG@10 {score:.4f}; on {where} it scores "
                        f"{choice['held_out']:.4f} against the default's {choice['default_held_out']:.4f}: "
                        f"stored in collection {coll.name!r}", highlight=False)
    else:
        _stdout().print(f"kept the default fusion: the best of the grid on {split} ({best}) scores "
                        f"{choice['held_out']:.4f} on {where}, not above the default's "
                        f"{choice['default_held_out']:.4f}; nothing stored", highlight=False)
    if "test" in report:
        _table(f"{dataset.name} test (reported, not tuned on)", report["test"])


@app.command()
def adapt(ctx: typer.Context, folder: Path = typer.Argument(..., help="A BEIR folder with qrels/train.tsv."),
          train_split: str = typer.Option("train", "--train-split"),
          dev_split: Optional[str] = typer.Option(None, "--dev-split",
                                                  help="Held-out qrels for early stopping; default dev if present, else 20% of train."),
          epochs: int = typer.Option(60, "--epochs", min=1), seed: int = typer.Option(0, "--seed"),
          store: Optional[Path] = StoreOpt, collection: Optional[str] = CollectionOpt,
          as_json: bool = typer.Option(False, "--json")) -> None:
    """Train a linear query adapter from query-document pairs and store it with the collection."""
    from nearspace.evaluate.retrieval import evaluate_modes
    from nearspace.learn.adapter import fit_linear_adapter, save_adapter

    dataset, coll, opened = _prepare(ctx, folder, store, collection)
    with opened:
        if dev_split == "test" or train_split == "test":
            raise _fail("refusing to train or stop early on test qrels")
        splits = dataset.splits()
        train = dataset.qrels(train_split)
        if dev_split is None and "dev" in splits:
            dev_split = "dev"
        if dev_split:
            dev = dataset.qrels(dev_split)
        else:  # hold out a fifth of the training queries
            qids = sorted(train)
            random.Random(seed).shuffle(qids)
            held = set(qids[: max(1, len(qids) // 5)])
            dev = {q: train[q] for q in held}
            train = {q: r for q, r in train.items() if q not in held}
        doc_ids, matrix = coll.vector_matrix()
        position = {d: i for i, d in enumerate(doc_ids)}
        train_qids = [q for q in train if q in dataset.queries]
        dev_qids = [q for q in dev if q in dataset.queries and any(v > 0 for v in dev[q].values())]
        train_q = coll.embed_queries([dataset.queries[q] for q in train_qids], use_adapter=False)
        dev_q = coll.embed_queries([dataset.queries[q] for q in dev_qids], use_adapter=False)
        positives = [[position[d] for d, rel in train[q].items() if rel > 0 and d in position] for q in train_qids]
        err = _stderr()
        adapter, report = fit_linear_adapter(
            train_q, positives, matrix, doc_ids, dev_q, dev_qids, dev, epochs=epochs, seed=seed,
            progress=lambda epoch, score: err.print(f"epoch {epoch}: dev nDCG@10 {score:.4f}", highlight=False))
        if report.improved:
            save_adapter(coll.backend, adapter)
            verdict = f"stored: dev nDCG@10 {report.dev_ndcg_before:.4f} -> {report.dev_ndcg_after:.4f}"
        else:
            verdict = (f"NOT stored: no gain on held-out queries (dev nDCG@10 stays {report.dev_ndcg_before:.4f})")
        summary = {"verdict": verdict, "train_queries": report.train_queries, "dev_queries": report.dev_queries,
                   "epochs": report.epochs, "best_epoch": report.best_epoch, "seconds": report.seconds}
        if "test" in splits:
            test = dataset.qrels("test")
            tuned = coll.backend.config().get("fusion")
            summary["test"] = evaluate_modes(coll, dataset.queries, test, tuned=tuned, adapter=True)
            # the honest check: test queries whose relevant documents no training query pointed at
            seen = {d for q in train_qids for d, rel in train[q].items() if rel > 0}
            unseen = {q: r for q, r in test.items() if not {d for d, rel in r.items() if rel > 0} & seen}
            if unseen:
                summary["test_unseen_targets"] = evaluate_modes(coll, dataset.queries, unseen, tuned=tuned,
                                                                adapter=True)
                summary["test_unseen_queries"] = len(unseen)
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    _stdout().print(f"adapter {verdict} ({report.train_queries} train / {report.dev_queries} held-out queries, "
                    f"best epoch {report.best_epoch} of {report.epochs}, {report.seconds:.0f}s)")
    if "test" in summary:
        _table(f"{dataset.name} test", summary["test"])
    if "test_unseen_targets" in summary:
        _table(f"{dataset.name} test, only the {summary['test_unseen_queries']} queries whose relevant documents "
               "no training query pointed at", summary["test_unseen_targets"])
