"""Compare the indexer's throughput with the raw encoder's on the same product texts.

Takes the first `--products` valid products of a catalog file and writes them to a CSV
file in a temporary folder. It first encodes their texts with the raw encoder: the
project's `Embedder`, with the backend and batch size that the `CATALOG_SEARCH_*`
settings give the indexer, timed after a warm-up encode of other texts. Any ONNX export
happens during that warm-up, into the temporary data folder, so the build reuses it.
Then it runs `python -m indexer build --activate` on the CSV file in a child process. The
build's time is the build report's, stored with the version: reading and validating the
catalog, loading the model, encoding, writing the FAISS and BM25 indexes, and recording
the products. It prints products per second for both and their ratio, writes nothing
into the repository and deletes the temporary folder unless `--keep` is given.

    python benchmarks/indexer_throughput.py --products 2000
    python benchmarks/indexer_throughput.py --catalog products.csv \
        --columns id=product_uid,title=product_title --products 5000
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from synthetic_catalog import DEFAULT_BASE

from indexer import versions
from indexer.catalog import ColumnMap, Product, load_catalog
from indexer.database import create_database_engine, session_factory
from indexer.embedding import load_embedder
from indexer.settings import Settings

WARM_UP_TEXTS = ["warm-up text one", "warm-up text two, a little longer than the first"]


def write_subset(products: list[Product], path: Path) -> None:
    """Write the products' id, title, description, category and brand as a CSV file."""
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(["id", "title", "description", "category", "brand"])
        for product in products:
            writer.writerow([product.id, product.title, product.description, product.category,
                             product.brand])


def time_raw_encoder(settings: Settings, texts: list[str]) -> float:
    """Return the seconds the indexer's encoder takes for `texts`, after a warm-up encode."""
    embedder = load_embedder(settings)
    embedder.encode(WARM_UP_TEXTS)
    started = time.perf_counter()
    embedder.encode(texts)
    return time.perf_counter() - started


def time_build(settings: Settings, catalog: Path) -> tuple[float, float]:
    """Run the indexer's build command; returns the build report's seconds and the wall-clock
    seconds of the command. Raises `CalledProcessError` when the build fails."""
    env = {**os.environ, "CATALOG_SEARCH_DATA_DIR": str(settings.data_dir),
           "CATALOG_SEARCH_DATABASE_URL": settings.database_url,
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    indexer = [sys.executable, "-m", "indexer"]
    subprocess.run([*indexer, "migrate"], env=env, check=True, capture_output=True)

    started = time.perf_counter()
    subprocess.run([*indexer, "build", "--catalog", str(catalog), "--activate"], env=env, check=True)
    wall_clock = time.perf_counter() - started

    engine = create_database_engine(settings.database_url)
    try:
        with session_factory(engine)() as session:
            active = versions.get_active(session)
            if active is None:
                raise RuntimeError("the build command succeeded but no version is active")
            reported = active.version.build_seconds
    finally:
        engine.dispose()
    return reported or float("nan"), wall_clock


def print_throughput(count: int, raw_seconds: float, build_seconds: float, wall_clock: float) -> None:
    """Print the raw encoder's and the build's seconds and products per second as a table."""
    print("\n| run | products | seconds | products/s |\n| --- | --- | --- | --- |")
    for label, seconds in (("raw encoder", raw_seconds), ("indexer build, report", build_seconds),
                           ("indexer build, command wall clock", wall_clock)):
        print(f"| {label} | {count:,} | {seconds:.1f} | {count / seconds:.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", type=Path, default=DEFAULT_BASE,
                        help="catalog file to take the products from (default: %(default)s)")
    parser.add_argument("--columns", type=ColumnMap.parse, default=ColumnMap(),
                        help="column mapping of the catalog, e.g. id=product_uid,title=product_title")
    parser.add_argument("--products", type=int, default=2000,
                        help="products to index and encode, at most the catalog's (default: %(default)s)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    if args.products < 1:
        parser.error("--products must be at least 1")

    folder = Path(tempfile.mkdtemp(prefix="catalog-search-indexer-"))
    settings = Settings.from_env(data_dir=folder / "var")
    try:
        products = load_catalog(args.catalog, args.columns, settings.text_template).products[:args.products]
        subset = folder / "catalog.csv"
        write_subset(products, subset)
        texts = [product.text(settings.text_template) for product in products]
        print(f"{len(texts):,} products of {args.catalog}; backend {settings.encoder_backend}, "
              f"batch size {settings.encode_batch_size}", flush=True)

        raw_seconds = time_raw_encoder(settings, texts)
        build_seconds, wall_clock = time_build(settings, subset)
    finally:
        if args.keep:
            print(f"Kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)

    print_throughput(len(texts), raw_seconds, build_seconds, wall_clock)
    print(f"\nThe build ran at {raw_seconds / build_seconds:.0%} of the raw encoder's throughput "
          f"({raw_seconds / wall_clock:.0%} by the command's wall clock).")


if __name__ == "__main__":
    main()
