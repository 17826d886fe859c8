"""Fixtures shared by all tests.

Unit tests use only `settings` and `write_csv`. The model, database and server fixtures
load the real packaged model once per session, and only when a test requests them.
"""

from __future__ import annotations

import contextlib
import csv
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from indexer import keys
from indexer.build import BuildContext, BuildReport, BuildRequest, build_version
from indexer.catalog import ColumnMap
from indexer.database import create_database_engine, migrate, session_factory
from indexer.embedding import Embedder
from indexer.settings import Settings
from service.app import create_app
from service.models import ModelPool, model_pool

HEADER = ["id", "title", "description", "category", "brand"]

TOOLS = [
    ["T-1", "Circular Saw 7-1/4 in.", "Corded circular saw that cuts wood, plywood and lumber.", "Saws", "Acme"],
    ["T-2", "Claw Hammer 16 oz", "Steel claw hammer for driving and pulling nails.", "Hand Tools", "Acme"],
    ["T-3", "Tape Measure 25 ft", "Measuring tape with a magnetic hook for length and distance.", "Measuring", "Bolt"],
    ["T-4", "Ratchet Screwdriver", "Screwdriver with a ratchet handle and 12 bits for screws.", "Hand Tools", "Bolt"],
    ["T-5", "Cordless Drill 18V", "Battery drill driver for drilling holes in wood and metal.", "Power Tools", "Acme"],
    ["T-6", "Safety Glasses", "Clear eye protection with side shields.", "Safety", "Guard"],
]


POSTGRES_ADMIN_URL = os.environ.get(
    "CATALOG_SEARCH_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
"""Server database from which each PostgreSQL test creates and drops its own database."""


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run integration tests and tests marked `both_databases` on SQLite and PostgreSQL."""
    if "database_backend" not in metafunc.fixturenames:
        return
    definition = metafunc.definition
    both = (definition.get_closest_marker("integration") or definition.get_closest_marker("both_databases"))
    if definition.get_closest_marker("sqlite_only"):
        both = None
    metafunc.parametrize("database_backend", ["sqlite", "postgresql"] if both else ["sqlite"],
                         indirect=True)


@pytest.fixture
def database_backend(request: pytest.FixtureRequest) -> Iterator[str]:
    """A database URL for the test: empty for SQLite in the data folder, or a new
    PostgreSQL database that is dropped afterwards."""
    if request.param == "sqlite":
        yield ""
        return
    name = f"catalog_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def settings(tmp_path: Path, database_backend: str) -> Settings:
    """Settings whose database and index folders belong to this test alone."""
    return Settings(data_dir=tmp_path / "var", database_url=database_backend, poll_interval_seconds=0.2)


def settings_environment(settings: Settings) -> dict[str, str]:
    """The environment that gives a subprocess the same settings.

    Subprocesses encode with PyTorch, like the in-process model fixture, so that each test's
    fresh data folder does not export its own ONNX model. tests/integration/test_onnx.py
    covers that backend.
    """
    return {**os.environ, "CATALOG_SEARCH_DATA_DIR": str(settings.data_dir),
            "CATALOG_SEARCH_DATABASE_URL": settings.database_url,
            "CATALOG_SEARCH_LOG_FORMAT": "json", "CATALOG_SEARCH_ENCODER_BACKEND": "torch",
            "HF_HUB_OFFLINE": "1"}


@pytest.fixture
def write_csv(tmp_path: Path) -> Callable[..., Path]:
    """Write rows (lists of cells, or raw text lines) under the standard header."""

    def write(rows: list[list[str]], name: str = "catalog.csv", header: list[str] = HEADER) -> Path:
        path = tmp_path / name
        with path.open("w", encoding="utf-8", newline="") as stream:
            writer = csv.writer(stream)
            writer.writerow(header)
            writer.writerows(rows)
        return path

    return write


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    """The packaged all-MiniLM-L6-v2, loaded once for the whole session."""
    return Embedder(Settings().model)


@pytest.fixture(scope="session")
def onnx_embedder(tmp_path_factory) -> Embedder:
    """The same model under ONNX Runtime (fp32), exported once for the whole session."""
    return Embedder(Settings().model, backend="onnx", onnx_dir=tmp_path_factory.mktemp("onnx"))


@pytest.fixture
def engine(settings):
    engine = create_database_engine(settings.database_url)
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine):
    return session_factory(engine)


@pytest.fixture
def api_key(sessions) -> Callable[..., str]:
    """Create an API key with a name and scopes in the test's database; returns the key."""

    def create(name: str, *scopes: str) -> str:
        with sessions.begin() as session:
            return keys.create_key(session, name, scopes)

    return create


@pytest.fixture
def build(settings, engine, sessions, embedder) -> Callable[..., BuildReport]:
    """Build a version from a catalog file with the shared model."""
    context = BuildContext(engine, sessions, lambda: embedder, settings.index_dir,
                           settings.text_template)

    def run(catalog: Path, activate: bool = True, skip_invalid: bool = False,
            columns: ColumnMap | None = None, dry_run: bool = False) -> BuildReport:
        request = BuildRequest(catalog, columns or ColumnMap(), skip_invalid=skip_invalid,
                               activate=activate, dry_run=dry_run)
        return build_version(request, context)

    return run


def pool_with(embedder: Embedder) -> ModelPool:
    """Return a model pool that contains `embedder` as the configured model, for an `IndexHolder`."""
    pool = model_pool(Settings(encoder_backend="torch"))
    pool.add(embedder, configured=True)
    return pool


@pytest.fixture
def serve(embedder) -> Iterator[Callable[[Settings], contextlib.AbstractContextManager[httpx.Client]]]:
    """Start the real app with uvicorn on a free 127.0.0.1 port; yields an HTTP client."""

    @contextlib.contextmanager
    def start(settings: Settings, until: Callable[[httpx.Response], bool] | None = None,
              embedder: Embedder = embedder) -> Iterator[httpx.Client]:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        app = create_app(settings, load_model=lambda: embedder)
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None,
                                               access_log=False))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}/api/v1", timeout=120) as client:
                wait_for(client, until or (lambda response: response.status_code == 200))
                yield client
        finally:
            server.should_exit = True
            thread.join(timeout=30)

    yield start


def wait_for(client: httpx.Client, condition: Callable[[httpx.Response], bool],
             attempts: int = 600) -> None:
    """Poll /ready until its response meets `condition`; fails the test otherwise."""
    body = None
    for _ in range(attempts):
        try:
            response = client.get("/ready")
        except httpx.TransportError:
            time.sleep(0.05)
            continue
        if condition(response):
            return
        body = response.json()
        time.sleep(0.05)
    pytest.fail(f"service never reached the expected state: {body}")
