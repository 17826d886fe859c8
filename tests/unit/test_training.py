"""Judgment files, the query split, training pairs and the model promotion gate, without a model."""

from __future__ import annotations

from datetime import UTC, datetime

import faiss
import numpy as np
import pytest

from indexer.errors import JudgmentsError
from indexer.gate import check_model
from indexer.schema import IndexVersion, ModelVersion
from indexer.settings import PromotionRule
from indexer.training import (
    Judgment,
    TrainOptions,
    default_min_relevance,
    mine_hard_negatives,
    parse_judgment_columns,
    planned_steps,
    read_judgments,
    split_queries,
    training_pairs,
)


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_judgments_read_with_query_texts(tmp_path):
    judgments = write(tmp_path / "qrels.csv", "query_id,product_uid,relevance\n7,P-1,3\n7,P-2,1.33\n")
    queries = write(tmp_path / "queries.csv", "query_id,query\n7,angle grinder\n")

    rows = read_judgments(judgments, queries, parse_judgment_columns("product_id=product_uid"))

    assert rows == [Judgment("angle grinder", "P-1", 3.0), Judgment("angle grinder", "P-2", 1.33)]


def test_judgments_missing_column_named(tmp_path):
    path = write(tmp_path / "j.csv", "query,product,relevance\nsaw,P-1,3\n")

    expected = "lacks the column\\(s\\) product_id; it has query, product, relevance"
    with pytest.raises(JudgmentsError, match=expected):
        read_judgments(path)


@pytest.mark.parametrize("row, message", [
    ("saw,P-1,high", "line 2: relevance must be a number, got 'high'"),
    (",P-1,3", "line 2: a query, a product id and a finite relevance are required"),
    ("saw,P-1,nan", "line 2: a query, a product id and a finite relevance are required"),
])
def test_judgments_invalid_row_named(tmp_path, row, message):
    path = write(tmp_path / "j.csv", f"query,product_id,relevance\n{row}\n")

    with pytest.raises(JudgmentsError, match=message):
        read_judgments(path)


@pytest.mark.parametrize("row", ["saw,P-1", "saw,P-1,3,extra"])
def test_judgments_wrong_field_count_named(tmp_path, row):
    path = write(tmp_path / "j.csv", f"query,product_id,relevance\n{row}\n")

    with pytest.raises(JudgmentsError, match="line 2: expected 3 fields as in the header"):
        read_judgments(path)


def test_judgments_unknown_query_id_named(tmp_path):
    judgments = write(tmp_path / "qrels.csv", "query_id,product_id,relevance\n8,P-1,3\n")
    queries = write(tmp_path / "queries.csv", "query_id,query\n7,saw\n")

    with pytest.raises(JudgmentsError, match="line 2: query id '8' is not in"):
        read_judgments(judgments, queries)


def test_judgment_columns_reject_unknown_field():
    with pytest.raises(JudgmentsError, match="invalid judgment column mapping 'score=grade'"):
        parse_judgment_columns("score=grade")


def test_split_is_disjoint_and_repeatable():
    queries = [f"query {n}" for n in range(50)] * 2

    train, held_out = split_queries(queries, 0.2, seed=3)

    assert len(held_out) == 10
    assert len(train) == 40
    assert not set(train) & set(held_out)
    assert split_queries(list(reversed(queries)), 0.2, seed=3) == (train, held_out)
    assert split_queries(queries, 0.2, seed=4) != (train, held_out)


def test_split_needs_two_queries():
    with pytest.raises(JudgmentsError, match="at least two distinct queries"):
        split_queries(["saw", "saw"], 0.2, seed=1)


def test_default_min_relevance_is_top_quarter():
    judgments = [Judgment("q", "a", 1.0), Judgment("q", "b", 3.0), Judgment("q", "c", 2.0)]

    assert default_min_relevance(judgments) == 2.5


def test_pairs_take_relevant_products_of_training_queries():
    judgments = [Judgment("saw", "P-1", 3.0), Judgment("saw", "P-2", 2.0),
                 Judgment("drill", "P-3", 3.0), Judgment("saw", "P-404", 3.0)]
    texts = {"P-1": "Circular Saw", "P-2": "Saw Blade", "P-3": "Cordless Drill"}

    pairs = training_pairs(judgments, {"saw"}, texts, min_relevance=2.5)

    assert pairs == [("saw", "Circular Saw")]


def test_planned_steps_follow_max_steps():
    assert planned_steps(130, TrainOptions(batch_size=64, epochs=2)) == 6
    assert planned_steps(130, TrainOptions(batch_size=64, epochs=2, max_steps=4)) == 4
    assert planned_steps(130, TrainOptions(batch_size=64, max_steps=9)) == 9


@pytest.mark.parametrize("options, message", [
    (TrainOptions(batch_size=1), "--batch-size must be at least 2"),
    (TrainOptions(eval_fraction=1.0), "--eval-fraction must be greater than 0 and less than 1"),
    (TrainOptions(max_steps=0), "--max-steps must be at least 1"),
    (TrainOptions(epochs=0), "--epochs must be at least 1"),
])
def test_options_out_of_range_rejected(options, message):
    with pytest.raises(JudgmentsError, match=message):
        options.check()


def test_hard_negative_skips_positives():
    texts = ["saw", "saw blade", "hammer"]
    vectors = np.eye(3, dtype=np.float32)
    index = faiss.IndexFlatIP(3)
    index.add(vectors)
    query = np.asarray([0.9, 0.8, 0.1], dtype=np.float32)
    query /= np.linalg.norm(query)

    negatives = mine_hard_negatives([("cut", "saw")], {"cut": query}, index, texts,
                                    {"cut": {"saw"}})

    assert negatives == ["saw blade"]


def card(before: float, after: float, base: str = "b" * 64) -> dict:
    scores = {"dense": {"ndcg_at_10": before}, "hybrid": {"ndcg_at_10": before}}
    improved = {"dense": {"ndcg_at_10": after}, "hybrid": {"ndcg_at_10": after}}
    return {"evaluation": {"base_fingerprint": base, "before": scores, "after": improved}}


def candidate(card_data: dict) -> ModelVersion:
    return ModelVersion(id=4, name="minilm-ft4", base_name="minilm", card=card_data)


ACTIVE = IndexVersion(id=9, model_name="minilm", model_fingerprint="b" * 64,
                      created_at=datetime.now(UTC))


def test_gate_passes_gain_over_margin():
    assert check_model(candidate(card(0.30, 0.32)), ACTIVE, PromotionRule("hybrid", 0.01)) == []


def test_gate_holds_gain_under_margin():
    reasons = check_model(candidate(card(0.30, 0.305)), ACTIVE, PromotionRule("hybrid", 0.01))

    assert reasons == ["model version 4: hybrid nDCG@10 on its held-out queries is 0.3050 "
                       "against 0.3000 for the active model (+0.0050), short of the required "
                       "gain of 0.01"]


def test_gate_holds_dense_loss_behind_hybrid_gain():
    evaluation = card(0.30, 0.35)
    evaluation["evaluation"]["after"]["dense"]["ndcg_at_10"] = 0.21

    reasons = check_model(candidate(evaluation), ACTIVE, PromotionRule("hybrid", 0.01))

    assert reasons == ["model version 4: dense nDCG@10 on its held-out queries fell from 0.3000 to 0.2100"]


def test_gate_holds_model_evaluated_against_other_base():
    reasons = check_model(candidate(card(0.30, 0.40, base="c" * 64)), ACTIVE,
                          PromotionRule("dense", 0.01))

    assert len(reasons) == 1
    assert ("was evaluated against model minilm (cccccccccccc), but the active version 9 uses "
            "minilm (bbbbbbbbbbbb)") in reasons[0]
