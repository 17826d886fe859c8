"""Fixtures shared by unit and integration tests."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import pytest

from indexer.settings import Settings

HEADER = ["id", "title", "description", "category", "brand"]

TOOLS = [
    ["T-1", "Circular Saw 7-1/4 in.", "Corded circular saw that cuts wood, plywood and lumber.", "Saws", "Acme"],
    ["T-2", "Claw Hammer 16 oz", "Steel claw hammer for driving and pulling nails.", "Hand Tools", "Acme"],
    ["T-3", "Tape Measure 25 ft", "Measuring tape with a magnetic hook for length and distance.", "Measuring", "Bolt"],
    ["T-4", "Ratchet Screwdriver", "Screwdriver with a ratchet handle and 12 bits for screws.", "Hand Tools", "Bolt"],
    ["T-5", "Cordless Drill 18V", "Battery drill driver for drilling holes in wood and metal.", "Power Tools", "Acme"],
    ["T-6", "Safety Glasses", "Clear eye protection with side shields.", "Safety", "Guard"],
]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Embedded-mode settings whose database and index folders live in the test's folder."""
    return Settings(data_dir=tmp_path / "var", poll_interval_seconds=0.2)


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
