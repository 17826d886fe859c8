"""Load our service, the baseline and txtai with the same HTTP requests, in one run, and print ratios.

Writes a synthetic catalog of `--products` products (see `synthetic_catalog.py`) as the
active version of a temporary data folder. Then it measures one server at a time. It
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

    python benchmarks/speed_suite.py --products 100000 --seconds 20
    python benchmarks/speed_suite.py --products 5000 --seconds 3   # a quick check
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from http_load import (
    SEARCH_TABLE_HEADER,
    SIMILARITY_SIZES,
    SIMILARITY_TABLE_HEADER,
    run_search_load,
    search_row,
    similarity_row,
    time_similarity,
)
from synthetic_catalog import add_base_arguments, database_override, load_base, write_synthetic_version

from indexer.embedding import load_embedder
from indexer.settings import Settings

BENCHMARKS = Path(__file__).resolve().parent
SERVERS = ("ours", "baseline", "txtai")
READY_TIMEOUT_SECONDS = 900
"""How long a server may take to load the model and the catalog (txtai indexes it anew)."""

WARM_UP_REQUESTS = 10
"""Unmeasured one-query requests before the load; PyTorch's first few forward passes are slow."""

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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def server_command(name: str, port: int) -> list[str]:
    if name == "ours":
        return [sys.executable, "-m", "service"]
    return [sys.executable, str(BENCHMARKS / f"{name}_service.py"), "--port", str(port)]


@contextlib.contextmanager
def running(name: str, settings: Settings, mode: str, log: Path) -> Iterator[str]:
    """Start a server on a free port; yield its base URL once `/api/v1/ready` returns 200.

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
            yield url
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


def measure(name: str, url: str, args: argparse.Namespace) -> ServerResult:
    """Run every load level and the `/similarity` requests against one server, printing rows."""
    result = ServerResult(name)
    warm_up(url)
    print(f"\n### {name}\n\n{SEARCH_TABLE_HEADER}", flush=True)
    for queries_per_request in (1, 32):
        for clients in args.clients:
            before = encode_batch_totals(url)
            latencies, failed = run_search_load(url, clients, queries_per_request, args.seconds, {})
            level = Level(queries_per_request, clients, latencies, failed,
                          mean_batch(before, encode_batch_totals(url)))
            result.levels.append(level)
            print(search_row(queries_per_request, clients, latencies, failed, args.seconds), flush=True)

    print(f"\n{SIMILARITY_TABLE_HEADER}")
    for products in SIMILARITY_SIZES:
        result.similarity[products] = time_similarity(url, products, {})
        print(similarity_row(products, *result.similarity[products]), flush=True)

    batches = [level for level in result.levels if level.mean_batch is not None]
    if batches:
        print("\n| queries/request | clients | mean texts per model call |\n| --- | --- | --- |")
        for level in batches:
            print(f"| {level.queries_per_request} | {level.clients} | {level.mean_batch:.1f} |")
    return result


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
    if args.products < 1 or args.seconds <= 0 or min(args.clients) < 1:
        parser.error("--products, --seconds and every --clients level must be positive")
    return args


def main() -> None:
    args = parse_arguments()
    folder = Path(tempfile.mkdtemp(prefix=f"catalog-search-speed-{args.products}-"))
    settings = Settings.from_env(data_dir=folder / "var", **database_override(args.database_url))
    try:
        embedder = load_embedder(settings)
        base = load_base(args.base_catalog, args.columns, embedder, settings.text_template, args.cache_dir)
        written = write_synthetic_version(settings, embedder, base, args.products, args.seed, args.noise,
                                          activate=True)
        del embedder, base
        print(f"Version {written.version}: {written.product_count:,} synthetic products; "
              f"{args.seconds:g} s per load level")

        results = {}
        for name in args.servers:
            with running(name, settings, args.mode, folder / f"{name}.log") as url:
                results[name] = measure(name, url, args)
        if "ours" in results and len(results) > 1:
            print_ratios(results, args.seconds)
    finally:
        if args.keep:
            print(f"Kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
