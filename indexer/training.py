"""Fine-tuning on a shop's relevance judgments, recorded as a new model version.

`python -m indexer train --judgments FILE` reads (query, product id, graded relevance)
rows, splits them by query into a training part and an evaluation part that training
does not use, and fine-tunes the current model with sentence-transformers' trainer and
MultipleNegativesRankingLoss: each query's judged-relevant product is its positive, the
other products in the batch its negatives, and with `hard_negatives` a product that the
current model ranks high but the judgments do not call relevant is added. Then it scores
the model it started from and the new one on the evaluation part (nDCG@10 and
Recall@100, dense and hybrid, through the service's own search) and writes the card.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import random
import shutil
import time
import uuid
import zlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import structlog
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from indexer import artifacts, models, versions
from indexer.catalog import ColumnMap, load_catalog
from indexer.embedding import Embedder, fingerprint_model
from indexer.errors import CatalogError, JudgmentsError
from indexer.lexical import LexicalIndex
from indexer.settings import Settings
from indexer.versions import StoredProducts
from service import evaluation

log = structlog.get_logger(__name__)

EVALUATED_MODES = ("dense", "hybrid")
"""Lexical ranking does not depend on the model, so the card leaves it out."""

HARD_NEGATIVE_DEPTH = 30
"""Products of the current model's ranking searched for a hard negative of each pair."""

LIBRARIES = ("sentence-transformers", "transformers", "torch", "datasets", "accelerate", "faiss-cpu")

JUDGMENT_FIELDS = ("query", "query_id", "product_id", "relevance")
"""Fields of a judgments file; `--judgment-columns` maps them to other column names. A file
has `query`, or `query_id` together with a queries file of `query_id,query` rows."""


@dataclass(frozen=True)
class Judgment:
    query: str
    product_id: str
    relevance: float


@dataclass(frozen=True)
class TrainOptions:
    """Hyper-parameters and the split; `max_steps` caps the steps of all epochs together."""

    epochs: int = 1
    max_steps: int | None = None
    """Steps to train; overrides `epochs`, repeating the pairs when there are more steps
    than batches."""
    batch_size: int = 64
    learning_rate: float = 2e-5
    warmup_ratio: float = 0.1
    seed: int = 42
    eval_fraction: float = 0.2
    min_relevance: float | None = None
    """Relevance from which a judged product is a positive (and counts for Recall@100);
    None takes the top quarter of the file's grade range."""
    hard_negatives: bool = False

    def check(self) -> None:
        """Raise `JudgmentsError` naming the first option out of range."""
        if self.epochs < 1:
            raise JudgmentsError("--epochs must be at least 1")
        if self.max_steps is not None and self.max_steps < 1:
            raise JudgmentsError("--max-steps must be at least 1")
        if self.batch_size < 2:
            raise JudgmentsError("--batch-size must be at least 2: in-batch negatives need a neighbour")
        if not 0 < self.learning_rate < 1:
            raise JudgmentsError("--learning-rate must be greater than 0 and less than 1")
        if not 0 < self.eval_fraction < 1:
            raise JudgmentsError("--eval-fraction must be greater than 0 and less than 1")


@dataclass(frozen=True)
class TrainRequest:
    judgments: Path
    queries: Path | None = None
    columns: dict[str, str] = field(default_factory=dict)
    products: Path | None = None
    """Catalog file of the judged products; None reads the active version's products."""
    product_columns: ColumnMap = field(default_factory=ColumnMap)
    base_model_version: int | None = None
    """Model version to start from; None starts from the active version's model."""
    options: TrainOptions = field(default_factory=TrainOptions)
    progress: bool = False


@dataclass(frozen=True)
class Catalog:
    """The products that judgments point at, in one order, with their embedded texts."""

    products: StoredProducts
    texts: list[str]
    source: str
    vectors_of: Callable[[Embedder], np.ndarray | None] = lambda embedder: None
    """Stored vectors of the texts for a model, when a version contains them."""


@dataclass(frozen=True)
class TrainingReport:
    model_version: int
    name: str
    folder: Path
    card: dict[str, Any]


def parse_judgment_columns(spec: str) -> dict[str, str]:
    """Parse `field=column,...`; raises `JudgmentsError` naming an unknown field."""
    mapping: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, _, column = item.partition("=")
        if name.strip() not in JUDGMENT_FIELDS or not column.strip():
            raise JudgmentsError(f"invalid judgment column mapping {item!r}: use FIELD=COLUMN with "
                                 f"FIELD one of {', '.join(JUDGMENT_FIELDS)}")
        mapping[name.strip()] = column.strip()
    return mapping


def read_judgments(path: Path, queries: Path | None = None,
                   columns: dict[str, str] | None = None) -> list[Judgment]:
    """Read a CSV of judgments; raises `JudgmentsError` naming the file, line and column."""
    column = {name: (columns or {}).get(name, name) for name in JUDGMENT_FIELDS}
    query_texts = _read_query_texts(queries) if queries else None
    query_column = column["query_id"] if query_texts is not None else column["query"]
    rows = _read_csv(path, [query_column, column["product_id"], column["relevance"]])
    judgments = []
    for line, row in rows:
        query = row[query_column].strip()
        if query_texts is not None:
            if query not in query_texts:
                raise JudgmentsError(f"{path} line {line}: query id {query!r} is not in {queries}")
            query = query_texts[query]
        try:
            relevance = float(row[column["relevance"]])
        except ValueError:
            raise JudgmentsError(f"{path} line {line}: {column['relevance']} must be a number, "
                                 f"got {row[column['relevance']]!r}") from None
        product = row[column["product_id"]].strip()
        if not query or not product or not math.isfinite(relevance):
            raise JudgmentsError(f"{path} line {line}: a query, a product id and a finite "
                                 "relevance are required")
        judgments.append(Judgment(query, product, relevance))
    if not judgments:
        raise JudgmentsError(f"{path} has no judgments")
    return judgments


def _read_query_texts(path: Path) -> dict[str, str]:
    return {row["query_id"].strip(): row["query"] for _, row in _read_csv(path, ["query_id", "query"])}


def _read_csv(path: Path, needed: list[str]) -> list[tuple[int, dict[str, str]]]:
    try:
        with path.open(newline="", encoding="utf-8") as stream:
            reader = csv.DictReader(stream)
            missing = [name for name in needed if name not in (reader.fieldnames or [])]
            if missing:
                raise JudgmentsError(f"{path} lacks the column(s) {', '.join(missing)}; it has "
                                     f"{', '.join(reader.fieldnames or []) or 'no header'}")
            rows = []
            for number, row in enumerate(reader, start=2):
                if None in row or any(row.get(name) is None for name in needed):
                    raise JudgmentsError(f"{path} line {number}: expected "
                                         f"{len(reader.fieldnames or [])} fields as in the header")
                rows.append((number, row))
            return rows
    except csv.Error as error:
        raise JudgmentsError(f"{path} is not valid CSV: {error}") from error
    except OSError as error:
        raise JudgmentsError(f"cannot read {path}: {error.strerror}") from error
    except UnicodeDecodeError as error:
        raise JudgmentsError(f"{path} is not UTF-8 text ({error.reason})") from error


def default_min_relevance(judgments: Sequence[Judgment]) -> float:
    """Return the lowest relevance of the top quarter of the grade range: 2.5 on a 1 to 3 scale."""
    grades = [judgment.relevance for judgment in judgments]
    low, high = min(grades), max(grades)
    return low + 0.75 * (high - low)


def split_queries(queries: Sequence[str], eval_fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """Split the distinct queries into training and evaluation parts, the same way for the
    same queries and seed; each part gets at least one query."""
    unique = sorted(set(queries))
    if len(unique) < 2:
        raise JudgmentsError("the judgments need at least two distinct queries: one to train "
                             "on and one to evaluate")
    random.Random(seed).shuffle(unique)
    held_out = min(max(1, round(len(unique) * eval_fraction)), len(unique) - 1)
    return sorted(unique[held_out:]), sorted(unique[:held_out])


def training_pairs(judgments: Sequence[Judgment], queries: set[str], texts: dict[str, str],
                   min_relevance: float) -> list[tuple[str, str]]:
    """Return (query, product text) for each judged-relevant product of the given queries."""
    return [(j.query, texts[j.product_id]) for j in judgments
            if j.query in queries and j.relevance >= min_relevance and j.product_id in texts]


def mine_hard_negatives(pairs: Sequence[tuple[str, str]], query_vectors: dict[str, np.ndarray],
                        index: faiss.Index, texts: Sequence[str],
                        positives: dict[str, set[str]]) -> list[str]:
    """For each pair, return the highest-ranked product text that is not a positive of its
    query, searched among the current model's top `HARD_NEGATIVE_DEPTH`."""
    negatives = []
    for query, positive in pairs:
        _, rows = index.search(query_vectors[query].reshape(1, -1), HARD_NEGATIVE_DEPTH)
        candidates = [texts[row] for row in rows[0]
                      if row >= 0 and texts[row] != positive and texts[row] not in positives[query]]
        # A catalog this small has nothing ranked outside the positives: a random product then.
        negatives.append(candidates[0] if candidates else texts[zlib.crc32(query.encode()) % len(texts)])
    return negatives


def estimate_step_seconds(embedder: Embedder, pairs: Sequence[tuple[str, str]], batch_size: int) -> float:
    """Estimate one training step from a timed forward pass over one batch of pairs: the
    backward pass costs about twice the forward pass."""
    sample = pairs[:batch_size]
    texts = [query for query, _ in sample] + [text for _, text in sample]
    started = time.perf_counter()
    embedder.encode(texts)
    return 3 * (time.perf_counter() - started)


def planned_steps(pair_count: int, options: TrainOptions) -> int:
    """Return the steps the trainer takes: `max_steps` when given, which overrides the
    epochs and repeats the pairs as needed, else one step per batch of every epoch."""
    return options.max_steps or math.ceil(pair_count / options.batch_size) * options.epochs


def fine_tune(base: Path, pairs: Sequence[tuple[str, str]], negatives: Sequence[str] | None,
              options: TrainOptions, output: Path, progress: bool) -> int:
    """Fine-tune the model in `base` on the pairs and save it into `output`; returns the steps."""
    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    try:  # sentence-transformers 6 moved these; 3 to 5 have only the old modules.
        from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
        from sentence_transformers.sentence_transformer.training_args import BatchSamplers
    except ImportError:
        from sentence_transformers.losses import MultipleNegativesRankingLoss  # type: ignore[no-redef]
        from sentence_transformers.training_args import BatchSamplers  # type: ignore[no-redef]
    from transformers import set_seed

    set_seed(options.seed)
    model = SentenceTransformer(str(base), device="cpu", local_files_only=True)
    columns: dict[str, list[str]] = {"anchor": [query for query, _ in pairs],
                                     "positive": [text for _, text in pairs]}
    if negatives is not None:
        columns["negative"] = list(negatives)
    checkpoints = output.parent / f".checkpoints-{uuid.uuid4().hex[:8]}"
    arguments = SentenceTransformerTrainingArguments(
        output_dir=str(checkpoints),
        num_train_epochs=options.epochs, max_steps=options.max_steps or -1,
        per_device_train_batch_size=options.batch_size, learning_rate=options.learning_rate,
        # Whole steps: transformers 5 deprecates `warmup_ratio`, and 4 takes no fraction here.
        warmup_steps=int(options.warmup_ratio * planned_steps(len(pairs), options)),
        seed=options.seed, data_seed=options.seed,
        # A query judged relevant to two products must not meet itself as a negative.
        batch_sampler=BatchSamplers.NO_DUPLICATES, save_strategy="no", logging_strategy="no",
        report_to="none", disable_tqdm=not progress, use_cpu=True,
    )
    trainer = SentenceTransformerTrainer(model=model, args=arguments,
                                         train_dataset=Dataset.from_dict(columns),
                                         loss=MultipleNegativesRankingLoss(model))
    try:
        result = trainer.train()
    finally:
        shutil.rmtree(checkpoints, ignore_errors=True)
    model.save(str(output))
    return int(result.global_step)


def active_catalog(session: Session, settings: Settings) -> Catalog:
    """Return the active version's products, with its stored vectors for the model it was built with."""
    active = versions.get_active(session)
    if active is None:
        raise CatalogError("no index version is active: pass --products with the catalog file "
                           "that the judgments refer to")
    record = active.version
    folder = settings.index_dir / artifacts.version_folder_name(record.id)
    loaded = artifacts.read_version(folder, record.id, record.artifact_checksum or "")
    template = loaded.manifest["catalog"]["text_template"]
    products = versions.load_products(session, record.id)
    texts = versions.load_texts(session, record.id, template)

    def vectors_of(embedder: Embedder) -> np.ndarray | None:
        if embedder.fingerprint != record.model_fingerprint:
            return None
        return loaded.index.reconstruct_n(0, loaded.index.ntotal)

    return Catalog(products, texts, f"index version {record.id}", vectors_of)


def file_catalog(path: Path, columns: ColumnMap, settings: Settings) -> Catalog:
    loaded = load_catalog(path, columns, settings.text_template)
    if not loaded.products:
        raise CatalogError(f"{path} has no valid products")
    products = StoredProducts([p.id for p in loaded.products], [p.title for p in loaded.products],
                              [p.category for p in loaded.products], [p.brand for p in loaded.products])
    return Catalog(products, [p.text(settings.text_template) for p in loaded.products], str(path))


def data_checksum(request: TrainRequest, catalog: Catalog) -> str:
    """SHA-256 over the judgment files and the product texts, in order."""
    digest = hashlib.sha256()
    for path in filter(None, (request.judgments, request.queries)):
        digest.update(path.read_bytes())
    for product_id, text in zip(catalog.products.ids, catalog.texts, strict=True):
        digest.update(f"{product_id}\0{text}\0".encode())
    return digest.hexdigest()


def library_versions() -> dict[str, str]:
    found = {}
    for name in LIBRARIES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def train(request: TrainRequest, settings: Settings, engine: Engine, sessions: sessionmaker[Session],
          say: Callable[[str], None] = print) -> TrainingReport:
    """Fine-tune, evaluate and record a new model version; a failure marks it `failed`.

    Raises `JudgmentsError` or `CatalogError` before anything is recorded when the inputs
    are unusable.
    """
    options = request.options
    options.check()
    with sessions() as session:
        choice = (models.ready_choice(session, settings, request.base_model_version)
                  if request.base_model_version is not None
                  else models.choose_for_build(session, settings, None))
        catalog = (file_catalog(request.products, request.product_columns, settings) if request.products
                   else active_catalog(session, settings))
    judgments = read_judgments(request.judgments, request.queries, request.columns)
    min_relevance = (options.min_relevance if options.min_relevance is not None
                     else default_min_relevance(judgments))
    texts = dict(zip(catalog.products.ids, catalog.texts, strict=True))
    unknown = sorted({j.product_id for j in judgments if j.product_id not in texts})
    train_queries, eval_queries = split_queries([j.query for j in judgments], options.eval_fraction,
                                                options.seed)
    pairs = training_pairs(judgments, set(train_queries), texts, min_relevance)
    if len(pairs) < 2:
        raise JudgmentsError(f"only {len(pairs)} training pair(s) have relevance of at least "
                             f"{min_relevance:g} and a product in {catalog.source}; lower "
                             "--min-relevance or check the product ids")

    base = models.load_model(settings, choice)
    steps = planned_steps(len(pairs), options)
    step_seconds = estimate_step_seconds(base, pairs, options.batch_size)
    say(f"Training {base.name} on {len(pairs)} pairs from {len(train_queries)} queries "
        f"({len(eval_queries)} queries held out, {len(unknown)} judged product ids not in "
        f"{catalog.source}): {steps} steps of {options.batch_size}, "
        f"about {steps * step_seconds / 60:.1f} min")

    checksum = data_checksum(request, catalog)
    model_version = models.start_model_version(sessions, base, checksum)
    folder = models.model_folder(settings, model_version)
    temporary = folder.parent / f".tmp-{folder.name}-{uuid.uuid4().hex[:8]}"
    log.info("training_started", model_version=model_version, base_model=base.name,
             pairs=len(pairs), steps=steps)
    try:
        started = time.perf_counter()
        base_vectors = catalog.vectors_of(base)
        if base_vectors is None:
            base_vectors = base.encode(catalog.texts, progress=request.progress)
        negatives = None
        if options.hard_negatives:
            negatives = _hard_negatives(base, base_vectors, pairs, judgments, catalog, min_relevance)
        preparation_seconds = time.perf_counter() - started
        temporary.parent.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        steps = fine_tune(choice.path, pairs, negatives, options, temporary, request.progress)
        training_seconds = time.perf_counter() - started
        temporary.rename(folder)

        say("Evaluating the model it started from and the new one on the held-out queries")
        started = time.perf_counter()
        with sessions() as session:
            name = models.get_model_version(session, model_version).name
        trained = models.load_model(settings, models.ModelChoice(folder, model_version, name))
        results = _evaluate(base, base_vectors, trained, judgments, set(eval_queries), catalog,
                            min_relevance, settings, request.progress)
        card = {
            "model_version": model_version,
            "fingerprint": trained.fingerprint,
            "base_model": {"name": base.name, "fingerprint": base.fingerprint,
                           "model_version": base.model_version, "path": str(choice.path)},
            "data": {"judgments": str(request.judgments),
                     "queries": str(request.queries) if request.queries else None,
                     "products": catalog.source, "sha256": checksum, "judgments_count": len(judgments),
                     "unknown_product_ids": len(unknown), "min_relevance": min_relevance},
            "split": {"by": "query", "seed": options.seed, "eval_fraction": options.eval_fraction,
                      "train_queries": len(train_queries), "eval_queries": len(eval_queries),
                      "train_pairs": len(pairs),
                      "eval_queries_sha256": hashlib.sha256("\n".join(eval_queries).encode()).hexdigest()},
            "hyperparameters": {**asdict(options), "min_relevance": min_relevance, "steps": steps,
                                "loss": "MultipleNegativesRankingLoss"},
            "training_seconds": round(training_seconds, 1),
            "preparation_seconds": round(preparation_seconds, 1),
            "evaluation_seconds": round(time.perf_counter() - started, 1),
            "libraries": library_versions(),
            "evaluation": results,
        }
        (folder / models.CARD_FILE).write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
        models.finish_model_version(sessions, model_version, folder, fingerprint_model(folder), card,
                                    training_seconds)
    except BaseException as error:
        shutil.rmtree(temporary, ignore_errors=True)
        shutil.rmtree(folder, ignore_errors=True)
        models.fail_model_version(sessions, model_version, error)
        log.error("training_failed", model_version=model_version, error=repr(error))
        raise
    log.info("training_finished", model_version=model_version, steps=steps,
             duration_ms=round(training_seconds * 1000))
    return TrainingReport(model_version, name, folder, card)


def _hard_negatives(base: Embedder, base_vectors: np.ndarray, pairs: Sequence[tuple[str, str]],
                    judgments: Sequence[Judgment], catalog: Catalog, min_relevance: float) -> list[str]:
    index = faiss.IndexFlatIP(base_vectors.shape[1])
    index.add(np.ascontiguousarray(base_vectors, dtype=np.float32))
    texts = dict(zip(catalog.products.ids, catalog.texts, strict=True))
    positives: dict[str, set[str]] = {}
    for j in judgments:
        if j.relevance >= min_relevance and j.product_id in texts:
            positives.setdefault(j.query, set()).add(texts[j.product_id])
    queries = sorted({query for query, _ in pairs})
    vectors = dict(zip(queries, base.encode(queries), strict=True))
    return mine_hard_negatives(pairs, vectors, index, catalog.texts, positives)


def _evaluate(base: Embedder, base_vectors: np.ndarray, trained: Embedder,
              judgments: Sequence[Judgment], eval_queries: set[str], catalog: Catalog,
              min_relevance: float, settings: Settings, progress: bool) -> dict[str, Any]:
    """Score both models on the held-out queries over the whole catalog, dense and hybrid."""
    low = min(j.relevance for j in judgments)
    held_out = [j for j in judgments if j.query in eval_queries]
    judged = evaluation.judgments_from(
        ((j.query, j.product_id, j.relevance - low, j.relevance) for j in held_out), min_relevance)
    queries = [(query, query) for query in sorted(eval_queries)]
    lexical = LexicalIndex.build(catalog.texts, settings.lexical_language)
    scores = {}
    for label, model, vectors in (("before", base, base_vectors), ("after", trained, None)):
        if vectors is None:
            vectors = model.encode(catalog.texts, progress=progress)
        served = evaluation.catalog_in_memory(model, vectors, catalog.products, lexical)
        found = evaluation.evaluate(model, served, queries, judged, settings, EVALUATED_MODES)
        scores[label] = {mode: result.as_dict() for mode, result in found.items()}
    return {"queries": len(queries), "relevant_from": min_relevance, **scores,
            "base_fingerprint": base.fingerprint}
