"""Measure the largest `/similarity` request that the default request limits allow.

Each request posts 64 queries and 1,000 ad-hoc products of 2,000 characters, all texts
new to the service so that its embedding cache cannot serve them, and prints one table
row with the time of each request in seconds. The body is about 2 MB, under the 4 MiB
limit. It writes nothing; copy the table into docs/benchmarks.md with the command and the
machine.

    python benchmarks/largest_request.py --url http://127.0.0.1:8000 --requests 3
"""

from __future__ import annotations

import argparse
import random
import time
import uuid

import httpx

WORDS = ("saw", "drill", "hammer", "blade", "cordless", "steel", "wood", "battery", "clamp", "level",
         "wrench", "socket", "tape", "measure", "grinder", "sander", "chisel", "router", "bit", "nail")


def text(chars: int, rng: random.Random) -> str:
    """Return a text of exactly `chars` characters: a unique prefix, then random tool words."""
    words = [uuid.UUID(int=rng.getrandbits(128)).hex]
    while sum(len(word) + 1 for word in words) < chars:
        words.append(rng.choice(WORDS))
    return " ".join(words)[:chars]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="service base URL")
    parser.add_argument("--requests", type=int, default=3, help="measured requests")
    parser.add_argument("--queries", type=int, default=64, help="queries per request")
    parser.add_argument("--products", type=int, default=1000, help="ad-hoc products per request")
    parser.add_argument("--chars", type=int, default=2000, help="characters per query and product")
    parser.add_argument("--api-key", default="", help="X-API-Key to send when search needs a key")
    args = parser.parse_args()

    rng = random.Random(20261204)
    headers = {"X-API-Key": args.api_key} if args.api_key else {}
    seconds = []
    with httpx.Client(base_url=args.url, timeout=600, headers=headers) as client:
        for _ in range(args.requests):
            body = {"text": [text(args.chars, rng) for _ in range(args.queries)],
                    "products": [text(args.chars, rng) for _ in range(args.products)], "top_k": 100}
            started = time.perf_counter()
            response = client.post("/api/v1/similarity", json=body)
            seconds.append(time.perf_counter() - started)
            response.raise_for_status()

    print("| queries | products | characters each | requests | seconds per request |")
    print("| --- | --- | --- | --- | --- |")
    print(f"| {args.queries} | {args.products} | {args.chars} | {args.requests} | "
          f"{', '.join(f'{value:.1f}' for value in seconds)} |")


if __name__ == "__main__":
    main()
