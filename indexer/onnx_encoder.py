"""ONNX Runtime inference for a sentence-transformers model, exported once from its folder.

The transformer is exported with `torch.onnx` to `<folder>/model.onnx`; pooling and
normalisation run in NumPy as the model's own modules define them. For all-MiniLM-L6-v2
the vectors match the PyTorch model's to within 1e-6 (tests/integration/test_onnx.py),
so versions built with either backend are served by the other.

The int8 variant `<folder>/model-int8.onnx` is ONNX Runtime's dynamic quantization of the
exported graph: weights are stored as int8, activations are quantized per batch. Its
vectors differ from the fp32 ones by a few percent of cosine similarity, not 1e-6; the
cost in ranking is measured in docs/benchmarks.md.
"""

from __future__ import annotations

import os
import uuid
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import structlog

from indexer.errors import ModelLoadError

log = structlog.get_logger(__name__)

MODEL_FILE = "model.onnx"
INT8_MODEL_FILE = "model-int8.onnx"
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
OPSET = 17


def export(model: Any, folder: Path) -> Path:
    """Export the transformer of a loaded `SentenceTransformer` to `folder/model.onnx`.

    Writes under a temporary name and renames, so a reader never sees a partial file and
    two processes exporting at once leave one complete file.
    """
    import torch

    transformer = model[0].auto_model.eval()

    class LastHiddenState(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.transformer(input_ids=input_ids, attention_mask=attention_mask,
                                    token_type_ids=token_type_ids).last_hidden_state

    sample = model.tokenizer(["an example", "a second, longer example"], padding=True,
                             return_tensors="pt", return_token_type_ids=True)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / MODEL_FILE
    temporary = folder / f".{MODEL_FILE}.{uuid.uuid4().hex[:8]}"
    axes = {name: {0: "batch", 1: "tokens"} for name in (*INPUTS, "last_hidden_state")}
    try:
        # The tracer warns about Python conditions in the attention code. They are constant
        # for this export, and the tests compare the exported model's vectors with PyTorch's.
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(LastHiddenState(), tuple(sample[name] for name in INPUTS), str(temporary),
                              input_names=list(INPUTS), output_names=["last_hidden_state"],
                              dynamic_axes=axes, opset_version=OPSET, dynamo=False)
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    log.info("onnx_model_exported", path=str(target))
    return target


def quantize(folder: Path) -> Path:
    """Write the int8 dynamic quantization of `folder/model.onnx` to `folder/model-int8.onnx`.

    Like `export`, writes under a temporary name and renames.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    target = folder / INT8_MODEL_FILE
    temporary = folder / f".{INT8_MODEL_FILE}.{uuid.uuid4().hex[:8]}"
    try:
        # Per-channel scales: with one scale per tensor, titles kept a mean cosine of about
        # 0.96 to their fp32 vectors, and a 256-token text 0.74. Per channel, 0.99 for both
        # (300 Home Depot titles and 300 queries, onnxruntime 1.32).
        quantize_dynamic(folder / MODEL_FILE, temporary, weight_type=QuantType.QInt8, per_channel=True)
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    log.info("onnx_model_quantized", path=str(target))
    return target


def pooling_mode(pooling: Any) -> str | None:
    """Return the pooling of a sentence-transformers `Pooling` module: `mean`, `cls`, other.

    sentence-transformers 6 stores it as the string `pooling_mode`; older releases as one
    boolean per mode.
    """
    mode = getattr(pooling, "pooling_mode", None)
    if isinstance(mode, str):
        return mode
    flags = {name: getattr(pooling, f"pooling_mode_{name}", False)
             for name in ("mean_tokens", "cls_token", "max_tokens", "mean_sqrt_len_tokens")}
    chosen = [name for name, on in flags.items() if on]
    return {"mean_tokens": "mean", "cls_token": "cls"}.get(chosen[0]) if len(chosen) == 1 else None


class OnnxEncoder:
    """Encodes texts with an exported transformer under ONNX Runtime, pooled like the model."""

    def __init__(self, model: Any, folder: Path, int8: bool = False, threads: int = 1) -> None:
        """Load `folder/model.onnx`, exporting it first when it is missing.

        With `int8`, loads `folder/model-int8.onnx` instead, quantizing the exported model
        first when it is missing. `threads` sizes ONNX Runtime's intra-op thread pool.

        Raises `ModelLoadError` when the model pools in a way this encoder does not
        reproduce (only mean and CLS pooling are supported).
        """
        import onnxruntime

        mode = pooling_mode(model[1] if len(model) > 1 else None)
        if mode not in ("mean", "cls"):
            raise ModelLoadError(
                f"the ONNX backend supports mean or CLS pooling, but the model pools by {mode}; "
                "set CATALOG_SEARCH_ENCODER_BACKEND=torch for this model"
            )
        self._mean = mode == "mean"
        self._normalize = any(type(module).__name__ == "Normalize" for module in model)
        self._tokenizer = model.tokenizer
        self._max_length = int(model.max_seq_length)

        path = folder / MODEL_FILE
        if not path.is_file():
            export(model, folder)
        if int8:
            path = folder / INT8_MODEL_FILE
            if not path.is_file():
                quantize(folder)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        self._session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def encode(self, texts: Sequence[str], batch_size: int) -> np.ndarray:
        """Return float32 vectors of `texts`, L2-normalised when the model normalises.

        Texts are batched by length, as sentence-transformers does, so that short texts
        are not padded to the longest of the call.
        """
        order = np.argsort([-len(text) for text in texts], kind="stable")
        vectors: list[np.ndarray] = [np.empty(0)] * len(texts)
        for start in range(0, len(texts), batch_size):
            rows = order[start:start + batch_size]
            batch = self._encode_batch([texts[row] for row in rows])
            for row, vector in zip(rows, batch, strict=True):
                vectors[row] = vector
        return np.ascontiguousarray(np.stack(vectors), dtype=np.float32)

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        encoded = self._tokenizer(texts, padding=True, truncation=True, max_length=self._max_length,
                                  return_tensors="np", return_token_type_ids=True)
        hidden = self._session.run(None, {name: encoded[name].astype(np.int64) for name in INPUTS})[0]
        if self._mean:
            mask = encoded["attention_mask"][..., None].astype(np.float32)
            pooled = (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
        else:
            pooled = hidden[:, 0]
        if self._normalize:
            pooled = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return pooled
