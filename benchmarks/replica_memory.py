"""Measure one replica's memory and `/search` latency at given catalog sizes.

For each size: write a synthetic version (see `synthetic_catalog.py`) into a temporary
data folder, with a second one of the same size. Start `python -m service` on a free
127.0.0.1 port and read its RSS once the model is loaded. Activate the first version,
read the RSS again once it is served, and send a few hundred distinct one-query
searches. Then activate the second version, which the service loads beside the first
before it swaps, read the RSS and its peak, and stop the service by its pid. Prints one
table row per size. It writes nothing into the repository, and deletes the
temporary folder unless `--keep` is given.

    python benchmarks/replica_memory.py --products 100000
    python benchmarks/replica_memory.py --products 1000000 \
        --base-catalog products.csv --columns id=product_uid,title=product_title
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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
from search_latency import percentile
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from synthetic_catalog import (
    BaseCatalog,
    add_base_arguments,
    database_override,
    load_base,
    query_texts,
    write_synthetic_version,
)

from indexer import versions
from indexer.database import create_database_engine, session_factory
from indexer.embedding import Embedder, load_embedder
from indexer.schema import Product
from indexer.settings import Settings

MIB = 1024 * 1024
WAIT_SECONDS = 900
"""How long to wait for the service to load the model or a version before giving up."""


@dataclass(frozen=True)
class Measurement:
    """One size's row of the table; memory in bytes, latencies in milliseconds."""

    products: int
    prepare_seconds: float
    index_bytes: int
    database_rows: int
    rss_model: int
    rss_loaded: int
    rss_after_queries: int
    peak_first_load: int
    rss_after_swap: int
    peak_swap: int
    load_seconds: float
    p50_ms: float
    p95_ms: float


def process_memory(pid: int) -> dict[str, int]:
    """Return VmRSS and VmHWM (peak RSS) of a process in bytes, from /proc/PID/status."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0]) * 1024
    return values


@contextlib.contextmanager
def service(settings: Settings, log: Path) -> Iterator[tuple[subprocess.Popen[bytes], httpx.Client]]:
    """Run `python -m service` on a free port; yield the process and a client once it serves HTTP."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "CATALOG_SEARCH_DATA_DIR": str(settings.data_dir),
           "CATALOG_SEARCH_DATABASE_URL": settings.database_url, "CATALOG_SEARCH_PORT": str(port),
           "CATALOG_SEARCH_POLL_INTERVAL_SECONDS": "1", "CATALOG_SEARCH_LOG_FORMAT": "json",
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    with log.open("w") as output:
        process = subprocess.Popen([sys.executable, "-m", "service"], env=env, stdout=output,
                                   stderr=output)
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}/api/v1", timeout=60) as client:
                yield process, client
        finally:
            process.terminate()
            process.wait(timeout=60)


def wait_until(client: httpx.Client, condition: Callable[[httpx.Response], bool], log: Path) -> None:
    """Poll /ready until `condition` holds; raises `TimeoutError` naming the service log."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.TransportError):
            if condition(client.get("/ready")):
                return
        time.sleep(0.1)
    raise TimeoutError(f"the service did not get ready in {WAIT_SECONDS} s; see its log {log}")


def measure(settings: Settings, embedder: Embedder, base: BaseCatalog, count: int,
            args: argparse.Namespace) -> Measurement:
    """Write two versions of `count` products, then measure a service that loads the first
    and swaps to the second."""
    first = write_synthetic_version(settings, embedder, base, count, args.seed, args.noise, activate=False)
    second = write_synthetic_version(settings, embedder, base, count, args.seed + 1, args.noise,
                                     activate=False)
    engine = create_database_engine(settings.database_url)
    sessions = session_factory(engine)
    with sessions() as session:
        rows = session.scalar(select(func.count()).select_from(Product)
                              .where(Product.version_id == first.version))

    log = settings.data_dir / "service.log"
    with service(settings, log) as (process, client):
        wait_until(client, lambda response: response.status_code == 200, log)
        model_only = process_memory(process.pid)

        load_seconds = serve_version(client, sessions, first.version, log)
        loaded = process_memory(process.pid)
        latencies = search_latencies(client, query_texts(base, args.queries, args.seed))
        after_queries = process_memory(process.pid)

        serve_version(client, sessions, second.version, log)
        after_swap = process_memory(process.pid)
    engine.dispose()

    return Measurement(
        count, first.seconds, (first.path / "index.faiss").stat().st_size, rows or 0,
        model_only["VmRSS"], loaded["VmRSS"], after_queries["VmRSS"], after_queries["VmHWM"],
        after_swap["VmRSS"], after_swap["VmHWM"], load_seconds,
        statistics.median(latencies), percentile(latencies, 0.95),
    )


def serve_version(client: httpx.Client, sessions: sessionmaker[Session], version: int, log: Path) -> float:
    """Activate `version` and wait until the service serves it; returns the seconds that took,
    which include up to one poll interval."""
    started = time.perf_counter()
    with sessions.begin() as session:
        versions.activate(session, version, source="benchmark")
    wait_until(client, lambda response: response.json().get("index_version") == version, log)
    return time.perf_counter() - started


def search_latencies(client: httpx.Client, queries: list[str], top_k: int = 10) -> list[float]:
    """Send one `/search` request per query after five unmeasured ones; returns sorted milliseconds."""
    for query in queries[:5]:
        client.post("/search", json={"queries": [f"warm-up {query}"], "top_k": top_k}).raise_for_status()
    latencies = []
    for query in queries:
        started = time.perf_counter()
        response = client.post("/search", json={"queries": [query], "top_k": top_k})
        latencies.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    return sorted(latencies)


def print_table(rows: list[Measurement], queries: int) -> None:
    columns = ["products", "index.faiss MiB", "product rows", "RSS, model only MiB",
               "RSS, version loaded MiB", f"RSS after {queries} searches MiB", "peak RSS so far MiB",
               "RSS after a swap MiB", "peak RSS with the swap MiB", "load s", "/search p50 ms",
               "/search p95 ms"]
    print("| " + " | ".join(columns) + " |")
    print("| " + " | ".join(["---"] * len(columns)) + " |")
    for row in rows:
        memory = [row.rss_model, row.rss_loaded, row.rss_after_queries, row.peak_first_load,
                  row.rss_after_swap, row.peak_swap]
        cells = [f"{row.products:,}", f"{row.index_bytes / MIB:,.0f}", f"{row.database_rows:,}",
                 *(f"{value / MIB:,.0f}" for value in memory), f"{row.load_seconds:.1f}",
                 f"{row.p50_ms:.1f}", f"{row.p95_ms:.1f}"]
        print("| " + " | ".join(cells) + " |")
    for row in rows:
        print(f"Writing one version of {row.products:,} products took {row.prepare_seconds:.1f} s.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, nargs="+", default=[100_000, 1_000_000],
                        help="catalog sizes to measure, one service each (default: %(default)s)")
    parser.add_argument("--queries", type=int, default=300,
                        help="distinct one-query /search requests per size (default: %(default)s)")
    parser.add_argument("--database-url", default="",
                        help="SQLAlchemy URL of an empty metadata database (default: SQLite in the "
                             "temporary folder); the benchmark leaves its rows there")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data folders")
    add_base_arguments(parser)
    args = parser.parse_args()
    if min(args.products) < 1 or args.queries < 1:
        parser.error("--products and --queries must be at least 1")

    # The model of this process names and fingerprints the versions; the service loads its own.
    defaults = Settings.from_env()
    embedder = load_embedder(defaults)
    base = load_base(args.base_catalog, args.columns, embedder, defaults.text_template, args.cache_dir)
    rows = []
    for count in args.products:
        folder = Path(tempfile.mkdtemp(prefix=f"catalog-search-memory-{count}-"))
        settings = Settings.from_env(data_dir=folder / "var", **database_override(args.database_url))
        try:
            rows.append(measure(settings, embedder, base, count, args))
        finally:
            if args.keep:
                print(f"Kept {folder}")
            else:
                shutil.rmtree(folder, ignore_errors=True)
    print_table(rows, args.queries)


if __name__ == "__main__":
    main()
