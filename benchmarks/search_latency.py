"""Measure `/search` latency over HTTP against a running service.

Sends the same request sequentially from this process and prints one table row with
the median, p95 and p99 latencies in milliseconds. It writes nothing; copy the table
into docs/benchmarks.md with the command and the machine.

    python benchmarks/search_latency.py --url http://127.0.0.1:8000 --requests 100 \
        --query "cordless drill" --top-k 10
"""

from __future__ import annotations

import argparse
import statistics
import time

import httpx


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    rank = max(1, round(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="service base URL")
    parser.add_argument("--requests", type=int, default=100, help="measured requests")
    parser.add_argument("--warmup", type=int, default=5, help="unmeasured requests sent first")
    parser.add_argument("--query", default="cordless drill", help="query text")
    parser.add_argument("--queries-per-request", type=int, default=1,
                        help="copies of the query in each request")
    parser.add_argument("--top-k", type=int, default=10, help="top_k of each request")
    args = parser.parse_args()

    body = {"queries": [args.query] * args.queries_per_request, "top_k": args.top_k}
    latencies_ms = []
    with httpx.Client(base_url=args.url, timeout=60) as client:
        for number in range(args.warmup + args.requests):
            started = time.perf_counter()
            response = client.post("/api/v1/search", json=body)
            elapsed = (time.perf_counter() - started) * 1000
            response.raise_for_status()
            if number >= args.warmup:
                latencies_ms.append(elapsed)
        version = response.json()["index_version"]

    latencies_ms.sort()
    print("| route | queries/request | top_k | requests | p50 ms | p95 ms | p99 ms | mean ms "
          "| index version |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    print(f"| /search | {args.queries_per_request} | {args.top_k} | {args.requests} | "
          f"{statistics.median(latencies_ms):.1f} | {percentile(latencies_ms, 0.95):.1f} | "
          f"{percentile(latencies_ms, 0.99):.1f} | {statistics.fmean(latencies_ms):.1f} | {version} |")


if __name__ == "__main__":
    main()
