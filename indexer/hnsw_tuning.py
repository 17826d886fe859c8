"""The HNSW search depth (efSearch) a build measures for its own vectors.

Recall of an HNSW graph depends on the vectors, the product count and M, so a fixed
efSearch is either wasted on small catalogs or short of the target on large ones. A build
therefore measures recall@10 against exact search on sample queries and keeps the
smallest efSearch on a ladder that reaches the target.

The sample queries are stored vectors moved by Gaussian noise and normalised again. A
query equal to a stored vector would find itself at once and overstate recall, and so
did noise of norm 1: on the 54,667 Home Depot titles (M=32) it measured recall@10 0.985
at efSearch 16, where 1,000 real queries got 0.909. With noise of norm 2 the sample's
recall was within 0.015 of the real queries' at efSearch 16 to 128 in two builds, and
200 queries vary about that much, so a target of 0.98 leaves little margin.

Noise alone overstated recall on a synthetic catalog of 1,000,000 products made of 54,667
titles with about 18 near copies each: 0.98 at efSearch 256, where queries made of the
first words of titles got 0.93. A query of a few words lands beside a group of near
copies whose scores almost tie, which noise in random directions rarely does. So a build
that has the product texts also encodes short queries made of their first words, and
each efSearch counts with the lower recall of the two samples.

Recall varies from query to query, so a sample's mean varies from sample to sample: on
that catalog, three sets of 200 title queries measured 0.967, 0.986 and 0.987 at
efSearch 1024, and 1,000 queries 0.981. A build therefore compares a lower bound, the
sample's mean recall minus two standard errors, and draws up to 1,000 text queries.
Samples and the queries a service receives still differ. The build's own text sample
measured 0.990 at efSearch 1024 where the 1,000 title queries got 0.981. On the Home
Depot titles, the noisy sample and real queries differed by up to 0.015. So the bound
must reach the target plus `SAMPLE_MARGIN`.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import faiss
import numpy as np
import structlog

log = structlog.get_logger(__name__)

EF_SEARCH_LADDER = (16, 32, 64, 128, 256, 512, 1024, 2048)
"""efSearch values tried, smallest first."""

SAMPLE_QUERIES = 200
"""Noisy copies of stored vectors in a build's first sample."""
TEXT_SAMPLE_QUERIES = 1000
"""Short text queries in a build's second sample, at most."""
STANDARD_ERRORS = 2.0
"""Standard errors of the mean that the recall bound keeps below the measured mean."""
SAMPLE_MARGIN = 0.01
"""Recall that a build's samples must exceed the target by, for the difference between
its samples and real queries."""
NOISE_NORM = 2.0
"""Expected norm of the noise added to a stored vector to make a sample query."""
RECALL_K = 10
SAMPLE_SEED = 0
"""Fixed, so that two builds of the same vectors measure the same recall."""
QUERY_WORDS = 4
"""Words of a product text that make one short sample query."""

UNMEASURED_EF_SEARCH = 128
"""efSearch of versions built before builds measured it; their index files carry FAISS's
default of 16, which is far too low for recall@10 0.98."""


@dataclass(frozen=True)
class EfSearchChoice:
    """The efSearch a build chose, its measured recall@10 and the recall of every value tried."""

    ef_search: int
    recall_at_10: float
    tried: dict[int, float]

    def describe(self, target: float, queries: int) -> dict[str, object]:
        """Return the manifest fields of this choice."""
        return {"ef_search": self.ef_search, "recall_at_10": round(self.recall_at_10, 4),
                "recall_target": target, "sample_recall_required": required_sample_recall(target),
                "recall_queries": queries,
                "recall_by_ef_search": {str(ef): round(recall, 4) for ef, recall in self.tried.items()}}


def required_sample_recall(target: float) -> float:
    """Return the recall lower bound a build's samples must reach for `target`."""
    return round(min(1.0, target + SAMPLE_MARGIN), 4)


def query_like_texts(texts: Sequence[str], count: int = TEXT_SAMPLE_QUERIES,
                     seed: int = SAMPLE_SEED) -> list[str]:
    """Return up to `count` distinct short queries, the first `QUERY_WORDS` words of texts
    drawn at random with `seed`, lower-cased."""
    order = list(range(len(texts)))
    random.Random(seed).shuffle(order)
    queries: dict[str, None] = {}
    for position in order:
        query = " ".join(texts[position].split()[:QUERY_WORDS]).lower()
        if query:
            queries[query] = None
            if len(queries) == count:
                break
    return list(queries)


def served_ef_search(setting: int, index_description: dict[str, object]) -> int:
    """Return the efSearch to serve a version with: `setting` when positive, else the one
    its manifest's `index` section records, else `UNMEASURED_EF_SEARCH`."""
    if setting > 0:
        return setting
    measured = index_description.get("ef_search")
    return measured if isinstance(measured, int) else UNMEASURED_EF_SEARCH


def choose_ef_search(recall_at: Callable[[int], float], target: float,
                     ladder: tuple[int, ...] = EF_SEARCH_LADDER) -> EfSearchChoice:
    """Return the smallest efSearch on `ladder` whose `recall_at(ef)` reaches `target`.

    When none does, returns the largest, with its recall, and logs a warning: the build
    still publishes, and the manifest shows the shortfall.
    """
    tried: dict[int, float] = {}
    for ef in ladder:
        tried[ef] = recall_at(ef)
        if tried[ef] >= target:
            return EfSearchChoice(ef, tried[ef], tried)
    largest = ladder[-1]
    log.warning("hnsw_recall_below_target", ef_search=largest, recall_at_10=round(tried[largest], 4),
                target=target)
    return EfSearchChoice(largest, tried[largest], tried)


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    """Return the share of the exact result ids `truth` that `found` contains, row by row;
    both are FAISS result arrays of shape (queries, k)."""
    return float(recall_per_query(found, truth).mean())


def recall_per_query(found: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Return each row's share of its exact result ids that `found` contains."""
    return np.array([len(set(row) & set(expected)) / len(expected)
                     for row, expected in zip(found, truth, strict=True)])


def recall_lower_bound(found: np.ndarray, truth: np.ndarray) -> float:
    """Return the mean recall minus `STANDARD_ERRORS` standard errors of the mean, so that
    another sample of the same size would rarely measure less."""
    per_query = recall_per_query(found, truth)
    if len(per_query) < 2:
        return float(per_query.mean())
    error = per_query.std(ddof=1) / np.sqrt(len(per_query))
    return float(per_query.mean() - STANDARD_ERRORS * error)


def sample_queries(vectors: np.ndarray, count: int = SAMPLE_QUERIES) -> np.ndarray:
    """Return `count` noisy, normalised copies of stored vectors: shape (count, d), float32."""
    rng = np.random.default_rng(SAMPLE_SEED)
    rows = rng.choice(len(vectors), size=min(count, len(vectors)), replace=False)
    dimension = vectors.shape[1]
    noise = rng.normal(scale=NOISE_NORM / np.sqrt(dimension), size=(len(rows), dimension))
    queries = vectors[rows] + noise
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    return np.ascontiguousarray(queries, dtype=np.float32)


def tune_ef_search(graph: faiss.IndexHNSW, vectors: np.ndarray, target: float,
                   text_queries: np.ndarray | None = None) -> tuple[EfSearchChoice, int]:
    """Measure recall@10 of `graph` against exact search over `vectors`, set the chosen
    efSearch on `graph`, and return the choice and the number of sample queries.

    `text_queries`, the vectors of `query_like_texts`, form a second sample. An efSearch
    counts with the lower `recall_lower_bound` of the samples.
    """
    samples = [sample_queries(vectors)]
    if text_queries is not None and len(text_queries):
        samples.append(np.ascontiguousarray(text_queries, dtype=np.float32))
    # Fewer than 10 products: recall over all of them, since FAISS pads results with -1.
    k = min(RECALL_K, len(vectors))
    # `faiss.knn` scans `vectors` in place, where an IndexFlatIP would copy them.
    truths = [faiss.knn(queries, vectors, k, metric=faiss.METRIC_INNER_PRODUCT)[1] for queries in samples]

    def recall_at(ef: int) -> float:
        graph.hnsw.efSearch = ef
        return min(recall_lower_bound(graph.search(queries, k)[1], truth)
                   for queries, truth in zip(samples, truths, strict=True))

    choice = choose_ef_search(recall_at, required_sample_recall(target))
    graph.hnsw.efSearch = choice.ef_search
    count = sum(len(queries) for queries in samples)
    log.info("hnsw_ef_search_chosen", ef_search=choice.ef_search, recall_at_10=round(choice.recall_at_10, 4),
             products=len(vectors), queries=count)
    return choice, count
