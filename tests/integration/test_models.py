"""Model versions: training on judgments, the card and records, the promotion gate, and a
running service switching to an index built with another model."""

from __future__ import annotations

import csv
import dataclasses
import json
import random
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from indexer import models, versions
from indexer.embedding import fingerprint_model
from indexer.schema import IndexVersion, ModelVersion
from indexer.training import TrainOptions, TrainRequest, split_queries, train
from tests.conftest import settings_environment
from tests.integration.service_process import REPOSITORY

pytestmark = pytest.mark.integration

SAMPLE_CATALOG = REPOSITORY / "data" / "sample_catalog.csv"
QUERIES = ["what can I use to cut wood", "tape measure", "safety glasses", "drill bits for metal",
           "garden hose", "wood glue"]
FEW_STEPS = TrainOptions(max_steps=3, batch_size=16, learning_rate=1e-4, seed=7)
"""A few steps at a high rate: enough to move the weights visibly in well under a minute."""


def write_judgments(path: Path, shuffled: bool = False) -> Path:
    """Judge each sample product relevant (3) to the first two words of its title, and one
    other product irrelevant (1). Shuffled, each training query's relevant product is
    another training query's, while the held-out queries keep their true judgments."""
    with SAMPLE_CATALOG.open(encoding="utf-8", newline="") as stream:
        rows = list(csv.DictReader(stream))
    queries = [" ".join(row["title"].split()[:2]).lower() for row in rows]
    relevant = [row["id"] for row in rows]
    if shuffled:
        trained, _ = split_queries(queries, FEW_STEPS.eval_fraction, FEW_STEPS.seed)
        rows_trained = [n for n, query in enumerate(queries) if query in set(trained)]
        rotated = rows_trained[1:] + rows_trained[:1]
        relevant = list(relevant)
        for row, source in zip(rows_trained, rotated, strict=True):
            relevant[row] = rows[source]["id"]
    rng = random.Random(11)
    with path.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["query", "product_id", "relevance"])
        for query, product in zip(queries, relevant, strict=True):
            writer.writerow([query, product, 3])
            writer.writerow([query, rng.choice(rows)["id"], 1])
    return path


@pytest.fixture
def torch_settings(settings):
    """Trained models load with PyTorch, like the shared model fixture, so that each test's
    fresh data folder exports no ONNX model."""
    return dataclasses.replace(settings, encoder_backend="torch")


@pytest.fixture
def sample_active(build):
    """The sample catalog as version 1, built with the configured model and active."""
    return build(SAMPLE_CATALOG)


def run_indexer(settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "indexer", *args], cwd=REPOSITORY, text=True,
                          env=settings_environment(settings), capture_output=True, timeout=600)


def test_training_records_model_version_with_card(torch_settings, engine, sessions, sample_active,
                                                  tmp_path):
    request = TrainRequest(write_judgments(tmp_path / "judgments.csv"), options=FEW_STEPS)

    report = train(request, torch_settings, engine, sessions, say=lambda line: None)

    card = report.card
    assert report.folder == torch_settings.models_dir / "m000001"
    assert json.loads((report.folder / "card.json").read_text()) == card
    assert card["fingerprint"] == fingerprint_model(report.folder)
    assert card["base_model"]["fingerprint"] == sample_active_fingerprint(sessions)
    assert card["hyperparameters"]["steps"] == 3
    assert card["hyperparameters"]["loss"] == "MultipleNegativesRankingLoss"
    split = card["split"]
    assert split["by"] == "query"
    assert split["train_queries"] > 0
    assert split["eval_queries"] > 0
    assert card["data"]["min_relevance"] == 2.5
    assert card["data"]["unknown_product_ids"] == 0
    assert set(card["libraries"]) >= {"sentence-transformers", "transformers", "torch"}
    evaluation = card["evaluation"]
    assert evaluation["queries"] == split["eval_queries"]
    for label in ("before", "after"):
        for mode in ("dense", "hybrid"):
            scores = evaluation[label][mode]
            assert 0 < scores["ndcg_at_10"] <= 1
            assert 0 < scores["recall_at_100"] <= 1
    with sessions() as session:
        record = session.get_one(ModelVersion, 1)
        assert (record.status, record.name) == ("ready", report.name)
        assert record.fingerprint == card["fingerprint"]
        assert record.base_fingerprint == card["base_model"]["fingerprint"]
        assert record.card == card
        assert record.training_seconds > 0
        assert len(record.data_checksum) == 64


def sample_active_fingerprint(sessions) -> str:
    with sessions() as session:
        return versions.get_active(session).version.model_fingerprint


def test_same_seed_splits_and_trains_the_same(torch_settings, engine, sessions, sample_active,
                                              tmp_path):
    judgments = write_judgments(tmp_path / "judgments.csv")
    options = dataclasses.replace(FEW_STEPS, max_steps=1)

    first = train(TrainRequest(judgments, options=options), torch_settings, engine, sessions,
                  say=lambda line: None)
    second = train(TrainRequest(judgments, options=options), torch_settings, engine, sessions,
                   say=lambda line: None)

    assert first.card["split"] == second.card["split"]
    assert first.card["fingerprint"] == second.card["fingerprint"]


def test_gate_rejects_shuffled_pair_model(torch_settings, engine, sessions,
                                                               sample_active, tmp_path):
    # A higher rate than FEW_STEPS, so that the wrong pairs visibly move the weights.
    request = TrainRequest(write_judgments(tmp_path / "shuffled.csv", shuffled=True),
                           options=dataclasses.replace(FEW_STEPS, max_steps=8, learning_rate=5e-4))
    report = train(request, torch_settings, engine, sessions, say=lambda line: None)
    dense = {label: report.card["evaluation"][label]["dense"]["ndcg_at_10"]
             for label in ("before", "after")}
    assert dense["after"] < dense["before"] - 0.05

    built = run_indexer(torch_settings, "build", "--catalog", str(SAMPLE_CATALOG), "--model-version",
                        str(report.model_version), "--activate")

    assert built.returncode == 0, built.stderr
    assert "held by the promotion gate" in built.stdout
    expected = (f"dense nDCG@10 on its held-out queries fell from {dense['before']:.4f} to "
                f"{dense['after']:.4f}")
    assert expected in built.stdout
    with sessions() as session:
        held = session.get_one(IndexVersion, 2)
        assert (held.status, held.model_version_id) == ("ready", report.model_version)
        assert expected in held.note
        assert versions.get_active(session).version.id == 1
        # Every text was embedded again: no vector of the old model was reused.
        assert held.encoded_count == held.product_count
    listed = run_indexer(torch_settings, "versions")
    assert "held: model version 1" in listed.stdout


def test_gate_passes_model_that_beats_active_by_margin(torch_settings, engine, sessions,
                                                       sample_active, tmp_path):
    report = train(TrainRequest(write_judgments(tmp_path / "judgments.csv"), options=FEW_STEPS),
                   torch_settings, engine, sessions, say=lambda line: None)
    evaluation = report.card["evaluation"]
    gain = evaluation["after"]["hybrid"]["ndcg_at_10"] - evaluation["before"]["hybrid"]["ndcg_at_10"]
    margin = round(gain - 0.001, 4)
    settings = dataclasses.replace(torch_settings, model_promotion_margin=max(margin, 0.0))
    environment = {"CATALOG_SEARCH_MODEL_PROMOTION_MARGIN": str(settings.model_promotion_margin)}

    built = subprocess.run(
        [sys.executable, "-m", "indexer", "build", "--catalog", str(SAMPLE_CATALOG),
         "--model-version", "1", "--activate"],
        cwd=REPOSITORY, text=True, capture_output=True, timeout=600,
        env={**settings_environment(settings), **environment})

    assert built.returncode == 0, built.stderr
    assert "active:    yes" in built.stdout
    with sessions() as session:
        active = versions.get_active(session).version
        assert (active.id, active.model_version_id) == (2, 1)
        assert active.model_fingerprint == report.card["fingerprint"]
    # A later build without --model-version keeps the promoted model.
    rebuilt = run_indexer(settings, "build", "--catalog", str(SAMPLE_CATALOG))
    assert rebuilt.returncode == 0, rebuilt.stderr
    with sessions() as session:
        assert session.get_one(IndexVersion, 3).model_version_id == 1
        assert session.get_one(IndexVersion, 3).encoded_count == 0


def test_unknown_model_version_is_refused(torch_settings, sample_active):
    built = run_indexer(torch_settings, "build", "--catalog", str(SAMPLE_CATALOG),
                        "--model-version", "9")

    assert built.returncode == 1
    assert "model version 9 does not exist" in built.stderr


def test_model_switch_under_load(
        torch_settings, engine, sessions, sample_active, serve, api_key, tmp_path):
    """Clients search while the active version moves between two models. Every response
    must equal the reference response of the version it names, so no query met the other model."""
    report = train(TrainRequest(write_judgments(tmp_path / "judgments.csv"), options=FEW_STEPS),
                   torch_settings, engine, sessions, say=lambda line: None)
    built = run_indexer(torch_settings, "build", "--catalog", str(SAMPLE_CATALOG),
                        "--model-version", str(report.model_version))
    assert built.returncode == 0, built.stderr
    headers = {"X-API-Key": api_key("operator", "admin")}
    body = {"queries": QUERIES, "top_k": 5, "mode": "dense"}
    settings = dataclasses.replace(torch_settings, rate_limit_search_per_minute=0)

    with serve(settings) as client:
        reference = {1: client.post("/search", json=body).json()}
        assert client.post("/index/activate", json={"version": 2}, headers=headers).status_code == 200
        reference[2] = client.post("/search", json=body).json()
        assert client.post("/index/rollback", headers=headers).status_code == 200
        assert_models_differ(reference[1], reference[2])

        answers: list[dict] = []
        failures: list[str] = []
        stop = threading.Event()

        def search_loop():
            with httpx.Client(base_url=client.base_url, timeout=60) as own:
                while not stop.is_set():
                    response = own.post("/search", json=body)
                    if response.status_code == 200:
                        answers.append(response.json())
                    else:
                        failures.append(f"{response.status_code}: {response.text}")

        threads = [threading.Thread(target=search_loop) for _ in range(6)]
        for thread in threads:
            thread.start()
        for step in ({"version": 2}, None, {"version": 2}, None):
            path = "/index/activate" if step else "/index/rollback"
            assert client.post(path, json=step, headers=headers).status_code == 200
            wait_for_answers(answers, len(answers) + 20)
        stop.set()
        for thread in threads:
            thread.join()

    assert failures == []
    assert {answer["index_version"] for answer in answers} == {1, 2}
    for answer in answers:
        assert_same_answer(answer, reference[answer["index_version"]])


def wait_for_answers(answers: list, count: int) -> None:
    for _ in range(6000):
        if len(answers) >= count:
            return
        threading.Event().wait(0.01)
    pytest.fail(f"only {len(answers)} answers arrived")


def scores_of(answer: dict) -> list[dict[str, float]]:
    return [{match["product_id"]: match["score"] for match in result["matches"]}
            for result in answer["results"]]


def assert_models_differ(first: dict, second: dict) -> None:
    """Precondition: the two models score every query's top product differently."""
    for old, new in zip(scores_of(first), scores_of(second), strict=True):
        top = max(old, key=old.__getitem__)
        assert abs(old[top] - new.get(top, 0.0)) > 0.005, (old, new)


def assert_same_answer(answer: dict, reference: dict) -> None:
    """Same products and scores as the version's reference, within batching noise."""
    for got, expected in zip(scores_of(answer), scores_of(reference), strict=True):
        assert got.keys() == expected.keys(), (got, expected)
        assert all(abs(got[key] - expected[key]) <= 0.0005 for key in got), (got, expected)


def test_model_versions_are_listed(torch_settings, engine, sessions, sample_active, tmp_path):
    train(TrainRequest(write_judgments(tmp_path / "judgments.csv"),
                       options=dataclasses.replace(FEW_STEPS, max_steps=1)),
          torch_settings, engine, sessions, say=lambda line: None)

    listed = run_indexer(torch_settings, "models")

    assert listed.returncode == 0, listed.stderr
    with sessions() as session:
        record = session.scalars(select(ModelVersion)).one()
    assert f"{record.name} (" in listed.stdout
    assert "hybrid nDCG@10" in listed.stdout
    assert models.model_folder(torch_settings, 1).is_dir()


@pytest.mark.sqlite_only
def test_backup_restores_trained_model(torch_settings, engine, sessions, sample_active, serve,
                                       tmp_path):
    report = train(TrainRequest(write_judgments(tmp_path / "judgments.csv"),
                                options=dataclasses.replace(FEW_STEPS, max_steps=1)),
                   torch_settings, engine, sessions, say=lambda line: None)
    built = run_indexer(torch_settings, "build", "--catalog", str(SAMPLE_CATALOG),
                        "--model-version", "1")
    activated = run_indexer(torch_settings, "activate", "2")
    restored = dataclasses.replace(torch_settings, data_dir=tmp_path / "restored" / "var",
                                   database_url="")

    saved = run_indexer(torch_settings, "backup", "--to", str(tmp_path / "backup"))
    loaded = run_indexer(restored, "restore", "--from", str(tmp_path / "backup"))
    with serve(restored) as client:
        ready = client.get("/ready").json()

    assert built.returncode == 0, built.stderr
    assert activated.returncode == 0, activated.stderr
    assert saved.returncode == 0, saved.stderr
    assert loaded.returncode == 0, loaded.stderr
    assert (tmp_path / "backup" / "models" / "m000001" / "card.json").is_file()
    assert (ready["index_version"], ready["model"]) == (2, report.name)


@pytest.mark.parametrize("arguments", [
    ["activate", "9223372036854775808"],
    ["build", "--catalog", str(SAMPLE_CATALOG), "--model-version", "99999999999999999999"],
    ["train", "--judgments", "judgments.csv", "--base-model-version", "0"],
])
def test_version_number_out_of_range_is_usage_error(torch_settings, arguments):
    result = run_indexer(torch_settings, *arguments)

    assert result.returncode == 2
    assert "is out of range: version numbers run from 1 to 2147483647" in result.stderr
    assert "Traceback" not in result.stderr
