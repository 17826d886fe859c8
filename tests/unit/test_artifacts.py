from __future__ import annotations

import json

import numpy as np
import pytest

from indexer import artifacts
from indexer.errors import ArtifactError
from indexer.lexical import LexicalIndex


def unit_vectors(count: int, dimension: int = 8, seed: int = 0) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((count, dimension)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def lexical_for(count: int) -> LexicalIndex:
    return LexicalIndex.build([f"product {number}" for number in range(count)], "english")


def manifest_for(count: int, dimension: int = 8) -> dict:
    return {"model": {"name": "test", "fingerprint": "f" * 64, "dimension": dimension},
            "products": {"count": count, "skipped": 0, "truncated": 0}}


@pytest.fixture
def published(tmp_path):
    index, description = artifacts.build_index(unit_vectors(5))
    path, checksum = artifacts.write_version(tmp_path, 7, index, lexical_for(5),
                                             {**manifest_for(5), "index": description})
    return path, checksum


def test_written_version_reads_back(published):
    path, checksum = published

    loaded = artifacts.read_version(path, 7, checksum)

    assert path.name == "v000007"
    assert loaded.index.ntotal == 5
    assert loaded.manifest["version"] == 7
    assert loaded.manifest["index"]["type"] == "IndexFlatIP"
    assert loaded.manifest["files"]["index.faiss"]["bytes"] == (path / "index.faiss").stat().st_size
    assert "faiss-cpu" in loaded.manifest["libraries"]
    assert loaded.manifest["created_at"].endswith("+00:00")


def test_bm25_index_reads_back(published):
    path, checksum = published

    loaded = artifacts.read_version(path, 7, checksum)

    assert loaded.lexical is not None
    assert loaded.lexical.product_count == 5
    assert loaded.manifest["lexical"]["language"] == "english"
    assert any(name.startswith("lexical/") for name in loaded.manifest["files"])
    scores = loaded.lexical.scores("product 3")
    assert scores is not None
    assert int(np.argmax(scores)) == 3


def test_altered_bm25_file_is_rejected(published):
    path, checksum = published
    vocabulary = path / "lexical" / "vocab.index.json"
    vocabulary.write_text(vocabulary.read_text().replace("product", "produce"))

    with pytest.raises(ArtifactError, match=r"lexical/vocab\.index\.json checksum or size"):
        artifacts.read_version(path, 7, checksum)


def test_no_temporary_folder_remains(published, tmp_path):
    assert [entry.name for entry in tmp_path.iterdir()] == ["v000007"]


def test_flipped_byte_is_rejected(published):
    path, checksum = published
    data = bytearray((path / "index.faiss").read_bytes())
    data[-1] ^= 0xFF
    (path / "index.faiss").write_bytes(bytes(data))

    with pytest.raises(ArtifactError, match=r"index\.faiss checksum or size does not match"):
        artifacts.read_version(path, 7, checksum)


def test_truncated_index_is_rejected(published):
    path, checksum = published
    data = (path / "index.faiss").read_bytes()
    (path / "index.faiss").write_bytes(data[: len(data) // 2])

    with pytest.raises(ArtifactError, match="does not match the manifest"):
        artifacts.read_version(path, 7, checksum)


def test_missing_index_is_rejected(published):
    path, checksum = published
    (path / "index.faiss").unlink()

    with pytest.raises(ArtifactError, match=r"index\.faiss is missing"):
        artifacts.read_version(path, 7, checksum)


def test_edited_manifest_is_rejected(published):
    path, checksum = published
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["products"]["count"] = 6
    (path / "manifest.json").write_text(json.dumps(manifest))

    with pytest.raises(ArtifactError, match=r"manifest\.json checksum does not match the database"):
        artifacts.read_version(path, 7, checksum)


def test_missing_folder_is_rejected(tmp_path):
    with pytest.raises(ArtifactError, match="version 3 rejected: cannot read"):
        artifacts.read_version(tmp_path / "v000003", 3, "0" * 64)


def test_existing_folder_is_never_overwritten(published, tmp_path):
    index, _ = artifacts.build_index(unit_vectors(2))

    with pytest.raises(ArtifactError, match="already exists"):
        artifacts.write_version(tmp_path, 7, index, lexical_for(2), manifest_for(2))


def test_failed_write_leaves_nothing(tmp_path, monkeypatch):
    def fail(*args):
        raise OSError("disk full")

    monkeypatch.setattr(artifacts, "_fsync_dir", fail)
    index, _ = artifacts.build_index(unit_vectors(2))

    with pytest.raises(OSError, match="disk full"):
        artifacts.write_version(tmp_path, 8, index, lexical_for(2), manifest_for(2))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("kind", "count", "expected"), [
    ("auto", 49_999, "flat"), ("auto", 50_000, "hnsw"), ("flat", 10**7, "flat"), ("hnsw", 1, "hnsw"),
])
def test_index_choice_by_size(kind, count, expected):
    assert artifacts.IndexChoice(kind).resolve(count) == expected


def test_hnsw_index_finds_nearest_and_reconstructs():
    vectors = unit_vectors(500, dimension=16, seed=3)

    index, description = artifacts.build_index(vectors, artifacts.IndexChoice("hnsw", hnsw_m=16))

    _, positions = index.search(vectors[:5], 1)
    assert description["type"] == "IndexHNSWFlat"
    assert positions[:, 0].tolist() == [0, 1, 2, 3, 4]
    assert np.array_equal(index.reconstruct(7), vectors[7])
