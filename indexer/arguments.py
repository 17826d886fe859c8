"""argparse types shared by the indexer's commands."""

from __future__ import annotations

import argparse
from collections.abc import Callable

MAX_RECORD_NUMBER = 2**31 - 1
"""Largest version number: the INTEGER range of PostgreSQL. SQLite raises OverflowError
for numbers past 2**63 - 1 instead of finding nothing, so larger values never reach it."""


def whole_number(low: int, high: int, values: str) -> Callable[[str], int]:
    """Return an argparse type that accepts whole numbers from `low` to `high`; `values`
    names the values in the error message."""

    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
        if not low <= number <= high:
            raise argparse.ArgumentTypeError(f"{number} is out of range: {values} run from {low} to {high}")
        return number

    return parse


record_number = whole_number(1, MAX_RECORD_NUMBER, "version numbers")
