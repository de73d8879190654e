"""``nearspace classify|cluster|map|neighbors|duplicates|outliers|words|bias``: understand the space.

Heavy libraries (torch, scikit-learn, gensim, umap, matplotlib) are imported inside the
commands, so ``nearspace --help`` stays fast.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import List, Optional

import typer

from nearspace.cli.app import CollectionOpt, PrecisionOpt, StoreOpt, _open, _stderr, _stdout, _where, app
from nearspace.errors import InputError
from nearspace.types import embedding_text

classify_app = typer.Typer(no_args_is_help=True, help="Classify texts: logistic regression on embeddings, "
                                                      "k-nearest-neighbour voting, or zero-shot from label names.")
words_app = typer.Typer(no_args_is_help=True, help="Word vectors learned from context (word2vec / fastText): "
                                                   "train, similar words, analogies, evaluation.")
app.add_typer(classify_app, name="classify")
app.add_typer(words_app, name="words")

JsonOpt = typer.Option(False, "--json", help="Print JSON.")


def _dump(payload) -> None:
    typer.echo(json.dumps(payload, indent=2, ensure_ascii=False))


def _existing(opened, collection: str):
    return opened.get_collection(collection)


def _short(text: str, width: int = 90) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[:width - 1] + "…"


# -- classify ---------------------------------------------------------------------------------------
@classify_app.command("fit")
def classify_fit(ctx: typer.Context,
                 train: Optional[Path] = typer.Argument(None, help="Optional JSON Lines of labelled examples "
                                                                   "({text, label}) to add to the collection first."),
                 method: str = typer.Option("logreg", "--method", "-m", help="logreg, knn or zero-shot."),
                 label_field: str = typer.Option("label", "--label-field", help="Metadata field holding the label."),
                 labels: Optional[Path] = typer.Option(None, "--labels", help="zero-shot: JSON label -> short "
                                                                              "description, or a list of label names."),
                 allow_unlabelled: bool = typer.Option(False, "--allow-unlabelled",
                                                       help="Train on the labelled documents, ignoring the others."),
                 seed: int = typer.Option(0, "--seed"), as_json: bool = JsonOpt,
                 store: Optional[Path] = StoreOpt, collection: Optional[str] = CollectionOpt,
                 precision: str = PrecisionOpt) -> None:
    """Train a classifier on the collection's labelled documents and store it with the collection."""
    from nearspace.analyze import classify as C
    from nearspace.analyze.data import check_classes, load_collection, read_labelled

    store, collection = _where(ctx, store, collection)
    if method not in C.METHODS:
        raise InputError(f"unknown method {method!r}; choose from {', '.join(C.METHODS)}")
    descriptions = C.read_descriptions(labels) if labels else None
    examples = None
    if train is not None:  # validate everything before the first write
        texts, file_labels = read_labelled(train)
        check_classes(file_labels, minimum=1 if method == "zero-shot" else 2, where=str(train))
        examples = (texts, file_labels)
    with _open(store, precision) as opened:
        if train is None and collection not in opened.list_collections():
            if method == "zero-shot" and descriptions:
                coll = opened.collection(collection)
                clf = C.zero_shot_classifier(coll, list(descriptions), descriptions)
                return _report_fit(clf, coll.name, as_json)
            raise InputError(f"unknown collection {collection!r}: give a TRAIN.jsonl file, or --labels for zero-shot")
        coll = opened.collection(collection)
        if examples is not None:
            if coll.count():
                present = [v for v in load_collection(coll).field(label_field)]
                unlabelled = sum(1 for v in present if v is None)
                if unlabelled and not allow_unlabelled:
                    raise InputError(f"collection {collection!r} already holds {unlabelled} document(s) without a "
                                     f"'{label_field}'; use a fresh collection or --allow-unlabelled")
            texts, file_labels = examples
            stem = train.stem
            coll.upsert(ids=[f"{stem}:{i}" for i in range(len(texts))], texts=texts,
                        metadatas=[{label_field: label} for label in file_labels],
                        show_progress=len(texts) > 1000)
        elif method == "zero-shot" and descriptions and not any(
                v is not None for v in load_collection(coll).field(label_field)):
            clf = C.zero_shot_classifier(coll, list(descriptions), descriptions)
            return _report_fit(clf, coll.name, as_json)
        clf = C.fit_collection(coll, method=method, label_field=label_field, descriptions=descriptions,
                               allow_unlabelled=allow_unlabelled, seed=seed)
    _report_fit(clf, collection, as_json)


def _report_fit(clf, collection: str, as_json: bool) -> None:
    from nearspace.analyze.classify import describe

    if as_json:
        _dump({"collection": collection, **{k: v for k, v in clf.meta.items() if k != "descriptions"}})
        return
    _stderr().print(f"stored in [bold]{collection}[/]: {describe(clf)}", highlight=False)


@classify_app.command("predict")
def classify_predict(ctx: typer.Context, texts: Optional[List[str]] = typer.Argument(None, help="Texts to label."),
                     file: Optional[Path] = typer.Option(None, "--file", "-f",
                                                         help="JSON Lines with a 'text' field, or plain text (one per line)."),
                     top: int = typer.Option(3, "--top", min=1, help="Best labels to show per text."),
                     ids: Optional[List[str]] = typer.Option(None, "--id", help="Label this stored item by its "
                                                                                "stored vector (repeat; works on "
                                                                                "your own vectors)."),
                     as_json: bool = JsonOpt, store: Optional[Path] = StoreOpt,
                     collection: Optional[str] = CollectionOpt, precision: str = PrecisionOpt) -> None:
    """Label texts (or stored items, --id) with the collection's stored classifier."""
    from nearspace.analyze.classify import predict, predict_ids

    store, collection = _where(ctx, store, collection)
    items = list(texts or [])
    if file is not None:
        items += _read_texts(file)
    if ids and items:
        raise InputError("give texts (or --file), or stored ids with --id, not both")
    if not items and not ids:
        raise InputError("give texts to classify, --file, or --id ID of a stored item")
    with _open(store, precision) as opened:
        target = _existing(opened, collection)
        predictions = predict_ids(target, ids, top=top) if ids else predict(target, items, top=top)
    if as_json:
        _dump([p.to_dict() for p in predictions])
        return
    from rich.table import Table

    table = Table(title=f"{collection}: predictions")
    for column in ("text", "label", "score", "next"):
        table.add_column(column, overflow="fold", max_width=60 if column == "text" else None)
    for p in predictions:
        table.add_row(_short(p.text, 60), p.label, f"{p.score:.3f}",
                      ", ".join(f"{label} {score:.2f}" for label, score in p.top[1:]))
    _stdout().print(table)


def _read_texts(path: Path) -> list[str]:
    if path.suffix in (".jsonl", ".ndjson"):
        from nearspace.jsonl import read_jsonl_values

        texts = []
        for lineno, record in read_jsonl_values(path):
            if not isinstance(record.get("text"), str):
                raise InputError(f"{path}:{lineno}: expected an object with a 'text'")
            texts.append(record["text"])
        return texts
    try:
        raw = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    out = [line for line in raw.splitlines() if line.strip()]  # plain text: one text per line
    return out


@classify_app.command("eval")
def classify_eval(train: Path = typer.Argument(..., help="Training JSON Lines ({text, label})."),
                  test: Path = typer.Argument(..., help="Test JSON Lines ({text, label})."),
                  variants: str = typer.Option("embedding,tfidf,onehot,knn,zero-shot", "--variants",
                                               help="Comma-separated subset of embedding, tfidf, onehot, knn, zero-shot."),
                  per_class: Optional[int] = typer.Option(None, "--per-class", min=1,
                                                          help="Train on this many random examples per class."),
                  labels: Optional[Path] = typer.Option(None, "--labels", help="zero-shot: JSON label -> description."),
                  seed: int = typer.Option(0, "--seed"), as_json: bool = JsonOpt,
                  precision: str = PrecisionOpt) -> None:
    """Compare classifiers on a train/test split: accuracy, macro-F1, fit and predict time."""
    from nearspace.analyze import classify as C
    from nearspace.analyze.data import read_labelled
    from nearspace.encoders import load_encoder

    chosen = [v.strip() for v in variants.split(",") if v.strip()]
    train_texts, train_labels = read_labelled(train)
    test_texts, test_labels = read_labelled(test)
    if per_class:
        keep = C.subsample_per_class(train_texts, train_labels, per_class, seed)
        train_texts, train_labels = [train_texts[i] for i in keep], [train_labels[i] for i in keep]
    unseen = sorted(set(test_labels) - set(train_labels))
    if unseen:
        _stderr().print(f"[yellow]{len(unseen)} test label(s) never occur in training (e.g. {unseen[0]!r}): "
                        "those examples cannot be classified correctly[/]")
    descriptions = C.read_descriptions(labels) if labels else None
    encoder = load_encoder(precision=precision) if any(v in ("embedding", "knn", "zero-shot") for v in chosen) else None
    results = C.evaluate(train_texts, train_labels, test_texts, test_labels, encoder=encoder, variants=chosen,
                         descriptions=descriptions, seed=seed)
    if as_json:
        _dump(results)
        return
    from rich.table import Table

    table = Table(title=f"{train.name} ({len(train_texts)} examples, {len(set(train_labels))} classes) -> "
                        f"{test.name} ({len(test_texts)})")
    for column in ("variant", "accuracy", "macro-F1", "fit s", "predict s", "chosen"):
        table.add_column(column, justify="left" if column in ("variant", "chosen") else "right")
    for name, r in results.items():
        chosen_param = f"C={r['C']}" if "C" in r else f"k={r['k']}" if "k" in r else r.get("label_source", "")
        table.add_row(name, f"{r['accuracy']:.4f}", f"{r['macro_f1']:.4f}", f"{r['fit_s']:.2f}",
                      f"{r['predict_s']:.2f}", chosen_param)
    _stdout().print(table)


# -- clusters, maps, neighbours ---------------------------------------------------------------------
@app.command()
def cluster(ctx: typer.Context, method: str = typer.Option("kmeans", "--method", "-m", help="kmeans or hdbscan."),
            k: Optional[int] = typer.Option(None, "--k", "-k", help="k-means clusters (default: suggested by silhouette)."),
            min_cluster_size: Optional[int] = typer.Option(None, "--min-cluster-size", help="hdbscan's smallest cluster."),
            save: bool = typer.Option(True, "--save/--no-save", help="Store the clustering with the collection."),
            seed: int = typer.Option(0, "--seed"), as_json: bool = JsonOpt,
            store: Optional[Path] = StoreOpt, collection: Optional[str] = CollectionOpt) -> None:
    """Cluster a collection; each cluster is named by its most distinctive terms (c-TF-IDF)."""
    from nearspace.analyze.cluster import NOISE, cluster_collection

    store, collection = _where(ctx, store, collection)
    with _open(store) as opened:
        result = cluster_collection(_existing(opened, collection), method=method, k=k,
                                    min_cluster_size=min_cluster_size, seed=seed, save=save)
    if as_json:
        _dump(result.to_dict())
        return
    from rich.table import Table

    params = result.params
    note = f"k={result.k}" + (" (suggested by silhouette)" if "suggested_k" in params else "")
    if params.get("silhouette") is not None:
        note += f", silhouette {params['silhouette']:.3f}"
    table = Table(title=f"{collection}: {method}, {note}")
    for column in ("cluster", "size", "distinctive terms", "central documents"):
        table.add_column(column, overflow="fold")
    for c in result.clusters:
        table.add_row("noise" if c.id == NOISE else str(c.id), str(c.size), ", ".join(c.terms[:8]),
                      ", ".join(c.examples))
    _stdout().print(table)
    if save:
        _stderr().print(f"[dim]stored with {collection}; `nearspace map --color cluster` uses it[/]")


@app.command("map")
def map_command(ctx: typer.Context, out: Path = typer.Option(..., "--out", "-o",
                                                             help="FILE.html (interactive) or FILE.png/.pdf/.svg."),
                method: str = typer.Option("pca", "--method", "-m", help="pca (fast) or umap."),
                color: str = typer.Option("cluster", "--color", "--color-by",
                                          help="cluster, label, none, or any metadata field."),
                title: Optional[str] = typer.Option(None, "--title"), seed: int = typer.Option(0, "--seed"),
                store: Optional[Path] = StoreOpt, collection: Optional[str] = CollectionOpt) -> None:
    """Draw a 2-D map of the collection (interactive HTML, or a figure)."""
    from nearspace.analyze.maps import FORMATS, build_map, render

    if out.suffix.lower() not in FORMATS:
        raise InputError(f"unsupported map format {out.suffix or '(none)'!r}; use {', '.join(FORMATS)}")
    store, collection = _where(ctx, store, collection)
    with _open(store) as opened:
        data = build_map(_existing(opened, collection), method=method, color_by=color, title=title, seed=seed)
    render(data, out)
    groups = f", {len(data.legend)} groups" if data.legend else ""
    _stderr().print(f"wrote {out} ({len(data.ids)} documents, {method.upper()}, coloured by {color}{groups})")


@app.command()
def neighbors(ctx: typer.Context, doc_id: str = typer.Argument(..., help="A stored document id."),
              k: int = typer.Option(10, "--k", "-k", min=1), as_json: bool = JsonOpt,
              store: Optional[Path] = StoreOpt, collection: Optional[str] = CollectionOpt) -> None:
    """The documents nearest a stored document."""
    from nearspace.analyze.neighbors import neighbors as find

    store, collection = _where(ctx, store, collection)
    with _open(store) as opened:
        found = find(_existing(opened, collection), doc_id, k=k)
    if as_json:
        _dump([n.to_dict() for n in found])
        return
    from rich.table import Table

    table = Table(title=f"nearest {doc_id}")
    for column in ("#", "id", "cosine", "text"):
        table.add_column(column, overflow="fold")
    for i, n in enumerate(found, start=1):
        table.add_row(str(i), n.id, f"{n.score:.4f}", _short(n.text))
    _stdout().print(table)


@app.command()
def duplicates(ctx: typer.Context, threshold: float = typer.Option(0.95, "--threshold", "-t",
                                                                   help="Cosine similarity that counts as a duplicate."),
               as_json: bool = JsonOpt, store: Optional[Path] = StoreOpt,
               collection: Optional[str] = CollectionOpt) -> None:
    """Groups of near-duplicate documents."""
    from nearspace.analyze.neighbors import duplicates as find

    store, collection = _where(ctx, store, collection)
    with _open(store) as opened:
        groups = find(_existing(opened, collection), threshold=threshold)
    if as_json:
        _dump(groups)
        return
    if not groups:
        _stdout().print(f"no near-duplicates at cosine >= {threshold}")
        return
    from rich.table import Table

    table = Table(title=f"{len(groups)} group(s) at cosine >= {threshold}")
    for column in ("size", "similarity", "ids", "first text"):
        table.add_column(column, overflow="fold")
    for g in groups:
        table.add_row(str(g["size"]), f"{g['min_similarity']:.3f}-{g['max_similarity']:.3f}", ", ".join(g["ids"][:8]),
                      _short(g["texts"][0], 70))
    _stdout().print(table)


@app.command()
def outliers(ctx: typer.Context, top: int = typer.Option(10, "--top", min=1),
             k: int = typer.Option(10, "--k", "-k", min=1, help="Neighbours that define a document's surroundings."),
             as_json: bool = JsonOpt, store: Optional[Path] = StoreOpt,
             collection: Optional[str] = CollectionOpt) -> None:
    """Documents least like the rest (1 - mean cosine to their k nearest neighbours)."""
    from nearspace.analyze.neighbors import outliers as find

    store, collection = _where(ctx, store, collection)
    with _open(store) as opened:
        found = find(_existing(opened, collection), top=top, k=k)
    if as_json:
        _dump(found)
        return
    from rich.table import Table

    table = Table(title=f"{collection}: {len(found)} most isolated documents (k={k})")
    for column in ("id", "score", "nearest", "text"):
        table.add_column(column, overflow="fold")
    for o in found:
        table.add_row(o["id"], f"{o['score']:.3f}", f"{o['nearest']} ({o['nearest_similarity']:.2f})", _short(o["text"], 70))
    _stdout().print(table)


# -- words ------------------------------------------------------------------------------------------
def _words_name(opened, collection: str, words: Optional[str]) -> str:
    from nearspace.analyze.words import words_collection_for

    return words or words_collection_for(opened, collection)


@words_app.command("train")
def words_train(ctx: typer.Context,
                corpus: Optional[List[Path]] = typer.Argument(None, help="Files or folders (.jsonl incl. BEIR "
                                                                         "corpus.jsonl, .txt, .md); default: the "
                                                                         "collection's own text."),
                into: Optional[str] = typer.Option(None, "--into", help="Words collection to write "
                                                                        "(default: <collection>.words)."),
                method: str = typer.Option("word2vec", "--method", "-m", help="word2vec or fasttext (skip-gram)."),
                dim: int = typer.Option(100, "--dim"), window: int = typer.Option(5, "--window"),
                min_count: int = typer.Option(3, "--min-count"), epochs: int = typer.Option(10, "--epochs"),
                seed: int = typer.Option(0, "--seed"),
                workers: int = typer.Option(1, "--workers", min=1, help="Threads (1 = reproducible)."),
                as_json: bool = JsonOpt, store: Optional[Path] = StoreOpt,
                collection: Optional[str] = CollectionOpt) -> None:
    """Learn word vectors from a corpus and store them as a collection of words."""
    from nearspace.analyze.words import save_words, train

    store, collection = _where(ctx, store, collection)
    if corpus:
        from nearspace.ingest import collect_documents

        report = collect_documents(corpus)
        texts = [f"{d.title} {d.text}" if d.title else d.text for d in report.documents]
        source = ", ".join(str(p) for p in corpus)
        if not texts:
            raise InputError(f"no documents found in {source}")
    with _open(store) as opened:
        if not corpus:
            rows = _existing(opened, collection).backend.rows()
            texts = [embedding_text(row.document) for batch in rows for row in batch]
            source = f"collection {collection}"
        name = into or f"{collection}.words"
        wv = train(texts, method=method, dim=dim, window=window, min_count=min_count, epochs=epochs, seed=seed,
                   workers=workers)
        save_words(opened, name, wv, source=source)
    if as_json:
        _dump({"collection": name, "source": source, **wv.meta})
        return
    m = wv.meta
    _stderr().print(f"[bold]{name}[/]: {m['vocabulary']} words ({m['method']}, {m['dim']}d) from {m['tokens']:,} "
                    f"tokens of {source} in {m['train_s']:.1f}s", highlight=False)


@words_app.command("similar")
def words_similar(ctx: typer.Context, word: str = typer.Argument(...), k: int = typer.Option(10, "--k", "-k", min=1),
                  words: Optional[str] = typer.Option(None, "--words", help="Words collection (default: the "
                                                                            "collection itself or <collection>.words)."),
                  as_json: bool = JsonOpt, store: Optional[Path] = StoreOpt,
                  collection: Optional[str] = CollectionOpt) -> None:
    """Words used in the most similar contexts."""
    from nearspace.analyze.words import load_words

    store, collection = _where(ctx, store, collection)
    with _open(store) as opened:
        found = load_words(opened, _words_name(opened, collection, words)).similar(word, k)
    _print_words(f"nearest {word!r}", found, as_json)


@words_app.command("analogy")
def words_analogy(ctx: typer.Context, a: str = typer.Argument(..., help="king"), b: str = typer.Argument(..., help="man"),
                  c: str = typer.Argument(..., help="woman"), k: int = typer.Option(5, "--k", "-k", min=1),
                  words: Optional[str] = typer.Option(None, "--words"), as_json: bool = JsonOpt,
                  store: Optional[Path] = StoreOpt, collection: Optional[str] = CollectionOpt) -> None:
    """A is to B as ? is to C: the words nearest A - B + C (king man woman -> queen)."""
    from nearspace.analyze.words import load_words

    store, collection = _where(ctx, store, collection)
    with _open(store) as opened:
        found = load_words(opened, _words_name(opened, collection, words)).analogy(a, b, c, k)
    _print_words(f"{a} - {b} + {c}", found, as_json)


def _print_words(title: str, found: list[tuple[str, float]], as_json: bool) -> None:
    if as_json:
        _dump([{"word": w, "score": s} for w, s in found])
        return
    from rich.table import Table

    table = Table(title=title)
    table.add_column("#", justify="right")
    table.add_column("word")
    table.add_column("cosine", justify="right")
    for i, (w, s) in enumerate(found, start=1):
        table.add_row(str(i), w, f"{s:.4f}")
    _stdout().print(table)


def _default_words_data() -> Path:
    root = Path(os.environ.get("NEARSPACE_DATA", Path.cwd().parent / "shared" / "data"))
    return root / "words"


@words_app.command("eval")
def words_eval(ctx: typer.Context,
               data: Optional[Path] = typer.Argument(None, help="Folder with wordsim353.tsv, simlex999.txt and "
                                                                "questions-words.txt (default: $NEARSPACE_DATA/words)."),
               words: Optional[str] = typer.Option(None, "--words", help="Words collection to score (default: the "
                                                                         "collection itself or <collection>.words)."),
               encoder: bool = typer.Option(True, "--encoder/--no-encoder", help="Score the sentence encoder too."),
               as_json: bool = JsonOpt, store: Optional[Path] = StoreOpt,
               collection: Optional[str] = CollectionOpt, precision: str = PrecisionOpt) -> None:
    """Word similarity (WordSim-353, SimLex-999) and analogies: word vectors vs sentence encoder vs one-hot."""
    from nearspace.analyze.words import evaluate_words, load_words

    data = data or _default_words_data()
    store_path, collection = _where(ctx, store, collection)
    wv = None
    if words or store_path.exists():
        with _open(store_path) as opened:
            name = _words_name(opened, collection, words)
            if words or name in opened.list_collections():
                wv = load_words(opened, name)
    if wv is None:
        _stderr().print("[yellow]no words collection found: scoring the sentence encoder and one-hot only[/]")
    from nearspace.encoders import load_encoder

    report = evaluate_words(data, wv, load_encoder(precision=precision) if encoder else None)
    if as_json:
        _dump(report)
        return
    _print_words_report(report)


def _print_words_report(report: dict) -> None:
    from rich.table import Table

    from nearspace.analyze.words import fmt

    out = _stdout()
    for key, title in (("wordsim353", "WordSim-353"), ("simlex999", "SimLex-999")):
        r = report[key]
        table = Table(title=f"{title}: Spearman vs human scores ({r['covered']} of {r['pairs']} pairs covered, "
                            f"{r['coverage']:.0%})")
        for column in ("representation", "covered pairs", "all pairs"):
            table.add_column(column, justify="left" if column == "representation" else "right")
        for name, row in r["results"].items():
            table.add_row(name, fmt(row.get("spearman_covered")), fmt(row.get("spearman_all")) if "spearman_all" in row else "-")
        out.print(table)
    table = Table(title="Google analogies (3CosAdd accuracy)")
    for column in ("representation", "questions asked", "candidates", "all", "semantic", "syntactic"):
        table.add_column(column, justify="left" if column == "representation" else "right")
    for name, row in report["analogies"].items():
        table.add_row(name, f"{row['covered']} of {row['questions']}", str(row["candidates"]), fmt(row["accuracy"]),
                      fmt(row["semantic"]), fmt(row["syntactic"]))
    out.print(table)


# -- bias -------------------------------------------------------------------------------------------
@app.command()
def bias(ctx: typer.Context,
         test: Optional[List[str]] = typer.Option(None, "--test", "-t", help="weat1 ... weat10 (default: all ten, "
                                                                             "unless custom sets are given)."),
         words: Optional[str] = typer.Option(None, "--words", help="Use this words collection's vectors instead of "
                                                                   "the sentence encoder."),
         template: Optional[str] = typer.Option(None, "--template", help="Sentence encoder: embed each word in a "
                                                                         "template such as 'This is {}.'"),
         custom: Optional[Path] = typer.Option(None, "--custom", help="JSON test(s): {name, X, Y, A, B} or a list."),
         x: Optional[str] = typer.Option(None, "--x", help="Target words X, comma-separated."),
         y: Optional[str] = typer.Option(None, "--y", help="Target words Y."),
         a: Optional[str] = typer.Option(None, "--a", help="Attribute words A."),
         b: Optional[str] = typer.Option(None, "--b", help="Attribute words B."),
         permutations: int = typer.Option(100_000, "--permutations", min=100,
                                          help="Random partitions for the p-value (exact when fewer exist)."),
         seed: int = typer.Option(0, "--seed"), as_json: bool = JsonOpt,
         store: Optional[Path] = StoreOpt, collection: Optional[str] = CollectionOpt,
         precision: str = PrecisionOpt) -> None:
    """Word Embedding Association Test (Caliskan et al. 2017): effect size and permutation p-value."""
    from nearspace.analyze import bias as B

    chosen = []
    for name in test or []:
        if name.lower() not in B.STANDARD_TESTS:
            raise InputError(f"unknown test {name!r}; choose from {', '.join(B.STANDARD_TESTS)}")
        chosen.append(B.STANDARD_TESTS[name.lower()])
    given = [v for v in (x, y, a, b) if v is not None]
    if given and len(given) != 4:
        raise InputError("a custom test needs all four sets: --x, --y, --a and --b")
    if given:
        chosen.append(B.custom_test("custom", x, y, a, b))
    if custom is not None:
        try:
            spec = json.loads(custom.read_text(encoding="utf-8"))
        except OSError as exc:
            raise InputError(f"{custom}: cannot read ({exc.strerror or exc})") from None
        except json.JSONDecodeError as exc:
            raise InputError(f"{custom}: malformed JSON ({exc.msg})") from None
        chosen += [B.custom_test_from_dict(s) for s in (spec if isinstance(spec, list) else [spec])]
    if not chosen:
        chosen = list(B.STANDARD_TESTS.values())
    if words:
        from nearspace.analyze.words import load_words

        store_path, _ = _where(ctx, store, collection)
        with _open(store_path) as opened:
            wv = load_words(opened, words)
        embed, source = B.vocabulary_embedder(wv.vector), f"word vectors {words!r} ({len(wv)} words)"
    else:
        from nearspace.encoders import load_encoder

        embed = B.encoder_embedder(load_encoder(precision=precision), template)
        source = "sentence encoder all-MiniLM-L6-v2" + (f", template {template!r}" if template else "")
    results, failures = [], {}
    for t in chosen:
        try:
            results.append(B.run_weat(t, embed, permutations=permutations, seed=seed))
        except InputError as exc:
            if len(chosen) == 1:
                raise
            failures[t.name] = str(exc)  # one test short of words must not hide the others
    if as_json:
        _dump({"source": source, "results": [r.to_dict() for r in results], "skipped": failures})
        return
    from rich.table import Table

    table = Table(title=f"WEAT on {source}")
    for column in ("test", "X vs Y / A vs B", "effect size d", "p-value", "paper d (GloVe)", "missing words"):
        table.add_column(column, overflow="fold", justify="right" if column in ("effect size d", "p-value") else "left")
    for r in results:
        t = next(t for t in chosen if t.name == r.name)
        missing = sum(len(v) for v in r.missing.values())
        table.add_row(r.name, f"{t.x_name} vs {t.y_name} / {t.a_name} vs {t.b_name}", f"{r.effect_size:+.2f}",
                      f"{r.p_value:.2g}" + ("" if r.exact else "*"), f"{r.paper_d:.2f}" if r.paper_d else "-",
                      str(missing) if missing else "")
    _stdout().print(table)
    _stderr().print("[dim]p-values are one-sided; * = estimated from random partitions, otherwise exact[/]")
    for name, reason in failures.items():
        _stderr().print(f"[yellow]skipped {name}: {reason}[/]", highlight=False)
