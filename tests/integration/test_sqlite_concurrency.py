"""SQLite shared by a build that records a large catalog and a service under load.

The build runs as the indexer CLI in its own process and the service as another, as
they run in production. The large catalog repeats the texts of an earlier version, so
the build encodes nothing and spends its time recording product rows.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from indexer.schema import Product
from tests.conftest import HEADER, TOOLS, settings_environment
from tests.integration.service_process import REPOSITORY, service_process

pytestmark = [pytest.mark.integration, pytest.mark.sqlite_only]

PRODUCTS = 60_000
"""Rows of the large catalog; recording them takes a few seconds on two cores."""

LOCKED = "database is locked"


@dataclass(frozen=True)
class Call:
    """One request sent by a load thread, with its wall-clock start and end."""

    name: str
    started: float
    finished: float
    status: int
    body: str


def large_catalog(write_csv) -> Path:
    """PRODUCTS rows with new ids and attributes whose texts are those of TOOLS."""
    rows = [[f"L-{n}", *TOOLS[n % len(TOOLS)][1:3], f"Category {n % 40}", f"Brand {n % 25}", str(n % 7)]
            for n in range(PRODUCTS)]
    return write_csv(rows, name="large.csv", header=[*HEADER, "pack_size"])


def exact_index_environment(settings) -> dict[str, str]:
    """The build's environment with the exact index: an HNSW graph of 60,000 copies of a
    few dozen vectors would cost minutes and test nothing that this test is about."""
    return {**settings_environment(settings), "CATALOG_SEARCH_INDEX_TYPE": "flat"}


def log_time(output: str, event: str) -> float:
    """Return the epoch time of the first JSON log line of `event` in `output`."""
    for line in output.splitlines():
        if line.startswith("{") and json.loads(line)["event"] == event:
            return datetime.fromisoformat(json.loads(line)["timestamp"]).timestamp()
    pytest.fail(f"no {event} line in the build output:\n{output}")


class Load:
    """Threads that read and write through the service until `stop` is set."""

    def __init__(self, client: httpx.Client, new_version: int, admin_headers: dict[str, str]) -> None:
        self.base_url = client.base_url
        self.new_version = new_version
        self.admin_headers = admin_headers
        self.calls: list[Call] = []
        self.new_version_statuses: set[str] = set()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._read), threading.Thread(target=self._write)]

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=120)

    def _send(self, client: httpx.Client, name: str, method: str, path: str, **kwargs) -> httpx.Response:
        started = time.time()
        response = client.request(method, path, **kwargs)
        self.calls.append(Call(name, started, time.time(), response.status_code, response.text))
        return response

    def _read(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=60) as client:
            while not self.stop.is_set():
                self._send(client, "ready", "GET", "/ready")
                self._send(client, "search", "POST", "/search", json={"queries": ["saw"], "top_k": 3})

    def _write(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=60, headers=self.admin_headers) as client:
            while not self.stop.is_set():
                listing = self._send(client, "versions", "GET", "/index/versions")
                if listing.status_code == 200:
                    self.new_version_statuses.update(
                        item["status"] for item in listing.json() if item["version"] == self.new_version)
                self._send(client, "activate", "POST", "/index/activate", json={"version": 2})
                self._send(client, "rollback", "POST", "/index/rollback")


def test_build_beside_service_load_has_no_lock_errors(settings, build, write_csv, sessions, tmp_path,
                                                      api_key):
    build(write_csv(TOOLS, name="first.csv"))
    admin_headers = {"X-API-Key": api_key("operator", "admin")}
    build(write_csv([[f"B-{n}", *row[1:]] for n, row in enumerate(TOOLS)], name="second.csv"),
          activate=False)
    catalog = large_catalog(write_csv)
    service_log = tmp_path / "service.log"

    with service_process(settings, poll_seconds=0.2, log=service_log) as client:
        with Load(client, new_version=3, admin_headers=admin_headers) as load:
            built = subprocess.run([sys.executable, "-m", "indexer", "build", "--catalog", str(catalog)],
                                   cwd=REPOSITORY, env=exact_index_environment(settings),
                                   capture_output=True, text=True, timeout=600)
        activated = client.post("/index/activate", json={"version": 3}, headers=admin_headers)
        search = client.post("/search", json={"queries": ["saw"], "top_k": 1}).json()

    build_output = built.stdout + built.stderr
    assert built.returncode == 0, build_output
    assert LOCKED not in build_output
    assert LOCKED not in service_log.read_text()
    assert [call for call in load.calls if not 200 <= call.status < 300] == []

    started, finished = log_time(built.stderr, "build_started"), log_time(built.stderr, "build_finished")
    during = [call for call in load.calls if call.started >= started and call.finished <= finished]
    assert {"ready", "search"} <= {call.name for call in during}
    assert {"activate", "rollback"} <= {call.name for call in during}
    assert "building" in load.new_version_statuses
    assert load.new_version_statuses <= {"building", "ready"}

    with sessions() as session:
        recorded = session.scalar(select(func.count()).select_from(Product).where(Product.version_id == 3))
    assert recorded == PRODUCTS
    assert activated.json()["product_count"] == PRODUCTS
    assert search["index_version"] == 3
    assert search["results"][0]["matches"][0]["product_id"].startswith("L-")
