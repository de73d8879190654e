"""A linear query adapter: ``q' = normalise(W q)``, trained so that queries land next to
the documents judged relevant to them, while stored document vectors stay as they are.

Training minimises a multi-positive contrastive loss over the collection's documents
(all of them when the collection is small, else positives plus hard and random
negatives), with ``W`` starting at the identity, an L2 pull back towards it, and early
stopping on the nDCG@10 of held-out queries. If the held-out score never improves, the
identity is kept and the report says so.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from nearspace.encoders.base import normalize_rows

ARTIFACT = "query_adapter"
_cache: dict[tuple[str, int, int], "LinearAdapter"] = {}


@dataclass
class LinearAdapter:
    matrix: np.ndarray  # (dim, dim)
    meta: dict[str, Any] = field(default_factory=dict)

    def transform(self, queries: np.ndarray) -> np.ndarray:
        return normalize_rows(np.asarray(queries, dtype=np.float32) @ self.matrix.T)


@dataclass
class AdapterReport:
    dev_ndcg_before: float
    dev_ndcg_after: float
    epochs: int
    best_epoch: int
    seconds: float
    train_queries: int
    dev_queries: int
    history: list[float]

    @property
    def improved(self) -> bool:
        return self.dev_ndcg_after > self.dev_ndcg_before


def _dev_ndcg(matrix: np.ndarray, dev_q: np.ndarray, doc_matrix: np.ndarray, doc_ids: Sequence[str],
              dev_qids: Sequence[str], dev_qrels: Mapping[str, Mapping[str, int]]) -> float:
    from nearspace.evaluate.metrics import evaluate_run

    q = normalize_rows(dev_q @ matrix.T)
    scores = q @ doc_matrix.T
    top = np.argpartition(-scores, 10, axis=1)[:, :10]
    run = {}
    for i, qid in enumerate(dev_qids):
        order = top[i][np.argsort(-scores[i, top[i]])]
        run[qid] = [doc_ids[j] for j in order]
    return evaluate_run({q: dev_qrels[q] for q in dev_qids}, run)["ndcg@10"]


def fit_linear_adapter(train_q: np.ndarray, train_pos: Sequence[Sequence[int]], doc_matrix: np.ndarray,
                       doc_ids: Sequence[str], dev_q: np.ndarray, dev_qids: Sequence[str],
                       dev_qrels: Mapping[str, Mapping[str, int]], *, epochs: int = 60, lr: float = 2e-3,
                       weight_decay: float = 1e-2, temperature: float = 0.05, batch_size: int = 64,
                       patience: int = 6, seed: int = 0, max_negatives: int = 50_000,
                       progress=None) -> tuple[LinearAdapter, AdapterReport]:
    """Fit ``W`` (identity start) on train queries; keep the epoch best on the dev queries."""
    import torch

    started = time.perf_counter()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    dim = doc_matrix.shape[1]
    identity = np.eye(dim, dtype=np.float32)
    before = _dev_ndcg(identity, dev_q, doc_matrix, doc_ids, dev_qids, dev_qrels)

    keep = [i for i, pos in enumerate(train_pos) if pos]
    if not keep:
        raise ValueError("no training query has a relevant document in the collection")
    candidates = np.arange(len(doc_matrix))
    if len(doc_matrix) > max_negatives:  # large collections: positives + hard + random negatives
        hard = np.argpartition(-(train_q @ doc_matrix.T), 100, axis=1)[:, :100].ravel()
        pos = np.fromiter((p for ps in train_pos for p in ps), dtype=np.int64)
        rand = rng.choice(len(doc_matrix), size=max_negatives // 2, replace=False)
        candidates = np.unique(np.concatenate([hard, pos, rand]))
    remap = {int(c): i for i, c in enumerate(candidates)}
    docs = torch.from_numpy(np.ascontiguousarray(doc_matrix[candidates]))
    queries = torch.from_numpy(np.ascontiguousarray(train_q[keep]))
    targets = torch.zeros((len(keep), len(candidates)))
    for row, i in enumerate(keep):
        for p in train_pos[i]:
            targets[row, remap[int(p)]] = 1.0

    delta = torch.zeros((dim, dim), requires_grad=True)
    optimiser = torch.optim.Adam([delta], lr=lr)
    best, best_epoch, best_matrix, history, stale = before, 0, identity, [], 0
    eye = torch.eye(dim)
    for epoch in range(1, epochs + 1):
        order = torch.from_numpy(rng.permutation(len(keep)))
        for start in range(0, len(keep), batch_size):
            idx = order[start:start + batch_size]
            q = torch.nn.functional.normalize(queries[idx] @ (eye + delta).T, dim=1)
            logits = (q @ docs.T) / temperature
            log_probs = logits.log_softmax(dim=1)
            pos_mask = targets[idx]
            loss = -(torch.logsumexp(log_probs.masked_fill(pos_mask == 0, -1e9), dim=1)).mean()
            loss = loss + weight_decay * (delta ** 2).sum()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        matrix = (eye + delta).detach().numpy().astype(np.float32)
        score = _dev_ndcg(matrix, dev_q, doc_matrix, doc_ids, dev_qids, dev_qrels)
        history.append(score)
        if progress is not None:
            progress(epoch, score)
        if score > best + 1e-4:
            best, best_epoch, best_matrix, stale = score, epoch, matrix.copy(), 0
        else:
            stale += 1
            if stale >= patience:
                break
    report = AdapterReport(before, best, len(history), best_epoch, time.perf_counter() - started,
                           len(keep), len(dev_qids), history)
    meta = {"dev_ndcg_before": before, "dev_ndcg_after": best, "best_epoch": best_epoch,
            "train_queries": len(keep), "dev_queries": len(dev_qids), "temperature": temperature,
            "weight_decay": weight_decay}
    return LinearAdapter(best_matrix, meta), report


def save_adapter(data, adapter: LinearAdapter) -> None:
    """Store the adapter with the collection (an artifact of its backend)."""
    matrix = np.ascontiguousarray(adapter.matrix, dtype=np.float32)
    data.put_artifact(ARTIFACT, matrix.tobytes(), {**adapter.meta, "dim": int(matrix.shape[0])})


def load_adapter(data) -> LinearAdapter | None:
    version = data.artifact_version(ARTIFACT)
    if version is None:
        return None
    key = (data.store.location, data.name, version)  # artifact versions never repeat within a store
    if key not in _cache:
        value, meta = data.get_artifact(ARTIFACT)
        dim = int(meta["dim"])
        _cache[key] = LinearAdapter(np.frombuffer(value, dtype=np.float32).reshape(dim, dim).copy(), meta)
    return _cache[key]
