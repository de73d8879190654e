"""Recommendations on MovieLens 100K: fit time, per-user latency and quality, against the
most-popular and item-kNN baselines measured in the same run.

1. Fit time on all 100,000 ratings (median of --repeats): ALS (64 factors, 15 iterations),
   BPR, and the baselines item-kNN (implicit's cosine, K=100) and most-popular (a count).
2. Store fit: ``Recommender.fit`` into a cached store (benchmarks/results/recommend_ml100k.db);
   the first run also encodes the 1682 item texts with MiniLM, reruns reuse them.
3. Latency per user: ``Recommender.recommend(user, k=10)`` (seen items excluded, titles
   fetched from SQLite), with and without explanations, per model; users interleaved so
   machine load affects every model alike. Reference floor: a bare numpy ALS top-10.
4. Quality (skipped with --quick): every model and both baselines on a temporal and a random
   split (20% of each user's interactions held out), plus the cold-start item protocol.

    python benchmarks/recommend.py            # full (a few minutes on a 2-core CPU)
    python benchmarks/recommend.py --quick    # fit + latency only, 100 users
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

from _common import DATA_ROOT, RESULTS_DIR, fmt_latency, latency_summary, require, verdict, write_result  # noqa: E402

ML = DATA_ROOT / "movielens-100k"
MODELS = ("popular", "itemknn", "als", "bpr", "hybrid")


def fit_timings(data, repeats: int) -> dict[str, dict[str, float]]:
    from nearspace.recommend.models import Params, fit_models

    matrix = data.matrix()
    params = Params(als_regularization=30.0, hybrid_weights=[0.0, 0.0])
    times: dict[str, list[float]] = {"popular": [], "itemknn": [], "als": [], "bpr": []}
    for _ in range(repeats):
        started = time.perf_counter()
        np.asarray((matrix > 0).sum(axis=0)).ravel()
        times["popular"].append(time.perf_counter() - started)
        for model in ("als", "bpr"):
            fitted = fit_models(matrix, data.user_ids, data.item_ids, params, models=(model,))
            times[model].append(fitted.fit_seconds[model])
        times["itemknn"].append(fitted.fit_seconds["itemknn"])
    out = {m: {"median_s": statistics.median(ts), "runs": ts} for m, ts in times.items()}
    for m in out:
        out[m]["vs_itemknn"] = out[m]["median_s"] / out["itemknn"]["median_s"]
    return out


def store_fit(data, items) -> tuple[object, dict]:
    from nearspace.api import open_store
    from nearspace.recommend import Recommender

    path = RESULTS_DIR / "recommend_ml100k.db"
    first = not path.exists()
    store = open_store(path)
    rec = Recommender(store, "ml")
    report = rec.fit(data, items)
    report["encoded_items_this_run"] = first
    return rec, report


def latency(rec, users: list[str], warmup: int) -> dict[str, dict]:
    state = rec._state()
    models = state.models
    for user in users[:warmup]:
        for model in MODELS:
            rec.recommend(user, k=10, model=model)
    timings: dict[str, list[float]] = {}
    for user in users:
        for model in MODELS:
            for explain in (False, True):
                name = f"{model}{' +explain' if explain else ''}"
                started = time.perf_counter()
                rec.recommend(user, k=10, model=model, explain=explain)
                timings.setdefault(name, []).append(time.perf_counter() - started)
        index = state.user_index[user]
        started = time.perf_counter()
        scores = models.als_item @ models.als_user[index]
        scores[models.train.indices[models.train.indptr[index]:models.train.indptr[index + 1]]] = -np.inf
        top = np.argpartition(-scores, 10)[:10]
        top[np.argsort(-scores[top])]
        timings.setdefault("numpy ALS top-10 floor", []).append(time.perf_counter() - started)
    liked = ["50", "172", "181"]
    for _ in range(min(len(users), 50)):
        started = time.perf_counter()
        rec.recommend_for_items(liked, k=10)
        timings.setdefault("new user (3 liked, hybrid +explain)", []).append(time.perf_counter() - started)
        started = time.perf_counter()
        rec.similar_items("50", k=10)
        timings.setdefault("similar items (hybrid)", []).append(time.perf_counter() - started)
    return {name: latency_summary(ts) for name, ts in timings.items()}


def quality(data, content) -> dict:
    from nearspace.recommend import evaluate_cold_start, evaluate_split

    out = {}
    for how in ("temporal", "random"):
        started = time.perf_counter()
        report = evaluate_split(data, how, content=content)
        report["seconds"] = time.perf_counter() - started
        out[how] = report
    out["cold_start"] = evaluate_cold_start(data, content)
    return out


def print_quality(results: dict) -> dict:
    targets = {}
    for how, needed in (("temporal", 1.5), ("random", 2.0)):
        r = results[how]["results"]
        popular, knn = r["popular"]["ndcg@10"], r["itemknn"]["ndcg@10"]
        print(f"\n{how} split ({results[how]['test_users']} users, {results[how]['test_interactions']} held out; "
              f"chosen on validation: ALS regularization {results[how]['params']['als_regularization']}, "
              f"hybrid weights itemknn/content {results[how]['params']['hybrid_weights']})")
        print(f"  {'model':8s} {'P@10':>7s} {'R@10':>7s} {'nDCG@10':>8s} {'MAP@10':>7s} {'cover':>6s} "
              f"{'vs pop':>7s} {'vs knn':>7s}")
        for model, m in r.items():
            print(f"  {model:8s} {m['precision@10']:7.4f} {m['recall@10']:7.4f} {m['ndcg@10']:8.4f} {m['map@10']:7.4f} "
                  f"{m['coverage']:6.3f} {m['ndcg@10'] / popular:6.2f}x {m['ndcg@10'] / knn:6.2f}x")
        best = max((k for k in r if k not in ("popular", "itemknn")), key=lambda k: r[k]["ndcg@10"])
        ratio = r[best]["ndcg@10"] / popular
        targets[how] = {"best": best, "ratio_vs_popular": ratio, "needed": needed, "met": ratio >= needed}
        print(f"  best nearspace model: {best}, {ratio:.2f}x most-popular nDCG@10 (target >= {needed}x: "
              f"{verdict(ratio >= needed)})")
    cold = results["cold_start"]
    print(f"\ncold start: {cold['protocol']}")
    for name, m in cold["results"].items():
        print(f"  {name:13s} P@10 {m['precision@10']:.4f}  R@10 {m['recall@10']:.4f}  nDCG@10 {m['ndcg@10']:.4f}  "
              f"MAP@10 {m['map@10']:.4f}")
    gain = cold["results"]["content->als"]["ndcg@10"] / cold["results"]["popular"]["ndcg@10"]
    targets["cold_start"] = {"ratio_vs_popular": gain, "met": gain > 1.0}
    print(f"  content embeddings vs popularity guess: {gain:.2f}x nDCG@10 ({verdict(gain > 1.0)})")
    return targets


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fit + latency only, 100 users, 1 repeat")
    parser.add_argument("--repeats", type=int, default=None, help="fit repeats (default 3; 1 with --quick)")
    parser.add_argument("--users", type=int, default=None, help="users timed (default all 943; 100 with --quick)")
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args(argv)
    require(ML / "u.data", ML / "u.item")
    repeats = args.repeats or (1 if args.quick else 3)

    from nearspace.recommend import load_interactions, load_items

    started = time.perf_counter()
    data = load_interactions(ML / "u.data")
    items = load_items(ML / "u.item")
    load_s = time.perf_counter() - started
    print(f"MovieLens 100K: {len(data)} ratings, {data.n_users} users, {data.n_items} items (loaded in {load_s:.2f}s)")

    fits = fit_timings(data, repeats)
    print(f"\nfit time on all ratings (median of {repeats}):")
    for model, f in fits.items():
        print(f"  {model:8s} {f['median_s']:7.3f} s  ({f['vs_itemknn']:.1f}x item-kNN)")

    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    rec, fit_report = store_fit(data, items)
    print(f"\nstore fit (Recommender.fit: {'encoding items, ' if fit_report['encoded_items_this_run'] else ''}"
          f"validation tuning, ALS, BPR, item-kNN, commit): {fit_report['seconds']:.1f} s")

    users = list(rec._state().models.user_ids)
    users = users[: args.users or (100 if args.quick else len(users))]
    lat = latency(rec, users, args.warmup)
    print(f"\nlatency per call, k=10 ({len(users)} users):")
    floor = lat["numpy ALS top-10 floor"]["p50_ms"]
    popular = lat["popular"]["p50_ms"]
    knn = lat["itemknn"]["p50_ms"]
    for name, s in lat.items():
        print(f"  {name:38s} {fmt_latency(s)}  [{s['p50_ms'] / popular:.1f}x popular, {s['p50_ms'] / knn:.1f}x itemknn, "
              f"{s['p50_ms'] / floor:.0f}x numpy floor]")

    payload = {"data": {"ratings": len(data), "users": data.n_users, "items": data.n_items, "load_s": load_s},
               "fit": fits, "store_fit": fit_report, "latency": lat,
               "latency_ratios_p50": {name: {"vs_popular": s["p50_ms"] / popular, "vs_itemknn": s["p50_ms"] / knn}
                                      for name, s in lat.items()}}
    if not args.quick:
        state = rec._state()
        assert state.models.item_ids == data.item_ids  # content rows line up with the log's items
        content = state.models.content
        results = quality(data, content)
        payload["quality"] = results
        payload["targets"] = print_quality(results)
    rec.store.close()
    write_result("recommend", payload)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
