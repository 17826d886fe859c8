"""The ONNX Runtime backend against the PyTorch model it was exported from."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from indexer.embedding import Embedder
from indexer.settings import Settings
from tests.conftest import TOOLS

pytestmark = pytest.mark.integration

TEXTS = [
    "cordless drill",
    "What can I use to cut wood?",
    "Akkuschrauber 18 V mit zwei Akkus",
    "Circular Saw 7-1/4 in. 15 Amp: corded saw for cutting wood, plywood and lumber",
    "saw " * 400,
]


@pytest.mark.sqlite_only
def test_onnx_vectors_match_pytorch(embedder, onnx_embedder):
    expected = embedder.encode(TEXTS)

    actual = onnx_embedder.encode(TEXTS)

    assert actual.dtype == np.float32
    assert actual.shape == expected.shape
    assert np.abs(actual - expected).max() < 1e-5
    assert np.allclose(np.linalg.norm(actual, axis=1), 1, atol=1e-5)


@pytest.mark.sqlite_only
def test_onnx_keeps_model_identity(embedder, onnx_embedder):
    assert onnx_embedder.fingerprint == embedder.fingerprint
    assert onnx_embedder.dimension == embedder.dimension
    assert onnx_embedder.backend == "onnx"


@pytest.mark.sqlite_only
def test_export_is_reused(tmp_path):
    first = Embedder(Settings().model, backend="onnx", onnx_dir=tmp_path)
    exported = next(tmp_path.rglob("model.onnx"))
    written = exported.stat().st_mtime_ns

    second = Embedder(Settings().model, backend="onnx", onnx_dir=tmp_path)

    assert exported.stat().st_mtime_ns == written
    assert list(tmp_path.rglob("*.onnx*")) == [exported]
    assert np.array_equal(first.encode(["drill"]), second.encode(["drill"]))


def test_service_on_onnx_serves_version_built_with_pytorch(settings, build, write_csv, serve, onnx_embedder):
    build(write_csv(TOOLS))

    with serve(dataclasses.replace(settings, encoder_backend="onnx"), embedder=onnx_embedder) as client:
        body = client.post("/search", json={"queries": ["What can I use to cut wood?"], "top_k": 1,
                                            "mode": "dense"}).json()

    assert body["results"][0]["matches"][0]["product_id"] == "T-1"


@pytest.mark.sqlite_only
def test_int8_variant_is_cached_beside_fp32(tmp_path, embedder):
    first = Embedder(Settings().model, backend="onnx-int8", onnx_dir=tmp_path)
    quantized = next(tmp_path.rglob("model-int8.onnx"))
    written = quantized.stat().st_mtime_ns
    second = Embedder(Settings().model, backend="onnx-int8", onnx_dir=tmp_path)

    assert quantized.stat().st_mtime_ns == written
    assert quantized.stat().st_size < next(tmp_path.rglob("model.onnx")).stat().st_size / 2
    assert second.fingerprint == embedder.fingerprint
    assert second.manifest_sections()["embedding"]["encoder_backend"] == "onnx-int8"
    assert np.array_equal(first.encode(["drill"]), second.encode(["drill"]))


@pytest.mark.sqlite_only
def test_int8_vectors_close_to_fp32(tmp_path, embedder):
    int8 = Embedder(Settings().model, backend="onnx-int8", onnx_dir=tmp_path)
    expected = embedder.encode(TEXTS)

    actual = int8.encode(TEXTS)

    assert actual.dtype == np.float32
    assert np.allclose(np.linalg.norm(actual, axis=1), 1, atol=1e-5)
    # Quantization moves the vectors, but each stays far closer to its own fp32 vector
    # than to any other text's.
    similarity = actual @ expected.T
    assert (np.diag(similarity) > 0.97).all()
    assert (similarity.argmax(axis=1) == np.arange(len(TEXTS))).all()
