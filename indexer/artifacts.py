"""The on-disk format of an index version: a FAISS index, a BM25 index and a manifest in
one folder.

A version folder is written under a temporary name, fsynced, and renamed into place, so
a folder named `v000042` is always complete. Its manifest records what the vectors mean
(model, dimension, normalisation, metric), how they were indexed, and the SHA-256 of
every file. The database stores the SHA-256 of the manifest itself.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from indexer import hnsw_tuning, lexical
from indexer.checksums import sha256_file
from indexer.errors import ArtifactError
from indexer.lexical import LexicalIndex

FORMAT_VERSION = 1
MANIFEST_FILE = "manifest.json"
INDEX_FILE = "index.faiss"
LIBRARIES = ("faiss-cpu", "numpy", "torch", "sentence-transformers", "transformers", "bm25s")


@dataclass(frozen=True)
class LoadedArtifact:
    """A verified version folder: the FAISS index, the BM25 index and the parsed manifest.

    `lexical` is None for a version written before versions stored a BM25 index.
    """

    index: faiss.Index
    lexical: LexicalIndex | None
    manifest: dict[str, Any]


def version_folder_name(version: int) -> str:
    return f"v{version:06d}"


@dataclass(frozen=True)
class IndexChoice:
    """Choice of the FAISS index a build writes: `flat` (exact), `hnsw` (approximate), or
    `auto`, which is HNSW from `hnsw_min_products` products on. An HNSW build measures
    recall@10 and keeps the smallest efSearch that reaches `hnsw_recall_target`."""

    kind: str = "auto"
    hnsw_min_products: int = 50_000
    hnsw_m: int = 32
    hnsw_ef_construction: int = 200
    hnsw_recall_target: float = 0.98

    def resolve(self, count: int) -> str:
        if self.kind != "auto":
            return self.kind
        return "hnsw" if count >= self.hnsw_min_products else "flat"


def build_index(vectors: np.ndarray, choice: IndexChoice = IndexChoice(),
                text_queries: np.ndarray | None = None) -> tuple[faiss.Index, dict[str, Any]]:
    """Index normalised vectors of shape (n, d), float32, for inner-product search.

    Returns the index and its description for the manifest. FAISS ids are row positions.
    Both index types keep the full vectors, so `reconstruct` returns them exactly. An HNSW
    index is written with the efSearch its build measured, and the description records
    that efSearch and its recall@10 against exact search. `text_queries`, the encoded
    `hnsw_tuning.query_like_texts` of the products, join the measurement when given.
    """
    dimension = vectors.shape[1]
    if choice.resolve(len(vectors)) == "flat":
        flat = faiss.IndexFlatIP(dimension)
        flat.add(vectors)
        return flat, {"type": "IndexFlatIP", "factory": "Flat", "metric": "inner_product"}

    graph = faiss.IndexHNSWFlat(dimension, choice.hnsw_m, faiss.METRIC_INNER_PRODUCT)
    graph.hnsw.efConstruction = choice.hnsw_ef_construction
    graph.add(vectors)
    tuned, queries = hnsw_tuning.tune_ef_search(graph, vectors, choice.hnsw_recall_target, text_queries)
    return graph, {"type": "IndexHNSWFlat", "factory": f"HNSW{choice.hnsw_m},Flat",
                   "metric": "inner_product", "m": choice.hnsw_m,
                   "ef_construction": choice.hnsw_ef_construction,
                   **tuned.describe(choice.hnsw_recall_target, queries)}


def write_version(index_dir: Path, version: int, index: faiss.Index, lexical_index: LexicalIndex,
                  manifest: dict[str, Any]) -> tuple[Path, str]:
    """Write a version folder atomically; returns its path and the manifest's SHA-256.

    `manifest` gets the format, creation time, library versions and file checksums added.
    Raises `ArtifactError` when the folder already exists. On any failure the temporary
    folder is removed and nothing appears under the final name.
    """
    index_dir.mkdir(parents=True, exist_ok=True)
    final = index_dir / version_folder_name(version)
    if final.exists():
        raise ArtifactError(version, f"folder {final} already exists")
    temporary = index_dir / f".tmp-{final.name}-{uuid.uuid4().hex[:8]}"
    temporary.mkdir()

    try:
        faiss.write_index(index, str(temporary / INDEX_FILE))
        written = [temporary / INDEX_FILE, *lexical_index.save(temporary / lexical.FOLDER)]
        for path in written:
            _fsync_file(path)
        _fsync_dir(temporary / lexical.FOLDER)
        manifest = {
            "format_version": FORMAT_VERSION,
            "version": version,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            **manifest,
            "libraries": library_versions(),
            "lexical": lexical_index.description(),
            "files": {path.relative_to(temporary).as_posix(): _describe_file(path) for path in written},
        }
        manifest_bytes = json.dumps(manifest, indent=2, sort_keys=True).encode()
        (temporary / MANIFEST_FILE).write_bytes(manifest_bytes)
        _fsync_file(temporary / MANIFEST_FILE)
        _fsync_dir(temporary)

        os.rename(temporary, final)
        _fsync_dir(index_dir)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    return final, hashlib.sha256(manifest_bytes).hexdigest()


def read_version(path: Path, version: int, manifest_checksum: str) -> LoadedArtifact:
    """Read and verify a version folder against the manifest checksum the database holds.

    Raises `ArtifactError` naming the version and the reason when a file is missing,
    truncated or altered, or when the index does not match its manifest.
    """
    try:
        manifest_bytes = (path / MANIFEST_FILE).read_bytes()
    except OSError as error:
        raise ArtifactError(version, f"cannot read {MANIFEST_FILE}: {error.strerror}") from error
    if hashlib.sha256(manifest_bytes).hexdigest() != manifest_checksum:
        raise ArtifactError(version, f"{MANIFEST_FILE} checksum does not match the database")
    manifest = json.loads(manifest_bytes)

    for name, expected in manifest["files"].items():
        if not (path / name).is_file():
            raise ArtifactError(version, f"{name} is missing")
        if _describe_file(path / name) != expected:
            raise ArtifactError(version, f"{name} checksum or size does not match the manifest")

    index = faiss.read_index(str(path / INDEX_FILE))
    if index.ntotal != manifest["products"]["count"]:
        raise ArtifactError(
            version, f"index holds {index.ntotal} vectors, manifest says {manifest['products']['count']}"
        )
    if index.d != manifest["model"]["dimension"]:
        raise ArtifactError(version, f"index dimension {index.d} differs from the manifest's")

    lexical_index = None
    if "lexical" in manifest:
        lexical_index = LexicalIndex.load(path / lexical.FOLDER, manifest["lexical"]["language"])
        if lexical_index.product_count != index.ntotal:
            raise ArtifactError(
                version, f"BM25 index holds {lexical_index.product_count} products, "
                f"the FAISS index {index.ntotal}",
            )
    return LoadedArtifact(index, lexical_index, manifest)


def remove_version_folder(index_dir: Path, version: int) -> None:
    """Delete a version's folder and any temporary folder a build of it left behind."""
    shutil.rmtree(index_dir / version_folder_name(version), ignore_errors=True)
    for leftover in index_dir.glob(f".tmp-{version_folder_name(version)}-*"):
        shutil.rmtree(leftover, ignore_errors=True)


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def _describe_file(path: Path) -> dict[str, Any]:
    return {"sha256": sha256_file(path), "bytes": path.stat().st_size}


def _fsync_file(path: Path) -> None:
    with path.open("rb") as stream:
        os.fsync(stream.fileno())


def _fsync_dir(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
