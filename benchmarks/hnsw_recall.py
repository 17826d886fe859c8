"""Compare the recall@10 that an HNSW build measures on its noisy sample with real queries'.

Reads the vectors of an existing version's index file and builds HNSW from them with
`indexer.artifacts.build_index`, which picks efSearch from the noisy sample alone: an
index file contains no product texts, from which a build also makes short queries. Then it
encodes the first `--queries-count` real queries with fp32 ONNX and prints the sample's
and the real queries' recall@10 against exact search for each efSearch the build tried.
It writes nothing into the repository.

    python -m benchmarks.hnsw_recall --index /tmp/speed-quant/fp32/indexes/v000001/index.faiss \
        --queries queries.csv --onnx-dir /tmp/speed-quant/fp32/onnx
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import faiss

from indexer.artifacts import IndexChoice, build_index
from indexer.embedding import Embedder
from indexer.hnsw_tuning import RECALL_K, recall
from indexer.settings import Settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, required=True, help="index.faiss of a version")
    parser.add_argument("--queries", type=Path, required=True, help="CSV with a query column")
    parser.add_argument("--queries-count", type=int, default=1000, help="real queries to encode")
    parser.add_argument("--onnx-dir", type=Path, required=True, help="folder for the exported model")
    parser.add_argument("--hnsw-m", type=int, default=32, help="graph neighbours per vector")
    args = parser.parse_args()

    stored = faiss.read_index(str(args.index))
    vectors = stored.reconstruct_n(0, stored.ntotal)
    started = time.perf_counter()
    graph, description = build_index(vectors, IndexChoice("hnsw", hnsw_m=args.hnsw_m))
    print(f"{len(vectors)} vectors, HNSW M={args.hnsw_m} built and tuned in "
          f"{time.perf_counter() - started:.0f} s, chose efSearch {description['ef_search']}")

    with args.queries.open(newline="", encoding="utf-8") as stream:
        texts = [row["query"] for row in csv.DictReader(stream)][:args.queries_count]
    queries = Embedder(Settings().model, backend="onnx", onnx_dir=args.onnx_dir).encode(texts)
    _, truth = faiss.knn(queries, vectors, RECALL_K, metric=faiss.METRIC_INNER_PRODUCT)

    print("| efSearch | sample recall@10 | real queries recall@10 |")
    print("| --- | --- | --- |")
    for ef, sample_recall in description["recall_by_ef_search"].items():
        graph.hnsw.efSearch = int(ef)
        _, found = graph.search(queries, RECALL_K)
        print(f"| {ef} | {sample_recall:.4f} | {recall(found, truth):.4f} |")


if __name__ == "__main__":
    main()
