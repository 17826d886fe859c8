"""Request and response bodies, and the checks that depend on configured limits.

msgspec checks types, required fields and unknown fields while decoding. `check_texts`
and `check_top_k` then apply the limits from the settings. Those limits cannot live in
the type annotations, because operators change them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from litestar.exceptions import ValidationException

from indexer.settings import Settings

NonEmptyList = Annotated[list[str], msgspec.Meta(min_length=1)]

MAX_FILTER_VALUES = 100
MAX_FILTER_ATTRIBUTES = 20

FilterValues = Annotated[list[str], msgspec.Meta(min_length=1, max_length=MAX_FILTER_VALUES)]
# Values are checked by `check_filters`, so that an error names the attribute.
AttributeFilters = Annotated[
    dict[str, Any],
    msgspec.Meta(max_length=MAX_FILTER_ATTRIBUTES,
                 description="Attribute name to a value (string, number or boolean), or to a list "
                             "of such values; numbers and booleans also match the same text in "
                             "CSV catalogs.",
                 examples=[{"voltage": "18V"}]),
]
Mode = Literal["dense", "lexical", "hybrid"]


class SimilarityRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Queries matched against posted products, or against the active catalog when
    `products` is absent."""

    text: Annotated[NonEmptyList, msgspec.Meta(
        description="Queries, one or more.", examples=[["What can I use to cut wood?"]])]
    products: Annotated[NonEmptyList | None, msgspec.Meta(
        description="Ad-hoc product descriptions to match the queries against; "
                    "omit to search the active catalog.")] = None
    top_k: Annotated[int, msgspec.Meta(description="Matches per query.")] = 2


class SearchFilters(msgspec.Struct, forbid_unknown_fields=True):
    """Equality filters. A product must match every field given, and one value of a list."""

    category: Annotated[str | FilterValues | None, msgspec.Meta(
        description="Category, or list of categories, to search within.")] = None
    brand: Annotated[str | FilterValues | None, msgspec.Meta(
        description="Brand, or list of brands, to search within.")] = None
    attributes: AttributeFilters | None = None


class SearchRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Queries against the active catalog index."""

    queries: Annotated[NonEmptyList, msgspec.Meta(
        description="Queries, one or more.", examples=[["cordless drill"]])]
    top_k: Annotated[int, msgspec.Meta(description="Matches per query.")] = 10
    mode: Annotated[Mode | None, msgspec.Meta(
        description="Ranking: `dense` (embeddings), `lexical` (BM25) or `hybrid` (both "
                    "fused); omit for the configured default.")] = None
    filters: SearchFilters | None = None
    min_score: Annotated[float | None, msgspec.Meta(
        description="Drop matches scoring under this value, in the mode's score scale.")] = None
    explain: Annotated[bool, msgspec.Meta(
        description="Add the dense and lexical score and rank of each match.")] = False


class Match(msgspec.Struct, omit_defaults=True):
    """A product matched to a query. `product` is the posted text or the stored title."""

    product: str
    score: float
    product_id: str | None = None


class QueryMatches(msgspec.Struct):
    query: str
    matches: list[Match]


class SimilarityResponse(msgspec.Struct, omit_defaults=True):
    """`query` and `matches` repeat the first query's result, as the original service
    returned them. `results` contains every query. `index_version` is set when the
    active catalog served the request."""

    query: str
    matches: list[Match]
    results: list[QueryMatches]
    index_version: int | None = None


class Explanation(msgspec.Struct):
    """Score parts of a match. A rank is the match's 1-based place among that ranking's
    candidates, null when it was not among them or the mode did not use that ranking."""

    dense_score: float | None
    dense_rank: int | None
    lexical_score: float | None
    lexical_rank: int | None
    fused_score: float | None


class SearchMatch(msgspec.Struct, omit_defaults=True):
    product_id: str
    title: str
    category: str
    brand: str
    score: float
    explanation: Explanation | None = None


class SearchResult(msgspec.Struct, omit_defaults=True):
    """One query's matches; `removed_by_min_score` counts top-k matches under `min_score`."""

    query: str
    matches: list[SearchMatch]
    removed_by_min_score: int | None = None


class SearchResponse(msgspec.Struct, omit_defaults=True):
    """`filter_matches` counts the products the filter allowed; it is present with `filters`."""

    index_version: int
    mode: str
    results: list[SearchResult]
    min_score: float | None = None
    filter_matches: int | None = None


class SimilarProductsResponse(msgspec.Struct):
    index_version: int
    product_id: str
    matches: list[SearchMatch]


class FieldProblem(msgspec.Struct):
    key: str
    message: str
    source: str = "body"


class ErrorBody(msgspec.Struct, omit_defaults=True):
    """Every 4xx and 5xx body: the status, what went wrong and, for 422, each invalid field."""

    status_code: int
    detail: str
    extra: list[FieldProblem] | None = None


class Health(msgspec.Struct):
    status: str


class Readiness(msgspec.Struct, omit_defaults=True):
    status: str
    reason: str | None = None
    model: str | None = None
    index_version: int | None = None
    products: int | None = None
    rejected_version: int | None = None
    rejected_reason: str | None = None


def check_texts(field: str, texts: list[str], limit: int, settings: Settings) -> None:
    """Raise `ValidationException` for too many texts, a blank text or an over-long text."""
    if len(texts) > limit:
        _reject(field, f"has {len(texts)} items; the maximum is {limit}")
    for number, text in enumerate(texts):
        if not text.strip():
            _reject(f"{field}[{number}]", "must not be empty or only whitespace")
        if len(text) > settings.max_text_chars:
            _reject(f"{field}[{number}]", f"has {len(text)} characters; "
                    f"the maximum is {settings.max_text_chars}")


def check_top_k(top_k: int, settings: Settings, source: str = "body") -> None:
    if not 1 <= top_k <= settings.max_top_k:
        _reject("top_k", f"must be between 1 and {settings.max_top_k}, got {top_k}", source)


def as_list(value: Any) -> list[Any]:
    """Return a filter field's values: a list as it is, a single value as a one-item list,
    and no value as an empty list."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def check_filters(filters: SearchFilters | None) -> None:
    """Raise `ValidationException` for a blank value, a blank attribute name, or an attribute
    value that is not a string, number, boolean or non-empty list of them."""
    if filters is None:
        return
    for field, value in (("category", filters.category), ("brand", filters.brand)):
        for number, item in enumerate(as_list(value)):
            key = f"filters.{field}" if isinstance(value, str) else f"filters.{field}[{number}]"
            if not item.strip():
                _reject(key, "must not be empty or only whitespace")
    for name, value in (filters.attributes or {}).items():
        key = f"filters.attributes.{name}"
        if not name.strip():
            _reject("filters.attributes", "has an empty attribute name")
        if isinstance(value, list):
            if not 1 <= len(value) <= MAX_FILTER_VALUES:
                _reject(key, f"must list 1 to {MAX_FILTER_VALUES} values, got {len(value)}")
            for number, item in enumerate(value):
                _check_scalar(f"{key}[{number}]", item)
        else:
            _check_scalar(key, value)


def _check_scalar(key: str, value: Any) -> None:
    if not isinstance(value, str | int | float | bool):
        _reject(key, f"must be a string, number or boolean, got {type(value).__name__}")
    if isinstance(value, str) and not value.strip():
        _reject(key, "must not be empty or only whitespace")


def _reject(key: str, message: str, source: str = "body") -> None:
    raise ValidationException(
        detail=f"Invalid request: {key} {message}",
        extra=[{"key": key, "message": message, "source": source}],
    )
