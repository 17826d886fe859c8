"""Serve the catalog with txtai Embeddings behind our API's request and response shapes.

Two txtai `Embeddings` instances share the work, both with the packaged model folder:

- `encoder` (method `sentence-transformers`) encodes queries, and it computes
  `/similarity` against posted products with `batchsimilarity`. That call encodes the
  queries and every product on each request, because txtai keeps no embedding cache.
- `catalog` (method `external`) keeps the catalog in txtai's FAISS index. Its vectors
  are the active index version's, passed to `index` as arrays, which txtai stores
  without calling the transform. Queries, which are strings, go through the transform,
  which is `encoder.batchtransform`, so they are encoded by txtai with the same model.
  Encoding the catalog again would take hours at 1,000,000 products.

The FAISS index is exact (`IDMap,Flat`), like our service's flat index, so the two rank
the same candidates. txtai's own default above 5,000 rows would be an approximate IVF
index. Each search runs with `CATALOG_SEARCH_FAISS_THREADS` OpenMP threads (default 1),
the setting our service reads. txtai leaves OpenMP's default of one thread per CPU, with
which one query over 100,000 random vectors took about 3.6 times as long on a busy
2-vCPU machine. Needs the `bench` extra: `pip install -e '.[test,bench]'`.

    CATALOG_SEARCH_DATA_DIR=/tmp/var python benchmarks/txtai_service.py --port 8102
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import faiss
import numpy as np
from comparison_app import (
    CatalogSnapshot,
    Ranking,
    run_server,
)
from txtai import Embeddings


class TxtaiBackend:
    """Searches the catalog and matches posted products with txtai."""

    def __init__(self, model_path: str, catalog: CatalogSnapshot, batch_size: int,
                 faiss_threads: int) -> None:
        self.faiss_threads = faiss_threads
        self.encoder = Embeddings(path=model_path, method="sentence-transformers",
                                  batch=batch_size, encodebatch=batch_size)
        # A fast tokenizer shared across threads fails with "Already borrowed", so the
        # encodes of concurrent requests take turns, while FAISS searches run in parallel.
        self.lock = threading.Lock()

        def encode(texts: Sequence[str]) -> np.ndarray:
            with self.lock:
                return np.asarray(self.encoder.batchtransform(list(texts)), dtype=np.float32)

        # txtai calls `transform` without arguments unless it is a plain function.
        self.catalog = Embeddings(method="external", transform=encode, backend="faiss",
                                  faiss={"components": "IDMap,Flat"}, content=False)
        self.catalog.index((row, vector, None) for row, vector in enumerate(catalog.vectors))

    def search(self, queries: list[str], top_k: int) -> Ranking:
        # libgomp keeps the thread count per thread: a value set in another thread would
        # not reach this request's worker thread.
        faiss.omp_set_num_threads(self.faiss_threads)
        found = self.catalog.batchsearch(queries, top_k)
        return [[(int(row), round(float(score), 4)) for row, score in hits] for hits in found]

    def match(self, queries: list[str], products: list[str], top_k: int) -> Ranking:
        with self.lock:
            found = self.encoder.batchsimilarity(queries, products)
        return [[(int(row), round(float(score), 4)) for row, score in hits[:top_k]] for hits in found]


def main() -> None:
    run_server(__doc__.splitlines()[0], "txtai", TxtaiBackend)

if __name__ == "__main__":
    main()
