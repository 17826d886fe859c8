"""Catalog loading and validation for CSV and JSON Lines files.

A catalog row becomes a `Product` or a `RowProblem`; nothing is dropped without a
problem that names its line and reason. Lines are counted from 1 and include the CSV
header, so a problem's line number is the one an editor shows.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from indexer.checksums import sha256_file
from indexer.errors import CatalogError

FIELDS = ("id", "title", "description", "category", "brand")
"""Product fields a column mapping may name; `id` and `title` are required."""

FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


@dataclass(frozen=True)
class Product:
    """One valid catalog row; `attributes` contains every column that is not a product field."""

    id: str
    title: str
    description: str = ""
    category: str = ""
    brand: str = ""
    attributes: dict[str, Any] = field(default_factory=dict)
    line: int = 0

    def text(self, template: str) -> str:
        """Render the embedded text, dropping lines that an empty optional field left blank."""
        rendered = template.format(
            title=self.title, description=self.description,
            category=self.category, brand=self.brand,
        )
        return "\n".join(part.strip() for part in rendered.splitlines() if part.strip())


@dataclass(frozen=True)
class RowProblem:
    """The reason the row starting at `line` was rejected."""

    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass(frozen=True)
class ColumnMap:
    """Mapping from product field to catalog column; a field not named keeps its own name."""

    columns: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, spec: str) -> ColumnMap:
        """Parse `field=column,...`, e.g. `id=product_uid,title=product_title`.

        Raises `CatalogError` for an unknown field, a repeated field or a missing `=`.
        """
        columns: dict[str, str] = {}
        for pair in filter(None, (part.strip() for part in spec.split(","))):
            name, sep, column = (piece.strip() for piece in pair.partition("="))
            if not sep or not name or not column:
                raise CatalogError(f"invalid column mapping {pair!r}: expected FIELD=COLUMN")
            if name not in FIELDS:
                raise CatalogError(
                    f"invalid column mapping {pair!r}: unknown field {name!r}, "
                    f"expected one of {', '.join(FIELDS)}"
                )
            if name in columns:
                raise CatalogError(f"invalid column mapping: field {name!r} is mapped twice")
            columns[name] = column
        return cls(columns)

    def column(self, name: str) -> str:
        return self.columns.get(name, name)


@dataclass(frozen=True)
class Catalog:
    """The result of reading one catalog file."""

    path: Path
    format: str
    checksum: str
    """SHA-256 of the file's bytes, hex."""
    products: list[Product]
    problems: list[RowProblem]


def load_catalog(
    path: str | Path, columns: ColumnMap | None = None, template: str = "{title}\n{description}",
    format: str | None = None,
) -> Catalog:
    """Read and validate a catalog; invalid rows become `problems`, never exceptions.

    Raises `CatalogError` when the file cannot be read as a whole: it is missing, its
    format is unknown, or its header lacks a required column.
    """
    path = Path(path)
    columns = columns or ColumnMap()
    if path.is_dir():
        raise CatalogError(f"{path} is a folder; pass the catalog file inside it")
    if not path.is_file():
        raise CatalogError(f"catalog file not found: {path}")

    format = format or FORMATS.get(path.suffix.lower())
    if format not in ("csv", "jsonl"):
        raise CatalogError(
            f"cannot tell the format of {path}: use a .csv, .jsonl or .ndjson file, "
            "or pass --format csv or --format jsonl"
        )

    rows = _read_csv(path, columns) if format == "csv" else _read_jsonl(path)
    validator = _RowValidator(columns, template)
    for line, values in rows:
        validator.add(line, values)
    return Catalog(path, format, sha256_file(path), validator.products, validator.problems)


Row = tuple[int, "dict[str, Any] | RowProblem"]


def _read_csv(path: Path, columns: ColumnMap) -> Iterator[Row]:
    # surrogateescape keeps undecodable bytes as lone surrogates, so that the row that
    # contains them is reported instead of the whole file failing to decode.
    with path.open(encoding="utf-8-sig", errors="surrogateescape", newline="") as stream:
        reader = csv.reader(stream, strict=True)
        header = next(reader, None)
        if header is None:
            raise CatalogError(f"{path} is empty: expected a header row")
        header = [name.strip() for name in header]
        for name in ("id", "title"):
            if columns.column(name) not in header:
                raise CatalogError(
                    f"{path}: required column {columns.column(name)!r} (field {name}) is "
                    f"not in the header {header}; map it with --columns {name}=COLUMN"
                )
        for name, column in columns.columns.items():
            if column not in header:
                raise CatalogError(
                    f"{path}: column {column!r}, mapped to field {name}, is not in the header {header}"
                )

        line = reader.line_num
        while True:
            start = line + 1
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as error:
                if reader.line_num == line:
                    yield start, RowProblem(start, f"malformed CSV: {error}")
                    return
                line = reader.line_num
                yield start, RowProblem(start, f"malformed CSV: {error}")
                continue
            line = reader.line_num
            if cells and len(cells) != len(header):
                reason = f"has {len(cells)} fields, the header has {len(header)}"
                yield start, RowProblem(start, reason)
                continue
            yield start, dict(zip(header, cells, strict=True)) if cells else {}


def _read_jsonl(path: Path) -> Iterator[Row]:
    with path.open("rb") as stream:
        for line, raw in enumerate(stream, start=1):
            try:
                text = raw.decode("utf-8-sig" if line == 1 else "utf-8")
            except UnicodeDecodeError as error:
                yield line, RowProblem(line, f"undecodable bytes (not UTF-8) at byte {error.start + 1}")
                continue
            if not text.strip():
                yield line, {}
                continue
            try:
                values = json.loads(text.rstrip("\r\n"))
            except json.JSONDecodeError as error:
                yield line, RowProblem(line, f"invalid JSON: {error.msg} at column {error.colno}")
                continue
            if not isinstance(values, dict):
                yield line, RowProblem(line, "expected a JSON object")
                continue
            yield line, values


class _RowValidator:
    """Turns raw rows into products and problems, tracking duplicate ids."""

    def __init__(self, columns: ColumnMap, template: str) -> None:
        self.columns = columns
        self.template = template
        self.products: list[Product] = []
        self.problems: list[RowProblem] = []
        self.first_line: dict[str, int] = {}
        self.field_columns = {columns.column(name) for name in FIELDS}

    def add(self, line: int, values: dict[str, Any] | RowProblem) -> None:
        result = values if isinstance(values, RowProblem) else self._product(line, values)
        if isinstance(result, RowProblem):
            self.problems.append(result)
        else:
            self.first_line[result.id] = line
            self.products.append(result)

    def _product(self, line: int, values: dict[str, Any]) -> Product | RowProblem:
        if not any(_is_present(value) for value in values.values()):
            return RowProblem(line, "empty row")
        for column, value in values.items():
            if isinstance(value, str) and _has_undecodable(value):
                return RowProblem(line, f"undecodable bytes (not UTF-8) in column {column!r}")

        fields: dict[str, str] = {}
        for name in FIELDS:
            value = values.get(self.columns.column(name))
            if name == "id" and isinstance(value, int) and not isinstance(value, bool):
                value = str(value)
            if value is not None and not isinstance(value, str):
                return RowProblem(line, f"{name} must be a string, got {type(value).__name__}")
            fields[name] = (value or "").strip()

        if not fields["id"]:
            return RowProblem(line, "missing id")
        if not fields["title"]:
            return RowProblem(line, "missing title")
        if fields["id"] in self.first_line:
            first = self.first_line[fields["id"]]
            return RowProblem(line, f"duplicate id {fields['id']!r}, first seen on line {first}")

        attributes = {
            column: value for column, value in values.items()
            if column not in self.field_columns and _is_present(value)
        }
        product = Product(**fields, attributes=attributes, line=line)
        if not product.text(self.template).strip() or not any(c.isalnum() for c in product.title):
            return RowProblem(line, "empty text: the title has no letters or digits")
        return product


def _is_present(value: Any) -> bool:
    return value is not None and (not isinstance(value, str) or bool(value.strip()))


def _has_undecodable(text: str) -> bool:
    return any("\udc80" <= char <= "\udcff" for char in text)
