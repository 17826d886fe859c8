"""Load a running service over HTTP from this process and print latency and throughput.

For `/search` with 1 and with 32 queries per request, at each concurrency level, every
client thread sends requests back to back for `--seconds`. Queries are numbered, so the
embedding cache does not serve them. For `/similarity` with ad-hoc products, one
request is sent with new product texts (first) and the same request again (repeated,
served from the embedding cache). It writes nothing; copy the table into
docs/benchmarks.md with the command and the machine.

    python benchmarks/http_load.py --url http://127.0.0.1:8000 --seconds 20
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import threading
import time

import httpx


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    rank = max(1, round(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def run_search_load(url: str, clients: int, queries_per_request: int, seconds: float,
                    headers: dict[str, str]) -> tuple[list[float], int]:
    """Return the latencies in ms of every request and the number of failed requests."""
    counter = itertools.count()
    latencies: list[float] = []
    failures = [0]
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def client() -> None:
        with httpx.Client(base_url=url, timeout=120, headers=headers) as http:
            while time.perf_counter() < deadline:
                number = next(counter)
                body = {"queries": [f"cordless drill {number} {i}" for i in range(queries_per_request)],
                        "top_k": 10}
                started = time.perf_counter()
                response = http.post("/api/v1/search", json=body)
                elapsed = (time.perf_counter() - started) * 1000
                with lock:
                    if response.status_code == 200:
                        latencies.append(elapsed)
                    else:
                        failures[0] += 1

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(latencies), failures[0]


def time_similarity(url: str, products: int, headers: dict[str, str]) -> tuple[float, float]:
    """Return the ms of a /similarity request with new product texts, then of the same again."""
    stamp = time.time_ns()
    texts = [f"Product {stamp}-{n}: circular saw blade {n} teeth for wood" for n in range(products)]
    body = {"text": ["What can I use to cut wood?"], "products": texts, "top_k": 5}
    timings = []
    with httpx.Client(base_url=url, timeout=600, headers=headers) as http:
        for _ in range(2):
            started = time.perf_counter()
            http.post("/api/v1/similarity", json=body).raise_for_status()
            timings.append((time.perf_counter() - started) * 1000)
    return timings[0], timings[1]


SEARCH_TABLE_HEADER = (
    "| route | queries/request | clients | requests | p50 ms | p95 ms | p99 ms | requests/s | "
    "queries/s | failed |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
)
SIMILARITY_TABLE_HEADER = ("| route | ad-hoc products | first request ms | repeated request ms |\n"
                           "| --- | --- | --- | --- |")
SIMILARITY_SIZES = (100, 1000)


def search_row(queries_per_request: int, clients: int, latencies: list[float], failed: int,
               seconds: float) -> str:
    """Format one load level as a row of the `/search` table; `latencies` ascending, in ms."""
    rate = len(latencies) / seconds
    if not latencies:
        return f"| /search | {queries_per_request} | {clients} | 0 | - | - | - | 0 | 0 | {failed} |"
    return (f"| /search | {queries_per_request} | {clients} | {len(latencies)} | "
            f"{statistics.median(latencies):.1f} | {percentile(latencies, 0.95):.1f} | "
            f"{percentile(latencies, 0.99):.1f} | {rate:.1f} | {rate * queries_per_request:.0f} | "
            f"{failed} |")


def similarity_row(products: int, first: float, repeated: float) -> str:
    return f"| /similarity | {products} | {first:.0f} | {repeated:.0f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="service base URL")
    parser.add_argument("--seconds", type=float, default=20, help="duration of each load level")
    parser.add_argument("--clients", default="1,4,16", help="comma-separated concurrency levels")
    parser.add_argument("--api-key", default="", help="X-API-Key to send, when search needs one")
    args = parser.parse_args()
    headers = {"X-API-Key": args.api_key} if args.api_key else {}

    print(SEARCH_TABLE_HEADER)
    for queries_per_request in (1, 32):
        for clients in (int(level) for level in args.clients.split(",")):
            latencies, failed = run_search_load(args.url, clients, queries_per_request, args.seconds,
                                                headers)
            print(search_row(queries_per_request, clients, latencies, failed, args.seconds), flush=True)

    print()
    print(SIMILARITY_TABLE_HEADER)
    for products in SIMILARITY_SIZES:
        first, repeated = time_similarity(args.url, products, headers)
        print(similarity_row(products, first, repeated), flush=True)


if __name__ == "__main__":
    main()
