"""HTTP routes under /api/v1: validate, call one search function, convert the result."""

from __future__ import annotations

import functools

from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE

from service import search
from service.filters import Filter
from service.holder import CatalogHit
from service.runtime import Runtime
from service.schemas import (
    ErrorBody,
    Explanation,
    Health,
    Match,
    QueryMatches,
    Readiness,
    SearchFilters,
    SearchMatch,
    SearchRequest,
    SearchResponse,
    SearchResult,
    SimilarityRequest,
    SimilarityResponse,
    SimilarProductsResponse,
    as_list,
    check_filters,
    check_texts,
    check_top_k,
)

INVALID = ResponseSpec(ErrorBody, description="Invalid request: the body names each invalid field")
UNAVAILABLE = ResponseSpec(ErrorBody, description="The model or the active index is not loaded")
NOT_FOUND = ResponseSpec(ErrorBody, description="The served index version has no such product")


class SearchController(Controller):
    path = "/api/v1"
    tags = ["search"]

    @get("/health", sync_to_thread=False)
    def health(self) -> Health:
        """Liveness: the process serves HTTP."""
        return Health("healthy")

    @get("/ready", sync_to_thread=False,
         responses={503: ResponseSpec(Readiness, description="Not ready, with the reason")})
    def ready(self, runtime: NamedDependency[Runtime]) -> Response[Readiness]:
        """Readiness: 200 once the model and the active index version (if any) are loaded."""
        holder = runtime.holder
        served = holder.current
        rejected = holder.rejected
        reason = None
        if runtime.embedder is None:
            reason = runtime.model_error or "the embedding model is still loading"
        elif not holder.checked:
            reason = "the active index version has not been checked yet"
        elif holder.active_exists and served is None:
            reason = "the active index version is not loaded" + (
                f": version {rejected.version} was rejected: {rejected.reason}" if rejected else "")
        body = Readiness(
            status="not ready" if reason else "ready", reason=reason,
            model=runtime.model_name,
            index_version=served.version if served else None,
            products=served.product_count if served else None,
            rejected_version=rejected.version if rejected else None,
            rejected_reason=rejected.reason if rejected else None,
        )
        return Response(body, status_code=HTTP_503_SERVICE_UNAVAILABLE if reason else HTTP_200_OK)

    @post("/similarity", status_code=HTTP_200_OK, sync_to_thread=True,
          responses={422: INVALID, 503: UNAVAILABLE})
    def similarity(self, data: JSONBody[SimilarityRequest],
                   runtime: NamedDependency[Runtime]) -> SimilarityResponse:
        """Match each query against the posted `products`, or against the active catalog."""
        settings = runtime.settings
        check_texts("text", data.text, settings.max_queries, settings)
        if data.products is not None:
            check_texts("products", data.products, settings.max_products, settings)
        check_top_k(data.top_k, settings)
        # One served version for the whole request: its model encodes, its index supplies
        # stored vectors, so that no vector of another model is mixed in.
        served_now = runtime.holder.current
        encoder = served_now.encoder if served_now else runtime.require_encoder()

        if data.products is not None:
            find_stored = (functools.partial(runtime.catalog_vectors.find, served_now)
                           if served_now else None)
            ranked = search.match_products(encoder, runtime.cache, data.text, data.products,
                                          data.top_k, find_stored)
            results = [QueryMatches(query, [Match(hit.text, hit.score) for hit in hits])
                       for query, hits in zip(data.text, ranked, strict=True)]
            return SimilarityResponse(results[0].query, results[0].matches, results)

        # Catalog matches keep the original service's cosine scores, so this route ranks dense.
        served = runtime.require_index()
        found = search.search_catalog(served.encoder, runtime.cache, served, data.text,
                                      search.SearchOptions(data.top_k, "dense"), settings)
        results = [QueryMatches(query, [Match(hit.title, hit.score, hit.product_id)
                                        for hit in result.hits])
                   for query, result in zip(data.text, found.results, strict=True)]
        return SimilarityResponse(results[0].query, results[0].matches, results, served.version)

    @post("/search", status_code=HTTP_200_OK, sync_to_thread=True,
          responses={422: INVALID, 503: UNAVAILABLE})
    def search(self, data: JSONBody[SearchRequest], runtime: NamedDependency[Runtime]) -> SearchResponse:
        """Search the active catalog index; the response names the version that served it."""
        settings = runtime.settings
        check_texts("queries", data.queries, settings.max_queries, settings)
        check_top_k(data.top_k, settings)
        check_filters(data.filters)
        options = search.SearchOptions(
            data.top_k, data.mode or settings.search_mode, to_filter(data.filters), data.min_score,
            data.explain,
        )
        runtime.require_embedder()
        served = runtime.require_index()

        found = search.search_catalog(served.encoder, runtime.cache, served, data.queries, options,
                                      settings)
        results = [
            SearchResult(query, [to_match(hit, options) for hit in result.hits],
                         None if options.min_score is None else result.removed)
            for query, result in zip(data.queries, found.results, strict=True)
        ]
        return SearchResponse(served.version, options.mode, results, options.min_score,
                              found.filter_matches)

    @get("/products/{product_id:str}/similar", sync_to_thread=True,
         responses={404: NOT_FOUND, 422: INVALID, 503: UNAVAILABLE})
    def similar(self, product_id: FromPath[str], runtime: NamedDependency[Runtime],
                top_k: FromQuery[int] = 10) -> SimilarProductsResponse:
        """Return the stored products closest to a stored product, by its stored vector."""
        check_top_k(top_k, runtime.settings, source="query")
        served = runtime.require_index()
        hits = search.similar_products(served, product_id, top_k)
        return SimilarProductsResponse(served.version, product_id,
                                       [to_match(hit, None) for hit in hits])


def to_filter(filters: SearchFilters | None) -> Filter:
    if filters is None:
        return Filter()
    return Filter(as_list(filters.category), as_list(filters.brand),
                  {name: as_list(value) for name, value in (filters.attributes or {}).items()})


def to_match(hit: CatalogHit, options: search.SearchOptions | None) -> SearchMatch:
    explanation = None
    if options is not None and hit.parts is not None:
        parts = hit.parts
        explanation = Explanation(parts.dense_score, parts.dense_rank, parts.lexical_score,
                                  parts.lexical_rank, hit.score if options.mode == "hybrid" else None)
    return SearchMatch(hit.product_id, hit.title, hit.category, hit.brand, hit.score, explanation)
