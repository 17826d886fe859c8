"""Two service processes on one database and one artifact folder follow one active pointer."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import TOOLS, settings_environment

pytestmark = pytest.mark.integration

POLL_SECONDS = 1.0
REPOSITORY = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def replica(settings) -> Iterator[httpx.Client]:
    """Run `python -m service` as its own process and yield a client once it is ready."""
    port = free_port()
    env = {**settings_environment(settings), "CATALOG_SEARCH_PORT": str(port),
           "CATALOG_SEARCH_POLL_INTERVAL_SECONDS": str(POLL_SECONDS)}
    process = subprocess.Popen([sys.executable, "-m", "service"], cwd=REPOSITORY, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}/api/v1", timeout=60) as client:
            served_version(client, until=lambda version: version is not None)
            yield client
    finally:
        process.terminate()
        process.wait(timeout=30)


def served_version(client: httpx.Client, until, attempts: int = 1200) -> int | None:
    """Poll /ready every 0.05 s until the served version meets `until`; fail otherwise."""
    version = None
    for _ in range(attempts):
        with contextlib.suppress(httpx.TransportError):
            version = client.get("/ready").json().get("index_version")
            if until(version):
                return version
        time.sleep(0.05)
    pytest.fail(f"the replica kept serving version {version}")


def test_activation_through_one_replica_reaches_both(settings, build, write_csv, api_key):
    build(write_csv(TOOLS, name="first.csv"))
    key = api_key("operator", "admin")
    second = build(write_csv(TOOLS[:4], name="second.csv"), activate=False)

    with replica(settings) as first_replica, replica(settings) as second_replica:
        assert served_version(first_replica, until=lambda version: version == 1) == 1
        assert served_version(second_replica, until=lambda version: version == 1) == 1

        response = first_replica.post("/index/activate", json={"version": second.version},
                                      headers={"X-API-Key": key})
        served_at_once = first_replica.post("/search", json={"queries": ["saw"]}).json()["index_version"]
        # The other replica reads the pointer within its poll interval; the attempts below
        # allow twice that and the time to load the version.
        followed = served_version(second_replica, until=lambda version: version == second.version,
                                  attempts=int(2 * POLL_SECONDS / 0.05) + 100)
        search = second_replica.post("/search", json={"queries": ["saw"]}).json()

    assert response.status_code == 200
    assert served_at_once == second.version
    assert followed == second.version
    assert search["index_version"] == second.version
