"""Run `python -m indexer build --activate` and kill the process at one stage.

Usage: python -m tests.integration.crash_build STAGE CATALOG, with the settings in the
environment. The kill is an injected fault: SIGKILL gives the build no chance to clean up.
"""

from __future__ import annotations

import os
import signal
import sys

from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import Insert

from indexer import artifacts, cli, versions
from indexer.embedding import Embedder


def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)


def arm(stage: str) -> None:
    if stage == "encoding":
        original_encode = Embedder.encode
        Embedder.encode = lambda self, texts, **kw: die() if texts else original_encode(self, texts, **kw)
    elif stage == "writing":
        artifacts._fsync_dir = die
    elif stage == "recording":
        versions.RECORD_BATCH = 2
        original_execute = Session.execute
        inserts = []

        def execute(self, statement, *args, **kwargs):
            if isinstance(statement, Insert):
                inserts.append(statement)
                if len(inserts) == 2:
                    die()
            return original_execute(self, statement, *args, **kwargs)

        Session.execute = execute
    elif stage == "activating":
        versions.activate = die
    else:
        raise SystemExit(f"unknown stage {stage!r}")


if __name__ == "__main__":
    arm(sys.argv[1])
    raise SystemExit(cli.main(["build", "--catalog", sys.argv[2], "--activate"]))
