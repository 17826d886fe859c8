"""Generate a seeded synthetic catalog of any size and write it as an index version.

Product `n` copies a base product chosen at random, with the id `SYN-<n>` and a colour
and a pack size added to its title. Its vector is the base text's real embedding plus
Gaussian noise, normalised again, so that neighbourhoods look like a real catalog's.
The base products come from a catalog file (default `data/sample_catalog.csv`). They are
encoded once with the configured model and the vectors are cached under
`~/.cache/catalog-search`, outside the repository.

Encoding a million texts takes hours on a CPU, so the version is written directly: the
vectors through `indexer.artifacts`, the product rows through
`indexer.versions.record_products`, as a build writes them. Settings come from the usual
`CATALOG_SEARCH_*` variables; `--data-dir` and `--database-url` override them.

    python benchmarks/synthetic_catalog.py --products 100000 --data-dir /tmp/synthetic/var --activate
"""

from __future__ import annotations

import argparse
import hashlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from sqlalchemy import update

from indexer import artifacts, catalog, hnsw_tuning, versions
from indexer.catalog import ColumnMap, load_catalog
from indexer.database import create_database_engine, migrate, session_factory
from indexer.delta import text_sha256
from indexer.embedding import Embedder, load_embedder
from indexer.lexical import LexicalIndex
from indexer.locking import build_lock
from indexer.schema import IndexVersion
from indexer.settings import Settings

REPOSITORY = Path(__file__).resolve().parents[1]
DEFAULT_BASE = REPOSITORY / "data" / "sample_catalog.csv"

CHUNK = 50_000
"""Products generated, indexed and recorded at a time. Each chunk draws from its own
generator, seeded with the seed and the chunk's number."""

DEFAULT_NOISE = 0.025
"""Standard deviation of the noise per dimension. At 384 dimensions the noise has a norm
of about 0.49, so a product's vector has a cosine of about 0.9 with its base title's."""

COLOURS = ("Black", "White", "Red", "Blue", "Green", "Yellow", "Orange", "Grey", "Silver",
           "Bronze", "Brass", "Graphite")
PACK_SIZES = (1, 2, 4, 6, 10, 12, 25, 50, 100)
EXACT = artifacts.IndexChoice("flat")


@dataclass(frozen=True)
class BaseCatalog:
    """Products whose texts were really encoded, and their vectors of shape (n, d), float32."""

    path: Path
    checksum: str
    products: list[catalog.Product]
    vectors: np.ndarray


@dataclass(frozen=True)
class Chunk:
    """Consecutive synthetic products from `first_position` on, with text hashes and vectors."""

    first_position: int
    products: list[catalog.Product]
    hashes: list[str]
    vectors: np.ndarray


@dataclass(frozen=True)
class WrittenVersion:
    """A synthetic version written into a data folder."""

    version: int
    path: Path
    product_count: int
    seconds: float


def default_cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "catalog-search"


def load_base(path: Path, columns: ColumnMap, embedder: Embedder, template: str,
              cache_dir: Path) -> BaseCatalog:
    """Read the valid products of a catalog file and their vectors, encoding them on a cache miss.

    The cache file is named after the SHA-256 of the model fingerprint and the texts, so a
    changed file or model is encoded again.
    """
    loaded = load_catalog(path, columns, template)
    texts = [product.text(template) for product in loaded.products]
    key = hashlib.sha256("\n".join([embedder.fingerprint, *texts]).encode()).hexdigest()
    cached = cache_dir / f"base-vectors-{key[:24]}.npy"
    if cached.is_file():
        vectors = np.load(cached)
    else:
        print(f"Encoding {len(texts)} base texts of {path}; the vectors are cached in {cached}")
        vectors = embedder.encode(texts, progress=True)
        cache_dir.mkdir(parents=True, exist_ok=True)
        np.save(cached, vectors)
    return BaseCatalog(path, loaded.checksum, loaded.products, vectors)


def generate(base: BaseCatalog, count: int, seed: int, noise: float, template: str) -> Iterator[Chunk]:
    """Yield `count` synthetic products in chunks of `CHUNK`, the same ones for the same arguments."""
    for first in range(0, count, CHUNK):
        size = min(CHUNK, count - first)
        random = np.random.default_rng([seed, first // CHUNK])
        chosen = random.integers(0, len(base.products), size)
        colours = random.integers(0, len(COLOURS), size)
        packs = random.integers(0, len(PACK_SIZES), size)

        products = [
            _variant(base.products[int(b)], first + offset, int(b), COLOURS[c], PACK_SIZES[p])
            for offset, (b, c, p) in enumerate(zip(chosen, colours, packs, strict=True))
        ]
        vectors = base.vectors[chosen] + random.standard_normal(
            (size, base.vectors.shape[1]), dtype=np.float32) * noise
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        yield Chunk(first, products, [text_sha256(p.text(template)) for p in products], vectors)


def _variant(source: catalog.Product, position: int, base_row: int, colour: str,
             pack: int) -> catalog.Product:
    # A base catalog without category or brand (titles only) gets stable invented ones.
    return catalog.Product(
        id=f"SYN-{position:07d}",
        title=f"{source.title}, {colour}, pack of {pack}",
        description=source.description,
        category=source.category or f"Category {base_row % 50:02d}",
        brand=source.brand or f"Brand {base_row % 300:03d}",
        attributes={**source.attributes, "colour": colour, "pack_size": pack},
    )


def write_synthetic_version(settings: Settings, embedder: Embedder, base: BaseCatalog, count: int,
                            seed: int, noise: float, activate: bool,
                            index_choice: artifacts.IndexChoice = EXACT) -> WrittenVersion:
    """Write `count` synthetic products as a new ready version, under the build lock.

    The version stays `building` until its folder and every product row are written,
    as in a build. `index_choice` is the exact index by default, so that memory compares
    like with like at every size; pass `settings.index_choice` to write the index a build
    of that size would write (an HNSW build measures its efSearch as a build does).
    """
    started = time.perf_counter()
    engine = create_database_engine(settings.database_url)
    migrate(engine)
    sessions = session_factory(engine)
    try:
        with build_lock(engine, settings.data_dir):
            with sessions.begin() as session:
                record = IndexVersion(
                    status="building", created_at=datetime.now(UTC), model_name=embedder.name,
                    model_fingerprint=embedder.fingerprint, dimension=embedder.dimension,
                    source_path=f"synthetic from {base.path} (seed {seed}, noise {noise})",
                    source_checksum=base.checksum, new_count=count, encoded_count=0)
                session.add(record)
                session.flush()
                version = record.id

            vectors = np.empty((count, embedder.dimension), dtype=np.float32)
            texts: list[str] = []
            for chunk in generate(base, count, seed, noise, settings.text_template):
                vectors[chunk.first_position:chunk.first_position + len(chunk.products)] = chunk.vectors
                texts.extend(product.text(settings.text_template) for product in chunk.products)
                versions.record_products(sessions, version, chunk.products, chunk.hashes,
                                         first_position=chunk.first_position)
                print(f"  {chunk.first_position + len(chunk.products):,} of {count:,} products written")

            kind = index_choice.resolve(count)
            print(f"  building the {kind} index of {count:,} vectors", flush=True)
            text_queries = None
            if kind == "hnsw":
                text_queries = embedder.encode(hnsw_tuning.query_like_texts(texts))
            index, description = artifacts.build_index(vectors, index_choice, text_queries)
            del vectors

            manifest = {
                **embedder.manifest_sections(),
                "index": description,
                "products": {"count": count, "skipped": 0, "truncated": 0, "encoded": 0, "reused": 0},
                "synthetic": {"base_catalog": str(base.path), "base_sha256": base.checksum,
                              "seed": seed, "noise": noise, "text_template": settings.text_template},
            }
            lexical_index = LexicalIndex.build(texts, settings.lexical_language)
            path, checksum = artifacts.write_version(settings.index_dir, version, index, lexical_index,
                                                     manifest)
            seconds = time.perf_counter() - started
            with sessions.begin() as session:
                session.execute(update(IndexVersion).where(IndexVersion.id == version).values(
                    status="ready", finished_at=datetime.now(UTC), index_type=description["type"],
                    product_count=count, skipped_count=0, truncated_count=0,
                    artifact_path=str(path.resolve()), artifact_checksum=checksum, build_seconds=seconds))
                if activate:
                    versions.activate(session, version, source="benchmark")
    finally:
        engine.dispose()
    return WrittenVersion(version, path, count, seconds)


def query_texts(base: BaseCatalog, count: int, seed: int) -> list[str]:
    """Return up to `count` distinct queries: the first four words of random base titles,
    lower-cased. Distinct queries keep the service's embedding cache from serving them."""
    return hnsw_tuning.query_like_texts([product.title for product in base.products], count, seed)


def add_base_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options that choose the base catalog, the seed and the noise."""
    parser.add_argument("--base-catalog", type=Path, default=DEFAULT_BASE,
                        help="catalog file whose products are encoded and copied (default: %(default)s)")
    parser.add_argument("--columns", type=ColumnMap.parse, default=ColumnMap(),
                        help="column mapping of the base catalog, e.g. id=product_uid,title=product_title")
    parser.add_argument("--seed", type=int, default=7, help="random seed (default: %(default)s)")
    parser.add_argument("--noise", type=float, default=DEFAULT_NOISE,
                        help="noise per vector dimension, standard deviation (default: %(default)s)")
    parser.add_argument("--cache-dir", type=Path, default=default_cache_dir(),
                        help="folder for the base vectors (default: %(default)s)")


def database_override(url: str) -> dict[str, str]:
    """Return the settings override for a `--database-url` option; empty keeps the environment's."""
    return {"database_url": url} if url else {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, required=True, help="number of products")
    parser.add_argument("--data-dir", type=Path, required=True,
                        help="data folder for the version folder, and for the SQLite file "
                             "unless --database-url is given")
    parser.add_argument("--database-url", default="", help="SQLAlchemy URL of the metadata database")
    parser.add_argument("--activate", action="store_true", help="make the new version the active one")
    parser.add_argument("--index-type", choices=("flat", "build"), default="flat",
                        help="flat: the exact index at every size; build: the index a build of this "
                             "size writes, from the CATALOG_SEARCH_INDEX_TYPE and HNSW settings "
                             "(default: %(default)s)")
    add_base_arguments(parser)
    args = parser.parse_args()

    if args.products < 1:
        parser.error("--products must be at least 1")
    settings = Settings.from_env(data_dir=args.data_dir, **database_override(args.database_url))
    embedder = load_embedder(settings)
    base = load_base(args.base_catalog, args.columns, embedder, settings.text_template, args.cache_dir)
    choice = settings.index_choice if args.index_type == "build" else EXACT
    written = write_synthetic_version(settings, embedder, base, args.products, args.seed, args.noise,
                                      args.activate, choice)
    print(f"Wrote version {written.version} with {written.product_count:,} products to {written.path} "
          f"in {written.seconds:.1f} s")


if __name__ == "__main__":
    main()
