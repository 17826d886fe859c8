"""Compare the PyTorch, ONNX Runtime and int8 ONNX encoders in one process: query latency, throughput.

Alternates the backends round by round, so that load from other processes affects both
alike, and prints one table row per backend. It writes nothing but the exported ONNX
model under `--onnx-dir`.

    python benchmarks/encoder_speed.py --catalog data/sample_catalog.csv --onnx-dir /tmp/onnx
"""

from __future__ import annotations

import argparse
import csv
import statistics
import time
from pathlib import Path

import numpy as np

from indexer.embedding import Embedder
from indexer.settings import Settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", type=Path, required=True, help="CSV with a title column")
    parser.add_argument("--title-column", default="title", help="column of the product texts")
    parser.add_argument("--onnx-dir", type=Path, required=True, help="folder for the exported model")
    parser.add_argument("--rounds", type=int, default=5, help="measured rounds per backend")
    parser.add_argument("--queries", type=int, default=50, help="single-query encodes per round")
    parser.add_argument("--products", type=int, default=512, help="product texts per round")
    args = parser.parse_args()

    with args.catalog.open(newline="", encoding="utf-8") as stream:
        titles = [row[args.title_column] for row in csv.DictReader(stream)][:args.products]
    model = Settings().model
    encoders = {backend: Embedder(model, backend=backend, onnx_dir=args.onnx_dir)
                for backend in ("torch", "onnx", "onnx-int8")}
    reference = encoders["torch"].encode(titles[:64])
    differences = {name: np.abs(encoder.encode(titles[:64]) - reference).max()
                   for name, encoder in encoders.items()}

    latencies: dict[str, list[float]] = {name: [] for name in encoders}
    throughputs: dict[str, list[float]] = {name: [] for name in encoders}
    for _ in range(args.rounds):
        for name, encoder in encoders.items():
            for number in range(args.queries):
                started = time.perf_counter()
                encoder.encode([f"cordless drill {number}"])
                latencies[name].append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            encoder.encode(titles)
            throughputs[name].append(len(titles) / (time.perf_counter() - started))

    print("| backend | one query p50 ms | one query p95 ms | products per second (median) "
          "| max difference from torch over 64 titles |")
    print("| --- | --- | --- | --- | --- |")
    for name in encoders:
        ordered = sorted(latencies[name])
        p95 = ordered[max(0, round(0.95 * len(ordered)) - 1)]
        print(f"| {name} | {statistics.median(ordered):.1f} | {p95:.1f} | "
              f"{statistics.median(throughputs[name]):.0f} | {differences[name]:.1e} |")


if __name__ == "__main__":
    main()
