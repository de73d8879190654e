"""Choose the default hybrid fusion by evidence across datasets (leave one dataset out).

For every BEIR-format set in ../shared/data/beir the dense (MiniLM) and keyword (BM25) top-100
lists are computed once per query; every candidate fusion is then scored on them (nDCG@10 on
test qrels). Leave-one-dataset-out: for each set, the candidate with the best mean over the
*other* sets is chosen and its score on the held-out set reported, so no set picks its own
fusion. Also checked for every candidate: the rank of the meaning match on the seed example
(examples/documents.jsonl) and on the decoy set (tests/search/data/decoys.json).

    python benchmarks/fusion_select.py --store .nearspace/fusion.db      # encodes once, cached

The figures go in the issue note; nearspace.search.fusion.DEFAULT_FUSION holds the winner.
"""
from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
from pathlib import Path
from typing import Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
DATA = ROOT.parent / "shared" / "data" / "beir"
SEED_QUERY = "how to reduce overfitting in neural networks"


def candidates() -> dict[str, Callable]:
    """name -> fuse(lists, n_terms) for every candidate fusion."""
    from nearspace.search.fusion import adaptive_fusion, fuse_spec

    def spec(s):
        return lambda lists, n: fuse_spec(lists, s)

    out: dict[str, Callable] = {"rrf k=60": spec({"method": "rrf"})}
    for w in (0.5, 0.6, 0.7):
        weights = {"dense": w, "keyword": round(1 - w, 2)}
        out[f"convex minmax d={w}"] = spec({"method": "convex", "norm": "minmax", "weights": weights})
        out[f"convex zscore d={w}"] = spec({"method": "convex", "norm": "zscore", "weights": weights})
    for w in (0.6, 0.7):
        for k in (10, 60):
            out[f"rrf k={k} d={w}"] = spec({"method": "rrf", "rrf_k": k, "weights": {"dense": w, "keyword": round(1 - w, 2)}})
    # query-adaptive z-score: prior dense share w, confidence tilt t, query-length tilt r
    for w, t, r in itertools.product((0.5, 0.6, 0.7), (1.0, 1.5), (0.0, 0.5, 0.75, 1.0)):
        weights = {"dense": w, "keyword": round(1 - w, 2)}
        out[f"adaptive d={w} t={t} r={r}"] = (
            lambda weights, t, r: lambda lists, n: adaptive_fusion(lists, weights=weights, n_terms=n, tilt=t, length_tilt=r,
                                                                  pivot=8, keyword_gate=None)
        )(weights, t, r)
    # the same, with a gate on keyword confidence (keyword fades out between lo and hi)
    for (lo, hi), r, pivot in itertools.product(((2.0, 3.5), (2.0, 4.0)), (0.2, 0.25, 0.3), (10, 12, 15)):
        out[f"gated {lo}-{hi} r={r} p={pivot}"] = (
            lambda gate, r, pivot: lambda lists, n: adaptive_fusion(
                lists, weights={"dense": 0.5, "keyword": 0.5}, n_terms=n, tilt=1.0, length_tilt=r, pivot=pivot,
                keyword_gate=gate)
        )((lo, hi), r, pivot)
    return out


def lists_for(coll, queries: dict[str, str], depth: int = 100) -> dict[str, dict[str, list]]:
    """qid -> {"dense": [(id, score)], "keyword": [(id, score)]}, and "n" the query's length in terms."""
    from nearspace.search.fusion import query_terms

    qids = list(queries)
    vectors = coll.embed_queries([queries[q] for q in qids], use_adapter=False)
    out = {}
    for qid, vector in zip(qids, vectors):
        out[qid] = {"dense": coll.backend.dense_candidates(vector, depth),
                    "keyword": coll.backend.keyword_candidates(queries[qid], depth),
                    "n": query_terms(queries[qid])}
    return out


def fused_ids(lists, fuse) -> list[str]:
    return [doc_id for doc_id, _ in fuse({m: lists[m] for m in ("dense", "keyword")}, lists["n"])[:100]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--store", default=str(ROOT / ".nearspace" / "fusion.db"))
    parser.add_argument("--sets", nargs="*")
    args = parser.parse_args()
    from nearspace.api import open_store
    from nearspace.evaluate.beir import load_beir
    from nearspace.evaluate.metrics import evaluate_run

    store = open_store(args.store)
    names = args.sets or sorted(p.name for p in DATA.iterdir() if (p / "corpus.jsonl").exists())
    cands = candidates()
    scores: dict[str, dict[str, float]] = {}  # dataset -> candidate -> nDCG@10
    parts: dict[str, dict[str, float]] = {}
    for name in names:
        dataset = load_beir(DATA / name)
        coll = store.collection(name)
        coll.write_documents(dataset.corpus, show_progress=True)
        qrels = {q: r for q, r in dataset.qrels("test").items() if q in dataset.queries}
        lists = lists_for(coll, {q: dataset.queries[q] for q in qrels})
        parts[name] = {m: evaluate_run(qrels, {q: [doc_id for doc_id, _ in lists[q][m]] for q in qrels})["ndcg@10"]
                       for m in ("dense", "keyword")}
        scores[name] = {c: evaluate_run(qrels, {q: fused_ids(lists[q], f) for q in qrels})["ndcg@10"]
                        for c, f in cands.items()}
        print(f"{name}: dense {parts[name]['dense']:.4f} keyword {parts[name]['keyword']:.4f}", flush=True)

    # the two small sets written for the meaning-match promise
    checks = {}
    examples = [json.loads(line) for line in (ROOT / "examples" / "documents.jsonl").read_text().splitlines() if line.strip()]
    ex = store.collection("fusion-examples")
    ex.upsert([d["id"] for d in examples], [d["text"] for d in examples], titles=[d["title"] for d in examples])
    decoys = json.loads((ROOT / "tests" / "search" / "data" / "decoys.json").read_text())
    dc = store.collection("fusion-decoys")
    dc.upsert([d["id"] for d in decoys["documents"]], [d["text"] for d in decoys["documents"]],
              titles=[d["title"] for d in decoys["documents"]])
    ex_lists = lists_for(ex, {"seed": SEED_QUERY})["seed"]
    dc_lists = lists_for(dc, {q["id"]: q["text"] for q in decoys["queries"]})
    for c, f in cands.items():
        seed_rank = fused_ids(ex_lists, f).index("regularization-techniques") + 1
        top3 = sum(q["meaning"] in fused_ids(dc_lists[q["id"]], f)[:3] for q in decoys["queries"])
        checks[c] = (seed_rank, top3)

    print()
    header = f"{'candidate':28}" + "".join(f"{n:>9}" for n in names) + f"{'mean':>8}{'worst Δ':>9}{'seed#':>6}{'decoy':>6}"
    print(header)
    best_part = {n: max(parts[n].values()) for n in names}
    print(f"{'dense':28}" + "".join(f"{parts[n]['dense']:9.4f}" for n in names))
    print(f"{'keyword':28}" + "".join(f"{parts[n]['keyword']:9.4f}" for n in names))
    for c in cands:
        row = [scores[n][c] for n in names]
        worst = min(scores[n][c] - best_part[n] for n in names)
        print(f"{c:28}" + "".join(f"{v:9.4f}" for v in row) + f"{statistics.mean(row):8.4f}{worst:+9.4f}"
              f"{checks[c][0]:6d}{checks[c][1]:4d}/12")
    print("\nleave one dataset out: on the other sets, among candidates that keep the seed example #1, the decoy")
    print("set >= 11/12 and never fall more than 0.005 below the better single mode, the best mean; scored held out:")
    held = []

    def admissible(c: str, sets: list[str]) -> bool:
        return (checks[c][0] == 1 and checks[c][1] >= 11
                and all(scores[m][c] >= best_part[m] - 0.005 for m in sets))

    for n in names:
        others = [m for m in names if m != n]
        pool = [c for c in cands if admissible(c, others)] or list(cands)
        chosen = max(pool, key=lambda c: statistics.mean(scores[m][c] for m in others))
        held.append(scores[n][chosen])
        print(f"  {n:10} chose {chosen:28} held-out {scores[n][chosen]:.4f} (rrf {scores[n]['rrf k=60']:.4f}, "
              f"best part {best_part[n]:.4f}, {scores[n][chosen] - best_part[n]:+.4f})")
    print(f"  mean held-out {statistics.mean(held):.4f} vs plain rrf {statistics.mean(scores[n]['rrf k=60'] for n in names):.4f}")
    pool = [c for c in cands if admissible(c, names)]
    overall = max(pool or cands, key=lambda c: statistics.mean(scores[n][c] for n in names))
    print(f"chosen on all sets (the default): {overall}")


if __name__ == "__main__":
    main()
