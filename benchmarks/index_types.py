"""Compare the exact FAISS index with HNSW and IVF on synthetic catalog vectors.

For each size, the vectors come from `synthetic_catalog.py` (real embeddings of the base
titles plus noise), and the queries are real embeddings of short queries made from base
titles. Prints build seconds, index size, search time per single-query call (as the
service searches one request) and recall@10 against the exact index. It writes nothing.

    python benchmarks/index_types.py --products 100000 1000000 \
        --base-catalog products.csv --columns id=product_uid,title=product_title
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from dataclasses import dataclass

import faiss
import numpy as np
from search_latency import percentile
from synthetic_catalog import BaseCatalog, add_base_arguments, generate, load_base, query_texts

from indexer.embedding import load_embedder
from indexer.settings import Settings

MIB = 1024 * 1024
TOP_K = 10


@dataclass(frozen=True)
class Result:
    """One index configuration at one size; times in milliseconds unless named seconds."""

    products: int
    index: str
    parameters: str
    build_seconds: float
    size_bytes: int
    p50_ms: float
    p95_ms: float
    cpu_p50_ms: float
    """Median CPU time of this process per search, all FAISS threads included. Time spent
    waiting for a core that another process uses does not count, spinning threads do."""
    recall: float


def synthetic_vectors(base: BaseCatalog, count: int, args: argparse.Namespace, template: str) -> np.ndarray:
    """Return the vectors of the synthetic catalog of `count` products, shape (count, d), float32."""
    return np.concatenate([chunk.vectors for chunk in generate(base, count, args.seed, args.noise, template)])


def time_searches(index: faiss.Index, queries: np.ndarray) -> tuple[list[float], list[float], np.ndarray]:
    """Search each query alone; returns the sorted wall-clock and process CPU times in ms, and
    the top-k ids, shape (n, k)."""
    times, cpu_times, found = [], [], []
    for row in range(len(queries)):
        started, cpu_started = time.perf_counter(), time.process_time()
        _, ids = index.search(queries[row:row + 1], TOP_K)
        times.append((time.perf_counter() - started) * 1000)
        cpu_times.append((time.process_time() - cpu_started) * 1000)
        found.append(ids[0])
    return sorted(times), sorted(cpu_times), np.array(found)


def recall_at_k(found: np.ndarray, exact: np.ndarray) -> float:
    """Share of the exact top-k ids that the approximate search also returned."""
    return float(np.mean([len(set(a) & set(e)) / TOP_K for a, e in zip(found, exact, strict=True)]))


def result(count: int, name: str, parameters: str, build_seconds: float, index: faiss.Index,
           queries: np.ndarray, exact: np.ndarray | None) -> tuple[Result, np.ndarray]:
    """Time the searches of one configuration; recall is 1 for the exact index (`exact` None)."""
    times, cpu_times, found = time_searches(index, queries)
    recall = 1.0 if exact is None else recall_at_k(found, exact)
    size = faiss.serialize_index(index).nbytes
    row = Result(count, name, parameters, build_seconds, size, statistics.median(times),
                 percentile(times, 0.95), statistics.median(cpu_times), recall)
    print(f"  {name} {parameters}: p50 {row.p50_ms:.2f} ms (CPU {row.cpu_p50_ms:.2f} ms), "
          f"recall@{TOP_K} {recall:.3f}")
    return row, found


def compare(count: int, vectors: np.ndarray, queries: np.ndarray, args: argparse.Namespace) -> list[Result]:
    """Build and measure the exact, HNSW and IVF indexes over `vectors`."""
    dimension = vectors.shape[1]
    started = time.perf_counter()
    flat = faiss.IndexFlatIP(dimension)
    flat.add(vectors)
    exact_row, exact = result(count, "IndexFlatIP", "exact", time.perf_counter() - started, flat,
                              queries, None)
    rows = [exact_row]
    del flat

    started = time.perf_counter()
    hnsw = faiss.IndexHNSWFlat(dimension, args.hnsw_m, faiss.METRIC_INNER_PRODUCT)
    hnsw.hnsw.efConstruction = args.ef_construction
    hnsw.add(vectors)
    seconds = time.perf_counter() - started
    for ef in args.ef_search:
        hnsw.hnsw.efSearch = ef
        rows.append(result(count, "IndexHNSWFlat", f"M={args.hnsw_m}, efConstruction="
                           f"{args.ef_construction}, efSearch={ef}", seconds, hnsw, queries, exact)[0])
    del hnsw

    # The lists grow with sqrt(n), so that comparing a query with the centroids and scanning
    # the probed lists cost about the same; 4 is the factor chosen here. FAISS's k-means warns
    # below 39 training vectors per list (faiss 1.15), so the sample has 40 per list.
    lists = int(4 * math.sqrt(count))
    started = time.perf_counter()
    ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(dimension), dimension, lists, faiss.METRIC_INNER_PRODUCT)
    sample = np.random.default_rng(args.seed).choice(count, min(count, 40 * lists), replace=False)
    ivf.train(vectors[np.sort(sample)])
    ivf.add(vectors)
    seconds = time.perf_counter() - started
    for probes in args.nprobe:
        ivf.nprobe = probes
        rows.append(result(count, "IndexIVFFlat", f"nlist={lists}, nprobe={probes}", seconds, ivf,
                           queries, exact)[0])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, nargs="+", default=[100_000, 1_000_000],
                        help="catalog sizes (default: %(default)s)")
    parser.add_argument("--queries", type=int, default=300, help="single-query searches per index")
    parser.add_argument("--hnsw-m", type=int, default=32, help="HNSW neighbours per node")
    parser.add_argument("--ef-construction", type=int, default=40, help="HNSW build-time beam width")
    parser.add_argument("--ef-search", type=int, nargs="+", default=[16, 64, 128],
                        help="HNSW search-time beam widths")
    parser.add_argument("--nprobe", type=int, nargs="+", default=[8, 32, 64], help="IVF lists searched")
    parser.add_argument("--faiss-threads", type=int,
                        help="OpenMP threads of FAISS (default: FAISS's own, one per core)")
    add_base_arguments(parser)
    args = parser.parse_args()
    if args.faiss_threads:
        faiss.omp_set_num_threads(args.faiss_threads)

    settings = Settings.from_env()
    embedder = load_embedder(settings)
    base = load_base(args.base_catalog, args.columns, embedder, settings.text_template, args.cache_dir)
    queries = embedder.encode(query_texts(base, args.queries, args.seed))
    del embedder

    rows = []
    for count in args.products:
        print(f"{count:,} products, {faiss.omp_get_max_threads()} FAISS threads")
        rows += compare(count, synthetic_vectors(base, count, args, settings.text_template), queries, args)

    print("| products | index | parameters | build s | size MiB | search p50 ms | search p95 ms "
          f"| search CPU p50 ms | recall@{TOP_K} |")
    print("| " + " | ".join(["---"] * 9) + " |")
    for row in rows:
        print(f"| {row.products:,} | {row.index} | {row.parameters} | {row.build_seconds:.1f} "
              f"| {row.size_bytes / MIB:,.0f} | {row.p50_ms:.2f} | {row.p95_ms:.2f} | {row.cpu_p50_ms:.2f} "
              f"| {row.recall:.3f} |")


if __name__ == "__main__":
    main()
