"""Responses reveal no file path or stack trace, also when the model fails to load."""

from __future__ import annotations

from litestar.testing import TestClient

from indexer.errors import ModelLoadError
from service.app import create_app

MODEL_FOLDER = "/srv/models/private-model-folder"


def fail_to_load():
    raise ModelLoadError(f"cannot load the model in {MODEL_FOLDER}: config.json is missing")


def test_model_failure_reveals_no_path(settings):
    with TestClient(create_app(settings, load_model=fail_to_load)) as client:
        for _ in range(200):
            ready = client.get("/api/v1/ready")
            if "failed to load" in ready.text:
                break
        search = client.post("/api/v1/search", json={"queries": ["saw"]})

    assert ready.status_code == 503
    assert ready.json()["reason"] == (
        "the embedding model failed to load; the service log (model_load_failed) has the reason")
    assert search.status_code == 503
    for response in (ready, search):
        assert MODEL_FOLDER not in response.text
        assert str(settings.data_dir) not in response.text
        assert "Traceback" not in response.text
