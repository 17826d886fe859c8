"""SHA-256 checksums of files, read in blocks so that large artifacts need little memory."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

BLOCK_BYTES = 1 << 20


def sha256_files(paths: Iterable[Path]) -> str:
    """Return the hex SHA-256 of the files' bytes, concatenated in the given order."""
    digest = hashlib.sha256()
    for path in paths:
        with path.open("rb") as stream:
            for block in iter(lambda: stream.read(BLOCK_BYTES), b""):
                digest.update(block)
    return digest.hexdigest()


def sha256_file(path: Path) -> str:
    """Return the hex SHA-256 of one file."""
    return sha256_files([path])
