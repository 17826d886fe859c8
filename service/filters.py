"""Equality filters on category, brand and attributes, as sorted position arrays.

A served version keeps, per filterable value, the sorted FAISS positions of the products
that have it. A request's filter becomes the intersection of those arrays, which the
rankings then search within; nothing is filtered after retrieval.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

Scalar = str | int | float | bool

NO_POSITIONS = np.empty(0, dtype=np.int64)


def canonical(value: Scalar) -> str:
    """Return the form a value is compared in: strings as they are, other JSON scalars as
    JSON (`18`, `2.5`, `true`), so that a CSV cell "18" and a JSON number 18 match."""
    return value if isinstance(value, str) else json.dumps(value)


@dataclass(frozen=True)
class Filter:
    """Requested values per field; a product matches when, for every field, it has one of
    that field's values."""

    categories: Sequence[str] = ()
    brands: Sequence[str] = ()
    attributes: Mapping[str, Sequence[Scalar]] | None = None

    def is_empty(self) -> bool:
        return not self.categories and not self.brands and not self.attributes


class CatalogFilters:
    """Positions of the products that have each category, brand and attribute value."""

    def __init__(self, categories: Sequence[str], brands: Sequence[str],
                 attributes: Iterable[Mapping[str, Any]]) -> None:
        self._categories = _group(enumerate(categories))
        self._brands = _group(enumerate(brands))
        self._attributes = _group(
            ((position, (name, canonical(value))))
            for position, values in enumerate(attributes)
            for name, value in _scalar_items(values)
        )

    def allowed(self, wanted: Filter) -> np.ndarray | None:
        """Return the sorted positions matching `wanted`, or None when it filters nothing."""
        if wanted.is_empty():
            return None
        groups = []
        if wanted.categories:
            groups.append(_union(self._categories.get(value) for value in wanted.categories))
        if wanted.brands:
            groups.append(_union(self._brands.get(value) for value in wanted.brands))
        for name, values in (wanted.attributes or {}).items():
            groups.append(_union(self._attributes.get((name, canonical(value))) for value in values))

        allowed = groups[0]
        for group in groups[1:]:
            allowed = np.intersect1d(allowed, group, assume_unique=True)
        return allowed


def _scalar_items(values: Mapping[str, Any]) -> Iterable[tuple[str, Scalar]]:
    """Yield filterable (name, value) pairs: scalars, and each scalar of a list value.

    Nested objects and nulls cannot be compared for equality and are skipped.
    """
    for name, value in values.items():
        items = value if isinstance(value, list) else [value]
        for item in items:
            if isinstance(item, str | int | float | bool):
                yield name, item


def _group(pairs: Iterable[tuple[int, Any]]) -> dict[Any, np.ndarray]:
    grouped: dict[Any, list[int]] = defaultdict(list)
    for position, key in pairs:
        if key != "":
            grouped[key].append(position)
    # np.unique also drops a repeat, which a list attribute such as ["red", "red"] yields.
    return {key: np.unique(np.asarray(positions, dtype=np.int64)) for key, positions in grouped.items()}


def _union(groups: Iterable[np.ndarray | None]) -> np.ndarray:
    present = [group for group in groups if group is not None]
    if not present:
        return NO_POSITIONS
    return present[0] if len(present) == 1 else np.unique(np.concatenate(present))
