"""HTTP routes under /api/v1: validate, call one search function, convert the result."""

from __future__ import annotations

from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE

from service import search
from service.runtime import Runtime
from service.schemas import (
    ErrorBody,
    Health,
    Match,
    QueryMatches,
    Readiness,
    SearchMatch,
    SearchRequest,
    SearchResponse,
    SearchResult,
    SimilarityRequest,
    SimilarityResponse,
    check_texts,
    check_top_k,
)

INVALID = ResponseSpec(ErrorBody, description="Invalid request: the body names each invalid field")
UNAVAILABLE = ResponseSpec(ErrorBody, description="The model or the active index is not loaded")


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
            model=runtime.embedder.name if runtime.embedder else None,
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
        embedder = runtime.require_embedder()

        if data.products is not None:
            ranked = search.match_products(embedder, runtime.cache, data.text, data.products,
                                          data.top_k)
            results = [QueryMatches(query, [Match(hit.text, hit.score) for hit in hits])
                       for query, hits in zip(data.text, ranked, strict=True)]
            return SimilarityResponse(results[0].query, results[0].matches, results)

        served = runtime.require_index()
        found = search.search_catalog(embedder, runtime.cache, served, data.text, data.top_k,
                                      settings.low_score_threshold)
        results = [QueryMatches(query, [Match(hit.title, hit.score, hit.product_id) for hit in hits])
                   for query, hits in zip(data.text, found, strict=True)]
        return SimilarityResponse(results[0].query, results[0].matches, results, served.version)

    @post("/search", status_code=HTTP_200_OK, sync_to_thread=True,
          responses={422: INVALID, 503: UNAVAILABLE})
    def search(self, data: JSONBody[SearchRequest], runtime: NamedDependency[Runtime]) -> SearchResponse:
        """Search the active catalog index; the response names the version that served it."""
        settings = runtime.settings
        check_texts("queries", data.queries, settings.max_queries, settings)
        check_top_k(data.top_k, settings)
        embedder = runtime.require_embedder()
        served = runtime.require_index()

        found = search.search_catalog(embedder, runtime.cache, served, data.queries, data.top_k,
                                      settings.low_score_threshold)
        results = [
            SearchResult(query, [SearchMatch(hit.product_id, hit.title, hit.category, hit.brand, hit.score)
                                 for hit in hits])
            for query, hits in zip(data.queries, found, strict=True)
        ]
        return SearchResponse(served.version, results)
