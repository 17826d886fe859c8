"""Load our service, the baseline and txtai with the same HTTP requests, in one run, and print ratios.

Writes a synthetic catalog of `--products` products (see `synthetic_catalog.py`) as the
active version of a temporary data folder, with the index a build of that size writes
(HNSW from `CATALOG_SEARCH_HNSW_MIN_PRODUCTS` on, its efSearch measured by the build).
Then it measures one server at a time. It
starts the server on a free 127.0.0.1 port, waits until `/api/v1/ready` returns 200 and
sends a few unmeasured requests. Then it runs the load of `http_load.py`: `/search` with
1 and 32 queries per request at each concurrency level, then `/similarity` with 100 and
1,000 new ad-hoc products, first and repeated. It stops the server by its pid. The
servers:

- `ours`: `python -m service` with its default settings, except the ranking mode
  (`--mode`, dense by default, because the other two rank by embeddings alone) and the
  rate limit, which is turned off.
- `baseline`: `baseline_service.py`, which encodes everything on each request.
- `txtai`: `txtai_service.py`, which needs the `bench` extra.

For `ours`, it reads the encoder batch-size histogram from `/metrics` before and after
each level and prints the mean texts per model call (the micro-batch size). It prints
the `http_load.py` tables of each server and a table of ratios, where a ratio above 1
means that ours is faster. It writes nothing into the repository and deletes the
temporary folder unless `--keep` is given.

For `ours` it also reads the server's resident memory (VmRSS) after the load, and sends
`--recall-queries` distinct queries (the first words of base titles) to measure the
served recall@10: the share of the exact top 10, found by a scan of the version's
vectors with the same encoder, that the service returns.

A second stage, unless `--large-products` is 0, writes a catalog of that size the same
way and measures `ours` alone: `/search` with one query per request, memory and recall.

Before the servers, unless `--throughput-products` is 0, it compares the indexer's
throughput with the raw encoder's on the first products of the base catalog, as
`indexer_throughput.py` does: the raw encoder, then `python -m indexer build --activate`
in a child process, with the build's own report of its seconds.

    python benchmarks/speed_suite.py --products 100000 --large-products 1000000 --seconds 20 \
        --base-catalog products.csv --columns id=product_uid,title=product_title
    python benchmarks/speed_suite.py --products 5000 --large-products 0 --throughput-products 500 \
        --seconds 3   # a quick check
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import faiss
import httpx
from http_load import (
    SEARCH_TABLE_HEADER,
    SIMILARITY_SIZES,
    SIMILARITY_TABLE_HEADER,
    percentile,
    run_search_load,
    search_row,
    similarity_row,
    time_similarity,
)
from indexer_throughput import print_throughput, time_build, time_raw_encoder, write_subset
from replica_memory import process_memory
from synthetic_catalog import (
    BaseCatalog,
    add_base_arguments,
    database_override,
    load_base,
    query_texts,
    write_synthetic_version,
)

from indexer import artifacts
from indexer.catalog import load_catalog
from indexer.embedding import Embedder, load_embedder
from indexer.settings import Settings

BENCHMARKS = Path(__file__).resolve().parent
SERVERS = ("ours", "baseline", "txtai")
READY_TIMEOUT_SECONDS = 900
"""How long a server may take to load the model and the catalog (txtai indexes it anew)."""

WARM_UP_REQUESTS = 10
"""Unmeasured one-query requests before the load; PyTorch's first few forward passes are slow."""

RECALL_K = 10
BATCH_SUM = "catalog_search_encode_batch_size_sum"
BATCH_COUNT = "catalog_search_encode_batch_size_count"


@dataclass(frozen=True)
class Level:
    """One `/search` load level; latencies ascending, in ms; `mean_batch` None without metrics."""

    queries_per_request: int
    clients: int
    latencies: list[float]
    failed: int
    mean_batch: float | None

    def queries_per_second(self, seconds: float) -> float:
        return len(self.latencies) * self.queries_per_request / seconds

    def median(self) -> float:
        return statistics.median(self.latencies) if self.latencies else float("nan")


@dataclass
class ServerResult:
    name: str
    levels: list[Level] = field(default_factory=list)
    similarity: dict[int, tuple[float, float]] = field(default_factory=dict)
    """Ad-hoc product count to the ms of the first and of the repeated request."""
    rss_mib: float | None = None
    recall_at_10: float | None = None


@dataclass(frozen=True)
class Server:
    url: str
    pid: int


@dataclass(frozen=True)
class Stage:
    """A written synthetic catalog: its settings, index description, and the recall queries
    with the product ids of their exact top 10."""

    products: int
    settings: Settings
    index: dict[str, object]
    queries: list[str]
    exact_ids: list[list[str]]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def server_command(name: str, port: int) -> list[str]:
    if name == "ours":
        return [sys.executable, "-m", "service"]
    return [sys.executable, str(BENCHMARKS / f"{name}_service.py"), "--port", str(port)]


@contextlib.contextmanager
def running(name: str, settings: Settings, mode: str, log: Path) -> Iterator[Server]:
    """Start a server on a free port; yield its URL and pid once `/api/v1/ready` returns 200.

    Raises `TimeoutError` naming the log when it is not ready in time, and `RuntimeError`
    when it exits first.
    """
    port = free_port()
    env = {**os.environ, "CATALOG_SEARCH_DATA_DIR": str(settings.data_dir),
           "CATALOG_SEARCH_DATABASE_URL": settings.database_url, "CATALOG_SEARCH_PORT": str(port),
           "CATALOG_SEARCH_HOST": "127.0.0.1", "CATALOG_SEARCH_SEARCH_MODE": mode,
           "CATALOG_SEARCH_RATE_LIMIT_SEARCH_PER_MINUTE": "0", "CATALOG_SEARCH_LOG_FORMAT": "json",
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    url = f"http://127.0.0.1:{port}"
    with log.open("w") as output:
        process = subprocess.Popen(server_command(name, port), env=env, stdout=output, stderr=output,
                                   cwd=settings.data_dir)
        try:
            wait_ready(process, url, log)
            yield Server(url, process.pid)
        finally:
            process.terminate()
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_ready(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    with httpx.Client(base_url=url, timeout=10) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited with code {process.returncode}; see {log}")
            with contextlib.suppress(httpx.TransportError):
                if client.get("/api/v1/ready").status_code == 200:
                    return
            time.sleep(0.2)
    raise TimeoutError(f"the server was not ready in {READY_TIMEOUT_SECONDS} s; see {log}")


def encode_batch_totals(url: str) -> tuple[float, float] | None:
    """Return the sum and count of the encoder batch-size histogram, or None when the server
    exports no such metric."""
    response = httpx.get(f"{url}/metrics", timeout=30)
    if response.status_code != 200:
        return None
    values = {}
    for line in response.text.splitlines():
        name, _, value = line.partition(" ")
        if name in (BATCH_SUM, BATCH_COUNT):
            values[name] = float(value)
    if len(values) < 2:
        return None
    return values[BATCH_SUM], values[BATCH_COUNT]


def mean_batch(before: tuple[float, float] | None, after: tuple[float, float] | None) -> float | None:
    if before is None or after is None or after[1] == before[1]:
        return None
    return (after[0] - before[0]) / (after[1] - before[1])


def warm_up(url: str) -> None:
    """Send unmeasured requests of each kind, so that one-time work (an ONNX export, lazy
    loading, the first forward passes of each batch shape) is done before the load."""
    with httpx.Client(base_url=url, timeout=600) as client:
        for size in [1] * WARM_UP_REQUESTS + [32] * 2:
            queries = [f"warm-up query {number}" for number in range(size)]
            client.post("/api/v1/search", json={"queries": queries, "top_k": 10}).raise_for_status()
        products = [f"warm-up product {number}" for number in range(20)]
        client.post("/api/v1/similarity", json={"text": ["warm-up"], "products": products}
                    ).raise_for_status()


def measure(name: str, server: Server, stage: Stage, args: argparse.Namespace,
            full: bool = True) -> ServerResult:
    """Run the load levels against one server, printing rows: every level and the
    `/similarity` requests when `full`, else one query per request only. For `ours`, also
    memory and served recall."""
    result = ServerResult(name)
    url = server.url
    warm_up(url)
    print(f"\n### {name}, {stage.products:,} products\n\n{SEARCH_TABLE_HEADER}", flush=True)
    for queries_per_request in (1, 32) if full else (1,):
        for clients in args.clients:
            before = encode_batch_totals(url)
            latencies, failed = run_search_load(url, clients, queries_per_request, args.seconds, {})
            level = Level(queries_per_request, clients, latencies, failed,
                          mean_batch(before, encode_batch_totals(url)))
            result.levels.append(level)
            print(search_row(queries_per_request, clients, latencies, failed, args.seconds), flush=True)

    if full:
        print(f"\n{SIMILARITY_TABLE_HEADER}")
        for products in SIMILARITY_SIZES:
            result.similarity[products] = time_similarity(url, products, {})
            print(similarity_row(products, *result.similarity[products]), flush=True)

    if name == "ours":
        result.rss_mib = process_memory(server.pid)["VmRSS"] / 2**20
        result.recall_at_10 = served_recall(url, stage.queries, stage.exact_ids)
        print(f"\nResident memory after the load: {result.rss_mib:,.0f} MiB; served recall@{RECALL_K} "
              f"over {len(stage.queries)} queries: {result.recall_at_10:.4f}", flush=True)

    batches = [level for level in result.levels if level.mean_batch is not None]
    if batches:
        print("\n| queries/request | clients | mean texts per model call |\n| --- | --- | --- |")
        for level in batches:
            print(f"| {level.queries_per_request} | {level.clients} | {level.mean_batch:.1f} |")
    return result


def exact_top_ids(version_path: Path, embedder: Embedder, queries: Sequence[str]) -> list[list[str]]:
    """Return the ids of each query's exact top 10 over the vectors of a synthetic version,
    whose product at position n has the id `SYN-<n>`."""
    index = faiss.read_index(str(version_path / artifacts.INDEX_FILE))
    vectors = index.reconstruct_n(0, index.ntotal)
    del index
    _, positions = faiss.knn(embedder.encode(list(queries)), vectors, RECALL_K,
                             metric=faiss.METRIC_INNER_PRODUCT)
    return [[f"SYN-{int(position):07d}" for position in row] for row in positions]


def served_recall(url: str, queries: Sequence[str], exact_ids: Sequence[Sequence[str]]) -> float:
    """Send each query alone and return the share of its exact top-10 ids that came back."""
    found = 0
    with httpx.Client(base_url=url, timeout=60) as client:
        for query, expected in zip(queries, exact_ids, strict=True):
            response = client.post("/api/v1/search", json={"queries": [query], "top_k": RECALL_K})
            response.raise_for_status()
            served = {match["product_id"] for match in response.json()["results"][0]["matches"]}
            found += len(served & set(expected))
    return found / sum(len(expected) for expected in exact_ids)


def write_stage(folder: Path, products: int, embedder: Embedder, base: BaseCatalog,
                args: argparse.Namespace) -> Stage:
    """Write a synthetic catalog of `products` into its own data folder and find the exact
    top-10 ids of the recall queries."""
    settings = Settings.from_env(data_dir=folder / f"products-{products}" / "var",
                                 **database_override(args.database_url))
    written = write_synthetic_version(settings, embedder, base, products, args.seed, args.noise,
                                      activate=True, index_choice=settings.index_choice)
    manifest = json.loads((written.path / artifacts.MANIFEST_FILE).read_text())
    queries = query_texts(base, args.recall_queries, args.seed)
    stage = Stage(products, settings, manifest["index"], queries,
                  exact_top_ids(written.path, embedder, queries))
    print(f"\nVersion {written.version}: {products:,} synthetic products, written in "
          f"{written.seconds:.0f} s; index {describe_index(stage.index)}", flush=True)
    return stage


def describe_index(index: dict[str, object]) -> str:
    if "ef_search" not in index:
        return str(index["type"])
    return (f"{index['type']} (M={index['m']}, efConstruction={index['ef_construction']}, "
            f"efSearch={index['ef_search']}, build's sample recall@10 {index['recall_at_10']})")


def measure_indexer(folder: Path, args: argparse.Namespace) -> float:
    """Time the raw encoder and an indexer build on the first `--throughput-products` products
    of the base catalog, print both, and return the build's share of the raw throughput."""
    settings = Settings.from_env(data_dir=folder / "throughput" / "var",
                                 **database_override(args.database_url))
    products = load_catalog(args.base_catalog, args.columns, settings.text_template).products
    products = products[:args.throughput_products]
    subset = folder / "throughput" / "catalog.csv"
    subset.parent.mkdir(parents=True)
    write_subset(products, subset)
    raw_seconds = time_raw_encoder(settings, [product.text(settings.text_template) for product in products])
    build_seconds, wall_clock = time_build(settings, subset)
    print("\n### Indexer throughput")
    print_throughput(len(products), raw_seconds, build_seconds, wall_clock)
    shutil.rmtree(folder / "throughput", ignore_errors=True)
    return raw_seconds / build_seconds


def print_targets(stage: Stage, ours: ServerResult, baseline: ServerResult | None,
                  large: tuple[Stage, ServerResult] | None, indexer_share: float | None,
                  seconds: float) -> None:
    """Print each target of the speed work beside what this run measured."""
    def level(result: ServerResult, queries: int, clients: int) -> Level | None:
        return next((found for found in result.levels
                     if (found.queries_per_request, found.clients) == (queries, clients)), None)

    rows = []
    single_client = level(ours, 1, 1)
    if single_client is not None:
        p50, p99 = single_client.median(), percentile(single_client.latencies, 0.99)
        rows.append((f"/search, 1 query, {stage.products:,} products, 1 client: p50 <= 8 ms, p99 <= 25 ms",
                     f"p50 {p50:.1f} ms, p99 {p99:.1f} ms", p50 <= 8 and p99 <= 25))
    busy = level(ours, 1, 16)
    if busy is not None:
        rate, p99 = busy.queries_per_second(seconds), percentile(busy.latencies, 0.99)
        rows.append(("/search, 1 query, 16 clients: >= 300 queries/s with p99 <= 100 ms",
                     f"{rate:.0f} queries/s, p99 {p99:.1f} ms", rate >= 300 and p99 <= 100))
    if baseline is not None and 1000 in ours.similarity and 1000 in baseline.similarity:
        times = ours.similarity[1000][1], baseline.similarity[1000][1]
        rows.append(("repeated /similarity, 1,000 seen products: >= 100x the baseline",
                     f"{times[0]:.0f} ms vs {times[1]:.0f} ms: {times[1] / times[0]:.0f}x",
                     times[1] / times[0] >= 100))
    if indexer_share is not None:
        rows.append(("indexer build: >= 90% of the raw encoder's throughput", f"{indexer_share:.0%}",
                     indexer_share >= 0.9))
    if large is not None:
        large_stage, result = large
        single_client = level(result, 1, 1)
        assert result.recall_at_10 is not None
        p50 = single_client.median() if single_client is not None else float("nan")
        rows.append((f"{large_stage.products:,} products: recall@10 >= 0.98, p50 <= 15 ms",
                     f"recall@10 {result.recall_at_10:.4f}, p50 {p50:.1f} ms",
                     result.recall_at_10 >= 0.98 and p50 <= 15))
    print("\n### Targets\n\n| target | measured | met |\n| --- | --- | --- |")
    for target, measured, met in rows:
        print(f"| {target} | {measured} | {'yes' if met else 'no'} |")


def ratio(numerator: float, denominator: float) -> str:
    return f"{numerator / denominator:.1f}x" if denominator > 0 else "-"


def print_ratios(results: dict[str, ServerResult], seconds: float) -> None:
    """Print each measurement per server and how many times faster ours is than each other."""
    others = [name for name in results if name != "ours"]
    ours = results["ours"]
    print("\n### Ratios (above 1: ours is faster)\n")
    print("| measurement | " + " | ".join(results) + " | "
          + " | ".join(f"ours vs {name}" for name in others) + " |")
    print("| --- " * (1 + len(results) + len(others)) + "|")

    for position, level in enumerate(ours.levels):
        clients = f"{level.clients} client" + ("s" if level.clients > 1 else "")
        label = f"/search {level.queries_per_request} q/request, {clients}"
        rates = {name: result.levels[position].queries_per_second(seconds)
                 for name, result in results.items()}
        medians = {name: result.levels[position].median() for name, result in results.items()}
        print(f"| {label}, queries/s | " + " | ".join(f"{rates[name]:.0f}" for name in results) + " | "
              + " | ".join(ratio(rates["ours"], rates[name]) for name in others) + " |")
        print(f"| {label}, p50 ms | " + " | ".join(f"{medians[name]:.1f}" for name in results) + " | "
              + " | ".join(ratio(medians[name], medians["ours"]) for name in others) + " |")

    for products in SIMILARITY_SIZES:
        for column, label in enumerate(("first", "repeated")):
            times = {name: result.similarity[products][column] for name, result in results.items()}
            print(f"| /similarity {products} products, {label}, ms | "
                  + " | ".join(f"{times[name]:.0f}" for name in results) + " | "
                  + " | ".join(ratio(times[name], times["ours"]) for name in others) + " |")


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=100_000,
                        help="synthetic catalog size (default: %(default)s)")
    parser.add_argument("--seconds", type=float, default=20,
                        help="duration of each /search load level, in seconds (default: %(default)s)")
    parser.add_argument("--large-products", type=int, default=1_000_000,
                        help="size of the second catalog, served by ours alone; 0 skips it "
                             "(default: %(default)s)")
    parser.add_argument("--throughput-products", type=int, default=100_000,
                        help="products of the base catalog for the indexer throughput, at most all "
                             "of them; 0 skips it (default: %(default)s)")
    parser.add_argument("--recall-queries", type=int, default=1000,
                        help="distinct queries that measure the served recall@10 (default: %(default)s)")
    parser.add_argument("--clients", default="1,4,16",
                        help="comma-separated concurrency levels (default: %(default)s)")
    parser.add_argument("--servers", default=",".join(SERVERS),
                        help="comma-separated servers to measure, from ours, baseline and txtai; "
                             "ratios need ours (default: %(default)s)")
    parser.add_argument("--mode", choices=("dense", "lexical", "hybrid"), default="dense",
                        help="ranking mode of our service (default: %(default)s, as the others rank)")
    parser.add_argument("--database-url", default="",
                        help="SQLAlchemy URL of an empty metadata database (default: SQLite in the "
                             "temporary folder); the suite leaves its rows there")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder and server logs")
    add_base_arguments(parser)
    args = parser.parse_args()

    args.clients = [int(level) for level in args.clients.split(",")]
    args.servers = [name.strip() for name in args.servers.split(",")]
    unknown = sorted(set(args.servers) - set(SERVERS))
    if unknown:
        parser.error(f"--servers: unknown server {', '.join(unknown)}; choose from {', '.join(SERVERS)}")
    if args.products < 1 or args.seconds <= 0 or min(args.clients) < 1 or args.recall_queries < 1:
        parser.error("--products, --seconds, --recall-queries and every --clients level must be positive")
    if args.large_products < 0 or args.throughput_products < 0:
        parser.error("--large-products and --throughput-products must be 0 (skip) or positive")
    return args


def main() -> None:
    args = parse_arguments()
    folder = Path(tempfile.mkdtemp(prefix=f"catalog-search-speed-{args.products}-"))
    try:
        indexer_share = measure_indexer(folder, args) if args.throughput_products else None
        # The suite's own encoder exports its ONNX model into a folder of its own.
        model_settings = Settings.from_env(data_dir=folder / "model", **database_override(args.database_url))
        embedder = load_embedder(model_settings)
        base = load_base(args.base_catalog, args.columns, embedder, model_settings.text_template,
                         args.cache_dir)
        stage = write_stage(folder, args.products, embedder, base, args)
        print(f"{args.seconds:g} s per load level")
        results = {}
        for name in args.servers:
            with running(name, stage.settings, args.mode, folder / f"{name}.log") as server:
                results[name] = measure(name, server, stage, args)
        if "ours" in results and len(results) > 1:
            print_ratios(results, args.seconds)

        large = None
        if args.large_products and "ours" in args.servers:
            shutil.rmtree(stage.settings.data_dir, ignore_errors=True)
            large_stage = write_stage(folder, args.large_products, embedder, base, args)
            with running("ours", large_stage.settings, args.mode, folder / "ours-large.log") as server:
                large = large_stage, measure("ours", server, large_stage, args, full=False)
        if "ours" in results:
            print_targets(stage, results["ours"], results.get("baseline"), large, indexer_share,
                          args.seconds)
    finally:
        if args.keep:
            print(f"Kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
