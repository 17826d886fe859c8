from __future__ import annotations

from pathlib import Path

import pytest

from indexer.errors import SettingsError
from indexer.settings import Settings, split_list


def test_defaults_run_embedded_mode():
    settings = Settings.from_env({})

    assert settings.database_url == "sqlite:///var/catalog.db"
    assert settings.index_dir == Path("var/indexes")
    assert Path(settings.model, "config.json").is_file()
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)


def test_environment_overrides_defaults():
    settings = Settings.from_env({
        "CATALOG_SEARCH_DATA_DIR": "/srv/catalog",
        "CATALOG_SEARCH_MAX_TOP_K": "50",
        "CATALOG_SEARCH_POLL_INTERVAL_SECONDS": "0.5",
    })

    assert settings.database_url == "sqlite:////srv/catalog/catalog.db"
    assert settings.max_top_k == 50
    assert settings.poll_interval_seconds == 0.5


def test_explicit_database_url_is_kept():
    url = "postgresql+psycopg://localhost/catalog"
    assert Settings.from_env({"CATALOG_SEARCH_DATABASE_URL": url}).database_url == url


def test_non_number_names_the_variable():
    with pytest.raises(SettingsError, match="CATALOG_SEARCH_PORT must be a int, got 'http'"):
        Settings.from_env({"CATALOG_SEARCH_PORT": "http"})


def test_zero_limit_rejected():
    with pytest.raises(SettingsError, match="CATALOG_SEARCH_MAX_QUERIES must be at least 1"):
        Settings.from_env({"CATALOG_SEARCH_MAX_QUERIES": "0"})


@pytest.mark.parametrize("template, message", [
    ("{name}", "TEXT_TEMPLATE is invalid"),
    ("{description}", "must contain {title}"),
])
def test_bad_text_template_rejected(template, message):
    with pytest.raises(SettingsError, match=message):
        Settings.from_env({"CATALOG_SEARCH_TEXT_TEMPLATE": template})


def test_unknown_log_format_rejected():
    with pytest.raises(SettingsError, match="LOG_FORMAT"):
        Settings.from_env({"CATALOG_SEARCH_LOG_FORMAT": "xml"})


@pytest.mark.parametrize(("variable", "value", "message"), [
    ("SEARCH_MODE", "fuzzy", "SEARCH_MODE must be one of dense, lexical, hybrid"),
    ("HYBRID_DENSE_WEIGHT", "1.5", "HYBRID_DENSE_WEIGHT must be between 0 and 1"),
    ("HYBRID_DENSE_WEIGHT", "-0.1", "HYBRID_DENSE_WEIGHT must be between 0 and 1"),
    ("HYBRID_DEPTH", "0", "HYBRID_DEPTH must be at least 1"),
    ("LEXICAL_LANGUAGE", "klingon", "LEXICAL_LANGUAGE must be one of"),
    ("INDEX_TYPE", "ivf", "INDEX_TYPE must be one of auto, flat, hnsw"),
    ("HNSW_M", "0", "HNSW_M must be at least 1"),
    ("HNSW_EF_SEARCH", "-1", r"HNSW_EF_SEARCH must be 0 \(the measured value\) or more"),
    ("HNSW_RECALL_TARGET", "0", "HNSW_RECALL_TARGET must be greater than 0 and at most 1"),
    ("HNSW_RECALL_TARGET", "1.5", "HNSW_RECALL_TARGET must be greater than 0 and at most 1"),
    ("FAISS_THREADS", "-1", r"FAISS_THREADS must be 0 \(the usable CPUs\) or more"),
    ("ENCODER_THREADS", "-2", r"ENCODER_THREADS must be 0 \(the usable CPUs\) or more"),
    ("ENCODE_BATCH_WAIT_MS", "-1", "ENCODE_BATCH_WAIT_MS must be 0 or more"),
    ("ENCODER_BACKEND", "tensorflow", "ENCODER_BACKEND must be one of onnx, onnx-int8, torch"),
])
def test_bad_search_setting_rejected(variable, value, message):
    with pytest.raises(SettingsError, match=message):
        Settings.from_env({f"CATALOG_SEARCH_{variable}": value})


def test_ranking_defaults():
    settings = Settings.from_env({})

    assert settings.search_mode == "hybrid"
    assert settings.hybrid_dense_weight == 0.5
    assert settings.hybrid_depth == 100
    assert settings.lexical_language == "english"
    assert settings.index_choice.resolve(49_999) == "flat"
    assert settings.index_choice.resolve(50_000) == "hnsw"
    assert settings.faiss_threads == 1
    assert settings.encoder_threads == 0


@pytest.mark.parametrize("environ, is_open", [
    ({}, True),
    ({"CATALOG_SEARCH_HOST": "::1"}, True),
    ({"CATALOG_SEARCH_HOST": "localhost"}, True),
    ({"CATALOG_SEARCH_HOST": "0.0.0.0"}, False),
    ({"CATALOG_SEARCH_HOST": "0.0.0.0", "CATALOG_SEARCH_OPEN_SEARCH": "true"}, True),
    ({"CATALOG_SEARCH_OPEN_SEARCH": "false"}, False),
    ({"CATALOG_SEARCH_OPEN_SEARCH": "0"}, False),
    ({"CATALOG_SEARCH_HOST": "10.0.0.5", "CATALOG_SEARCH_OPEN_SEARCH": ""}, False),
])
def test_search_open_on_loopback_unless_set(environ, is_open):
    assert Settings.from_env(environ).search_is_open is is_open


def test_non_boolean_names_the_variable():
    with pytest.raises(SettingsError, match="CATALOG_SEARCH_OPEN_SEARCH must be true or false, got 'maybe'"):
        Settings.from_env({"CATALOG_SEARCH_OPEN_SEARCH": "maybe"})


def test_negative_rate_limit_rejected():
    with pytest.raises(SettingsError, match="CATALOG_SEARCH_RATE_LIMIT_ADMIN_PER_MINUTE must be 0 or more"):
        Settings.from_env({"CATALOG_SEARCH_RATE_LIMIT_ADMIN_PER_MINUTE": "-1"})


def test_list_settings_split_on_commas():
    assert split_list(" https://a.example, ,https://b.example ") == ["https://a.example", "https://b.example"]
    assert split_list("") == []
