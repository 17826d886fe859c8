"""Run `python -m service` as a child process, as a replica runs in production."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import settings_environment

REPOSITORY = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def service_process(settings, poll_seconds: float = 1.0, log: Path | None = None,
                    ) -> Iterator[httpx.Client]:
    """Start the service on a free 127.0.0.1 port and yield a client once it serves a version.

    Rate limits are off, so that load tests measure the database and not the limiter. The
    service's JSON log lines go to `log` when given, and are discarded otherwise. The
    process is terminated by its pid when the block ends.
    """
    port = free_port()
    env = {**settings_environment(settings), "CATALOG_SEARCH_PORT": str(port),
           "CATALOG_SEARCH_POLL_INTERVAL_SECONDS": str(poll_seconds),
           "CATALOG_SEARCH_RATE_LIMIT_SEARCH_PER_MINUTE": "0",
           "CATALOG_SEARCH_RATE_LIMIT_ADMIN_PER_MINUTE": "0"}
    with contextlib.ExitStack() as stack:
        output = stack.enter_context(log.open("w")) if log else subprocess.DEVNULL
        process = subprocess.Popen([sys.executable, "-m", "service"], cwd=REPOSITORY, env=env,
                                   stdout=output, stderr=output)
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}/api/v1", timeout=60) as client:
                served_version(client, until=lambda version: version is not None)
                yield client
        finally:
            process.terminate()
            process.wait(timeout=30)


def served_version(client: httpx.Client, until: Callable[[int | None], bool],
                   attempts: int = 1200) -> int | None:
    """Poll /ready every 0.05 s until the served version meets `until`; fail otherwise."""
    version = None
    for _ in range(attempts):
        with contextlib.suppress(httpx.TransportError):
            version = client.get("/ready").json().get("index_version")
            if until(version):
                return version
        time.sleep(0.05)
    pytest.fail(f"the service kept serving version {version}")
