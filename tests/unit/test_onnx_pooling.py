from __future__ import annotations

from types import SimpleNamespace

import pytest

from indexer.onnx_encoder import pooling_mode


@pytest.mark.parametrize(("module", "expected"), [
    (SimpleNamespace(pooling_mode="mean"), "mean"),
    (SimpleNamespace(pooling_mode="cls"), "cls"),
    (SimpleNamespace(pooling_mode="max"), "max"),
    (SimpleNamespace(pooling_mode_mean_tokens=True), "mean"),
    (SimpleNamespace(pooling_mode_cls_token=True), "cls"),
    (SimpleNamespace(pooling_mode_max_tokens=True), None),
    (SimpleNamespace(pooling_mode_mean_tokens=True, pooling_mode_max_tokens=True), None),
    (None, None),
])
def test_pooling_mode_of_old_and_new_modules(module, expected):
    assert pooling_mode(module) == expected
