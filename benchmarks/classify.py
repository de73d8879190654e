"""Banking77 intent classification: embeddings vs one-hot vs TF-IDF, and the few-shot curve.

Every variant of ``nearspace.analyze.classify.evaluate`` on the same split, side by side:

  embedding   logistic regression on all-MiniLM-L6-v2 vectors (C by 5-fold CV on train only)
  tfidf       the same logistic regression on TF-IDF (1-2 grams, sublinear tf) features
  onehot      the same logistic regression on binary bag-of-words features
  knn         similarity-weighted k-NN voting over the training set (k by leave-one-out)
  zero-shot   nearest label name ("card_arrival" read as "card arrival"); no training data

Reports accuracy, macro-F1, fit and predict seconds (features included: encoding for the
dense variants, vocabulary fitting for the sparse ones), then the learning curve at 5, 10
and 20 training examples per class (mean and spread over several random draws), and which
representation wins where. MiniLM vectors are cached in benchmarks/results/ with the time
their encoding took, so reruns skip the slow part but report the measured encode time.

    python benchmarks/classify.py                    # full table + curve (minutes on 2 cores)
    python benchmarks/classify.py --smoke            # 1,000 training examples, 1 draw
    python benchmarks/classify.py --curve 5,10,20 --draws 3
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

from _common import DATA_ROOT, RESULTS_DIR, require, write_result  # noqa: E402

BANKING = DATA_ROOT / "classification" / "banking77"
VARIANTS = ("embedding", "tfidf", "onehot", "knn", "zero-shot")


def read(path: Path) -> tuple[list[str], list[str]]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r["text"] for r in rows], [r["label"] for r in rows]


def cached_vectors(name: str, texts: list[str], encoder) -> tuple[np.ndarray, float, bool]:
    """MiniLM vectors for ``texts`` and the seconds encoding them took (cached by content hash)."""
    digest = hashlib.sha256("\x1f".join(texts).encode()).hexdigest()[:16]
    path = RESULTS_DIR / f"banking77_{name}_{digest}.npy"
    meta = path.with_suffix(".json")
    if path.exists() and meta.exists():
        return np.load(path), float(json.loads(meta.read_text())["encode_s"]), True
    started = time.perf_counter()
    vectors = encoder.encode(texts, batch_size=64, show_progress=True)
    seconds = time.perf_counter() - started
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    meta.write_text(json.dumps({"encode_s": seconds, "n": len(texts)}))
    return vectors, seconds, False


def table(title: str, results: dict[str, dict]) -> None:
    print(f"\n{title}")
    print(f"{'variant':<11} {'accuracy':>9} {'macro-F1':>9} {'fit s':>9} {'predict s':>10}  chosen")
    for name, r in results.items():
        chosen = f"C={r['C']}" if "C" in r else f"k={r['k']}" if "k" in r else r.get("label_source", "")
        print(f"{name:<11} {r['accuracy']:>9.4f} {r['macro_f1']:>9.4f} {r['fit_s']:>9.2f} {r['predict_s']:>10.2f}"
              f"  {chosen}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--curve", default="5,10,20", help="examples per class for the learning curve")
    parser.add_argument("--draws", type=int, default=3, help="random training draws per curve point")
    parser.add_argument("--limit-train", type=int, default=None, help="use only the first N training examples")
    parser.add_argument("--smoke", action="store_true", help="1,000 training examples, 1 draw, curve 5,10")
    parser.add_argument("--no-full", action="store_true", help="skip the full-training-set table")
    args = parser.parse_args()
    if args.smoke:
        args.limit_train, args.draws, args.curve = 1000, 1, "5,10"
    require(BANKING / "train.jsonl", BANKING / "test.jsonl")

    from nearspace.analyze.classify import evaluate, subsample_per_class
    from nearspace.encoders import load_encoder

    train_texts, train_labels = read(BANKING / "train.jsonl")
    test_texts, test_labels = read(BANKING / "test.jsonl")
    encoder = load_encoder()
    train_vectors, train_s, train_cached = cached_vectors("train", train_texts, encoder)
    test_vectors, test_s, test_cached = cached_vectors("test", test_texts, encoder)
    if args.limit_train:
        # a stratified random subset (the file is sorted by class); encoding time scaled to its share
        per_class = max(2, args.limit_train // len(set(train_labels)))
        keep = subsample_per_class(train_texts, train_labels, per_class, seed=0)
        train_s *= len(keep) / len(train_texts)
        train_texts, train_labels = [train_texts[i] for i in keep], [train_labels[i] for i in keep]
        train_vectors = train_vectors[keep]
    print(f"Banking77: {len(train_texts)} train / {len(test_texts)} test, {len(set(train_labels))} classes; "
          f"MiniLM encoding {len(train_texts) / train_s:.0f} + {len(test_texts) / test_s:.0f} texts/s"
          f"{' (cached from an earlier run)' if train_cached or test_cached else ''}")

    payload: dict = {"dataset": "banking77", "train": len(train_texts), "test": len(test_texts),
                     "classes": len(set(train_labels)), "encoder": encoder.name,
                     "encode_s": {"train": train_s, "test": test_s, "cached": train_cached or test_cached}}
    if not args.no_full:
        started = time.perf_counter()
        full = evaluate(train_texts, train_labels, test_texts, test_labels, encoder=encoder,
                        train_vectors=train_vectors, test_vectors=test_vectors, encode_seconds=(train_s, test_s))
        table(f"full training set ({len(train_texts)} examples), {time.perf_counter() - started:.0f}s", full)
        payload["full"] = full

    curve: dict[str, dict] = {}
    for per_class in [int(x) for x in args.curve.split(",") if x.strip()]:
        draws = []
        for draw in range(args.draws):
            keep = subsample_per_class(train_texts, train_labels, per_class, seed=draw)
            draws.append(evaluate([train_texts[i] for i in keep], [train_labels[i] for i in keep], test_texts,
                                  test_labels, encoder=encoder, train_vectors=train_vectors[keep],
                                  test_vectors=test_vectors, seed=draw,
                                  encode_seconds=(train_s * len(keep) / len(train_texts), test_s)))
        point = {}
        for variant in VARIANTS:
            acc = [d[variant]["accuracy"] for d in draws]
            f1 = [d[variant]["macro_f1"] for d in draws]
            point[variant] = {"accuracy": float(np.mean(acc)), "accuracy_std": float(np.std(acc)),
                              "macro_f1": float(np.mean(f1)), "macro_f1_std": float(np.std(f1)),
                              "fit_s": float(np.mean([d[variant]["fit_s"] for d in draws])),
                              "predict_s": float(np.mean([d[variant]["predict_s"] for d in draws]))}
        curve[str(per_class)] = point
        table(f"{per_class} examples per class ({len(keep)} training examples, mean of {args.draws} draws)", point)
    payload["curve"] = curve

    print("\nwho wins where (accuracy):")
    settings = ([("full", payload["full"])] if "full" in payload else []) + \
               [(f"{k}/class", v) for k, v in curve.items()]
    wins = {}
    for name, results in settings:
        ranked = sorted(results, key=lambda v: -results[v]["accuracy"])
        best_sparse = max(("tfidf", "onehot"), key=lambda v: results[v]["accuracy"])
        gap = results["embedding"]["accuracy"] - results[best_sparse]["accuracy"]
        wins[name] = {"ranking": ranked, "embedding_minus_best_sparse": gap}
        print(f"  {name:<10} {' > '.join(ranked)}   (embedding - {best_sparse}: {gap:+.3f})")
    payload["wins"] = wins
    write_result("classify", payload)


if __name__ == "__main__":
    main()
