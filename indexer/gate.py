"""The promotion gate: checks a ready version must pass before a scheduled run activates it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import faiss
from sqlalchemy.orm import Session

from indexer import versions
from indexer.embedding import Embedder
from indexer.errors import CatalogError
from indexer.schema import IndexVersion, ModelVersion
from indexer.settings import PromotionRule

DEFAULT_MAX_REMOVED_FRACTION = 0.2
"""A feed that lost more than a fifth of the products is more likely truncated than real."""


@dataclass(frozen=True)
class GoldenQuery:
    """A query whose expected product ids must all appear in its top `top_k`."""

    query: str
    expected: list[str]
    top_k: int = 10


@dataclass(frozen=True)
class GateVerdict:
    passed: bool
    reasons: list[str]

    def summary(self) -> str:
        return "passed the promotion gate" if self.passed else "; ".join(self.reasons)


def load_golden_queries(path: Path) -> list[GoldenQuery]:
    """Read JSON Lines of `{"query": ..., "expected": [ids], "top_k": 10}`.

    Raises `CatalogError` naming the line of an invalid entry.
    """
    queries = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise CatalogError(f"cannot read golden queries {path}: {error.strerror}") from error
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            query = GoldenQuery(str(entry["query"]), [str(i) for i in entry["expected"]],
                                int(entry.get("top_k", 10)))
        except (ValueError, KeyError, TypeError) as error:
            raise CatalogError(
                f"{path} line {number}: expected {{\"query\": str, \"expected\": [ids], "
                f"\"top_k\": int}} ({error})"
            ) from error
        queries.append(query)
    return queries


def check_removed(removed: int, base_count: int | None, max_fraction: float) -> list[str]:
    """Return a reason when more than `max_fraction` of the base version's products are gone."""
    if not base_count or removed / base_count <= max_fraction:
        return []
    return [f"{removed} of {base_count} products ({removed / base_count:.0%}) were removed, "
            f"more than the allowed {max_fraction:.0%}"]


def check_golden(queries: list[GoldenQuery], embedder: Embedder, index: faiss.Index,
                 product_ids: list[str]) -> list[str]:
    """Return a reason for every golden query whose expected ids are not all in its top k."""
    if not queries:
        return []
    vectors = embedder.encode([query.query for query in queries])
    reasons = []
    for query, vector in zip(queries, vectors, strict=True):
        k = min(query.top_k, index.ntotal)
        _, positions = index.search(vector.reshape(1, -1), k)
        found = [product_ids[p] for p in positions[0] if p >= 0]
        missing = [product_id for product_id in query.expected if product_id not in found]
        if missing:
            reasons.append(f"golden query {query.query!r}: {', '.join(missing)} not in the top {query.top_k}")
    return reasons


def check_model_change(session: Session, embedder: Embedder, rule: PromotionRule) -> list[str]:
    """Return reasons to hold a version built with `embedder` when the active version uses
    another model: the new model's card must show it beating that model by the margin."""
    active = versions.get_active(session)
    if active is None or active.version.model_fingerprint == embedder.fingerprint:
        return []
    if embedder.model_version is None:
        return [f"built with the configured model {embedder.name}, while the active version "
                f"{active.version.id} uses {active.version.model_name}; no evaluation compares "
                "the two, so activate it by hand to switch models"]
    record = session.get_one(ModelVersion, embedder.model_version)
    return check_model(record, active.version, rule)


def check_model(candidate: ModelVersion, active: IndexVersion, rule: PromotionRule) -> list[str]:
    """Compare the card's evaluation of `candidate` with the model it started from, which
    must be the active version's model. The new model must gain at least the margin in
    the rule's ranking mode and lose in no evaluated mode: a model whose embeddings
    collapsed can still look better in hybrid ranking, where BM25 then decides alone."""
    evaluation = (candidate.card or {}).get("evaluation", {})
    name = f"model version {candidate.id}"
    base = str(evaluation.get("base_fingerprint", ""))
    if base != active.model_fingerprint:
        return [f"{name} was evaluated against model {candidate.base_name} ({base[:12]}), but the "
                f"active version {active.id} uses {active.model_name} "
                f"({active.model_fingerprint[:12]}); train from the active model, or activate "
                "by hand"]
    reasons = []
    for mode in sorted(evaluation["after"]):
        before = evaluation["before"][mode]["ndcg_at_10"]
        after = evaluation["after"][mode]["ndcg_at_10"]
        if after < before:
            reasons.append(f"{name}: {mode} nDCG@10 on its held-out queries fell from "
                           f"{before:.4f} to {after:.4f}")
        elif mode == rule.mode and after - before < rule.margin:
            reasons.append(f"{name}: {mode} nDCG@10 on its held-out queries is {after:.4f} against "
                           f"{before:.4f} for the active model ({after - before:+.4f}), short of "
                           f"the required gain of {rule.margin:g}")
    return reasons
