"""The build lock: one build at a time per metadata database.

On PostgreSQL the lock is a session-level advisory lock; on SQLite it is an exclusive
`flock` on a file beside the database. Both are released by the operating system or the
database server when the holder dies, so a killed build never leaves a stale lock, and
the next build to take the lock may clean up what the dead build left.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from indexer.errors import BuildLockedError

LOCK_WAIT_SECONDS = 5.0
"""How long to retry a held lock before failing. PostgreSQL frees a killed build's lock
only when its server process notices the closed connection, which can take a moment."""

ADVISORY_LOCK_KEY = 0x6361745F6275696C
"""Key of the PostgreSQL advisory lock, the bytes of "cat_buil" as a 64-bit integer."""


@contextlib.contextmanager
def build_lock(engine: Engine, data_dir: Path) -> Iterator[None]:
    """Hold the build lock for the duration of the block.

    Raises `BuildLockedError` when another build still has it after `LOCK_WAIT_SECONDS`.
    """
    if engine.dialect.name == "postgresql":
        with _advisory_lock(engine):
            yield
        return
    database = make_url(str(engine.url)).database
    folder = Path(database).parent if database and database != ":memory:" else data_dir
    with _file_lock(folder / "build.lock"):
        yield


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if not _retry(lambda: _try_flock(descriptor)):
            raise BuildLockedError(
                f"another build is running (lock file {path}); try again when it has finished"
            )
        yield
    finally:
        os.close(descriptor)


def _try_flock(descriptor: int) -> bool:
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _retry(attempt: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    while not attempt():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.25)
    return True


@contextlib.contextmanager
def _advisory_lock(engine: Engine) -> Iterator[None]:
    with engine.connect() as connection:
        def attempt() -> bool:
            acquired = connection.execute(text("SELECT pg_try_advisory_lock(:key)"),
                                       {"key": ADVISORY_LOCK_KEY}).scalar()
            connection.commit()
            return bool(acquired)

        if not _retry(attempt):
            raise BuildLockedError(
                "another build is running (PostgreSQL advisory lock of the build is taken); "
                "try again when it has finished"
            )
        try:
            yield
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": ADVISORY_LOCK_KEY})
            connection.commit()
