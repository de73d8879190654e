"""sentence-transformers ``CrossEncoder`` models as rerankers (torch; the ``[torch]`` part)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from nearspace.errors import EncoderUnavailable


class CrossEncoderReranker:
    """A cross-encoder read from a folder (or a Hugging Face name already in the local cache)."""

    def __init__(self, model: str, *, device: str | None = None, batch_size: int = 32,
                 max_length: int | None = 512) -> None:
        path = Path(model).expanduser()
        self.name = str(path.resolve()) if path.is_dir() else model
        self.batch_size = batch_size
        from nearspace.encoders.sentence import hub_offline

        try:
            with hub_offline():  # from the first import: huggingface_hub reads the variable then
                from sentence_transformers import CrossEncoder
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()  # stderr is for nearspace's own progress
                self.model = CrossEncoder(self.name, device=device or "cpu", max_length=max_length,
                                          local_files_only=True)
        except ImportError as exc:
            raise EncoderUnavailable("cross-encoder rerankers need sentence-transformers and torch: "
                                     "pip install 'nearspace[torch]'") from exc
        except Exception as exc:  # noqa: BLE001 - missing files, bad weights, not cached
            hint = "" if path.is_dir() else (f"; {model!r} is not a local folder: download it where there is "
                                             f"internet (`hf download {model} --local-dir DIR`) and use ce:DIR")
            raise EncoderUnavailable(f"cannot load the cross-encoder {model!r}: {exc}{hint}") from None

    def __repr__(self) -> str:
        return f"CrossEncoderReranker({self.name!r})"

    def score(self, query: str, passages: Sequence[str]) -> np.ndarray:
        if not passages:
            return np.zeros(0, dtype=np.float32)
        scores = self.model.predict([(query, p) for p in passages], batch_size=self.batch_size,
                                    show_progress_bar=False, convert_to_numpy=True)
        scores = np.asarray(scores, dtype=np.float32)
        return scores[:, -1] if scores.ndim == 2 else scores  # a 2-label head: the "relevant" logit
