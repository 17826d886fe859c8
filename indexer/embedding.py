"""The embedding model: a sentence-transformers model loaded from a local folder."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import structlog

from indexer.checksums import sha256_files
from indexer.cpus import thread_count
from indexer.errors import ModelLoadError
from indexer.onnx_encoder import OnnxEncoder
from indexer.settings import Settings

log = structlog.get_logger(__name__)

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
"""Files whose bytes identify the weights; the first one found is fingerprinted."""


class TextEncoder(Protocol):
    """Anything that encodes texts like `Embedder.encode`, for one model fingerprint."""

    fingerprint: str
    dimension: int

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


class Embedder:
    """Encodes texts into L2-normalised float32 vectors with a local sentence-transformers model.

    The model is read from a folder on disk and never from a model hub. `encode` is safe to
    call from several threads: a lock serialises the calls, because a fast tokenizer shared
    across threads fails with "Already borrowed".
    """

    def __init__(self, model_path: str | Path, batch_size: int = 64, backend: str = "torch",
                 onnx_dir: Path | None = None, threads: int = 0, model_version: int | None = None,
                 name: str | None = None) -> None:
        """Load the model; raises `ModelLoadError` when the folder is missing or unusable.

        With `backend="onnx"`, ONNX Runtime encodes the texts with the model exported into
        `onnx_dir` on first use; `backend="onnx-int8"` with its int8 quantization. The model's
        own tokenizer still tokenizes, and the PyTorch weights stay loaded for it and for the
        export. `threads` sizes torch's (process-wide) and ONNX Runtime's compute threads; 0
        means the CPUs the process may use. `model_version` names the trained model version
        the folder holds, if any, and `name` replaces the folder's name in logs and records.
        """
        path = Path(model_path)
        if not (path / "config.json").is_file() and not (path / "modules.json").is_file():
            raise ModelLoadError(
                f"no sentence-transformers model in {path}: set CATALOG_SEARCH_MODEL "
                "to a local model folder"
            )
        # Belt and braces: the path is local, and these stop any library from trying a hub.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import torch
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()

        try:
            self._model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
        except (OSError, ValueError) as error:
            raise ModelLoadError(f"cannot load the model in {path}: {error}") from error

        self.path = path
        self.name = name or (path.name if path.name != "model" else path.parent.name)
        self.model_version = model_version
        self.batch_size = batch_size
        # sentence-transformers 5.2 renamed the method; older releases only have the old name.
        dimension_of = getattr(self._model, "get_embedding_dimension", None)
        dimension = (dimension_of or self._model.get_sentence_embedding_dimension)()
        if dimension is None or self._model.max_seq_length is None:
            raise ModelLoadError(f"the model in {path} reports no embedding dimension or maximum length")
        self.dimension = int(dimension)
        self.max_seq_length = int(self._model.max_seq_length)
        self.fingerprint = fingerprint_model(path)
        self.backend = backend
        threads = thread_count(threads)
        torch.set_num_threads(threads)
        self._onnx: OnnxEncoder | None = None
        if backend in ("onnx", "onnx-int8"):
            if onnx_dir is None:
                raise ModelLoadError("the ONNX backend needs a folder for the exported model")
            self._onnx = OnnxEncoder(self._model, onnx_dir / self.fingerprint[:16],
                                     int8=backend == "onnx-int8", threads=threads)
        self._lock = threading.Lock()
        log.info("model_loaded", model=self.name, path=str(path), dimension=self.dimension,
                 fingerprint=self.fingerprint[:12], backend=backend, threads=threads,
                 model_version=model_version)

    def encode(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """Return an array of shape (len(texts), dimension), float32, each row of L2 norm 1.

        Texts longer than `max_seq_length` tokens are truncated by the tokenizer. Blocks
        while another thread encodes; call it off the event loop.
        """
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._lock:
            if self._onnx is not None:
                return self._onnx.encode(texts, self.batch_size)
            vectors = self._model.encode(
                list(texts), batch_size=self.batch_size, normalize_embeddings=True,
                convert_to_numpy=True, show_progress_bar=progress,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def manifest_sections(self) -> dict[str, dict[str, Any]]:
        """Return the `model` and `embedding` sections of a version manifest for this model's vectors."""
        return {
            "model": {"name": self.name, "path": str(self.path), "fingerprint": self.fingerprint,
                      "dimension": self.dimension, "max_seq_length": self.max_seq_length,
                      "model_version": self.model_version},
            "embedding": {"normalized": True, "metric": "inner_product", "dtype": "float32",
                          "encoder_backend": self.backend},
        }

    def count_truncated(self, texts: Sequence[str]) -> int:
        """Count texts whose tokens, with the special tokens, exceed `max_seq_length`."""
        tokenizer = self._model.tokenizer
        count = 0
        with self._lock:
            for start in range(0, len(texts), 4096):
                encoded = tokenizer(list(texts[start:start + 4096]), add_special_tokens=True,
                                    truncation=False, verbose=False)
                count += sum(len(ids) > self.max_seq_length for ids in encoded["input_ids"])
        return count


def load_embedder(settings: Settings) -> Embedder:
    """Load the model the settings name, with their batch size and backend."""
    return Embedder(settings.model, settings.encode_batch_size, settings.encoder_backend,
                    settings.onnx_dir, settings.encoder_threads)


def fingerprint_model(path: Path) -> str:
    """Return the SHA-256 of the model's weight file, or of every file when none is found."""
    weights = [path / name for name in WEIGHT_FILES if (path / name).is_file()]
    return sha256_files(weights[:1] or sorted(p for p in path.rglob("*") if p.is_file()))
