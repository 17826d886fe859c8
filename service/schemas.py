"""Request and response bodies, and the checks that depend on configured limits.

msgspec checks types, required fields and unknown fields while decoding. `check_texts`
and `check_top_k` then apply the limits from the settings. Those limits cannot live in
the type annotations, because operators change them.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar.exceptions import ValidationException

from indexer.settings import Settings

NonEmptyList = Annotated[list[str], msgspec.Meta(min_length=1)]


class SimilarityRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Queries matched against posted products, or against the active catalog when
    `products` is absent."""

    text: Annotated[NonEmptyList, msgspec.Meta(
        description="Queries, one or more.", examples=[["What can I use to cut wood?"]])]
    products: Annotated[NonEmptyList | None, msgspec.Meta(
        description="Ad-hoc product descriptions to match the queries against; "
                    "omit to search the active catalog.")] = None
    top_k: Annotated[int, msgspec.Meta(description="Matches per query.")] = 2


class SearchRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Queries against the active catalog index."""

    queries: Annotated[NonEmptyList, msgspec.Meta(
        description="Queries, one or more.", examples=[["cordless drill"]])]
    top_k: Annotated[int, msgspec.Meta(description="Matches per query.")] = 10


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


class SearchMatch(msgspec.Struct):
    product_id: str
    title: str
    category: str
    brand: str
    score: float


class SearchResult(msgspec.Struct):
    query: str
    matches: list[SearchMatch]


class SearchResponse(msgspec.Struct):
    index_version: int
    results: list[SearchResult]


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


def check_top_k(top_k: int, settings: Settings) -> None:
    if not 1 <= top_k <= settings.max_top_k:
        _reject("top_k", f"must be between 1 and {settings.max_top_k}, got {top_k}")


def _reject(key: str, message: str) -> None:
    raise ValidationException(
        detail=f"Invalid request: {key} {message}",
        extra=[{"key": key, "message": message, "source": "body"}],
    )
