"""Serve the speed baseline: a plain wrapper around sentence-transformers, without our optimisations.

It does what a hand-rolled service does. The PyTorch encoder encodes the queries, and
every posted product, on each request. It keeps no store and no cache of embeddings and
does no micro-batching. It ranks by brute-force cosine similarity (a NumPy matrix
product) over the catalog vectors held in memory. The request and response bodies are
those of our `/api/v1/search` and `/api/v1/similarity`.

The catalog vectors are read from the active index version of the data folder, where
the indexer wrote them with the same model, so that a catalog of 100,000 products needs
no hours of encoding at start-up.

    CATALOG_SEARCH_DATA_DIR=/tmp/var python benchmarks/baseline_service.py --port 8101
"""

from __future__ import annotations

import threading

import numpy as np
from comparison_app import (
    CatalogSnapshot,
    Ranking,
    run_server,
    top_rows,
)
from sentence_transformers import SentenceTransformer


class BaselineBackend:
    """Encodes with sentence-transformers on PyTorch and scans every vector for each query."""

    def __init__(self, model_path: str, catalog: CatalogSnapshot, batch_size: int,
                 faiss_threads: int) -> None:
        # `faiss_threads` is unused: the scan is a NumPy matrix product, with NumPy's BLAS threads.
        self.model = SentenceTransformer(model_path, device="cpu", local_files_only=True)
        self.vectors = catalog.vectors
        self.batch_size = batch_size
        # A fast tokenizer shared across threads fails with "Already borrowed", so requests
        # take turns at the model.
        self.lock = threading.Lock()

    def encode(self, texts: list[str]) -> np.ndarray:
        """Return L2-normalised float32 vectors of shape (len(texts), d)."""
        with self.lock:
            vectors = self.model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True,
                                        convert_to_numpy=True)
        return np.asarray(vectors, dtype=np.float32)

    def search(self, queries: list[str], top_k: int) -> Ranking:
        return top_rows(self.encode(queries) @ self.vectors.T, top_k)

    def match(self, queries: list[str], products: list[str], top_k: int) -> Ranking:
        return top_rows(self.encode(queries) @ self.encode(products).T, top_k)


def main() -> None:
    run_server(__doc__.splitlines()[0], "Baseline", BaselineBackend)

if __name__ == "__main__":
    main()
