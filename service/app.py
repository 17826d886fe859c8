"""The Litestar application factory."""

from __future__ import annotations

import functools
from collections.abc import Callable

from litestar import Litestar
from litestar.config.allowed_hosts import AllowedHostsConfig
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.middleware.base import DefineMiddleware
from litestar.openapi.config import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin, SwaggerRenderPlugin
from litestar.plugins.prometheus import PrometheusConfig, PrometheusController

from indexer.database import create_database_engine, migrate
from indexer.embedding import Embedder, load_embedder
from indexer.settings import Settings, split_list
from service.admin import AdminController, AuditController
from service.auth import API_KEY_HEADER, ApiKeyMiddleware, log_access_mode, require_scope
from service.errors import EXCEPTION_HANDLERS
from service.limits import STORE_NAME, rate_limit_middleware, rate_limit_store
from service.openapi import document_access_and_limits
from service.playground import playground_routes
from service.request_id import HEADER as REQUEST_ID_HEADER
from service.request_id import RequestIdMiddleware
from service.routes import SearchController
from service.runtime import Runtime


class MetricsController(PrometheusController):
    """Prometheus exposition of Litestar's request metrics and the service's own.

    It is left out of the OpenAPI schema, which would describe its text format as JSON;
    docs/monitoring.md lists the metrics.
    """

    path = "/metrics"
    include_in_schema = False


def create_app(settings: Settings | None = None,
               load_model: Callable[[], Embedder] | None = None) -> Litestar:
    """Build the app: migrate the database, then load the model and index in the background.

    `load_model` replaces loading the model the settings name, so that tests can share
    one loaded model between apps.
    """
    settings = settings or Settings.from_env()
    engine = create_database_engine(settings.database_url)
    migrate(engine)
    runtime = Runtime(settings, engine, load_model or functools.partial(load_embedder, settings))
    store = rate_limit_store(settings)

    prometheus = PrometheusConfig(app_name="catalog-search", prefix="catalog_search_http",
                                  group_path=True, exclude=[MetricsController.path])
    app = Litestar(
        route_handlers=[SearchController, AdminController, AuditController, MetricsController,
                        *playground_routes()],
        # Outermost first: the key is resolved before the rate limits count it.
        middleware=[RequestIdMiddleware(), prometheus.middleware,
                    DefineMiddleware(ApiKeyMiddleware, sessions=runtime.sessions),
                    *rate_limit_middleware(settings)],
        guards=[require_scope],
        dependencies={"runtime": Provide(lambda: runtime, use_cache=True, sync_to_thread=False)},
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        stores={STORE_NAME: store},
        lifespan=[store],
        on_startup=[functools.partial(log_access_mode, settings), runtime.start],
        on_shutdown=[runtime.stop, engine.dispose],
        request_max_body_size=settings.max_body_bytes,
        cors_config=cors_config(settings),
        allowed_hosts=AllowedHostsConfig(allowed_hosts=split_list(settings.allowed_hosts)),
        logging_config=None,  # structlog, configured by the entry point, renders all logs
        openapi_config=OpenAPIConfig(
            title="catalog-search", version="0.1.0",
            description="Semantic product search over a versioned catalog index.",
            path="/docs", render_plugins=[ScalarRenderPlugin(), SwaggerRenderPlugin(path="/swagger")],
        ),
        state=State({"runtime": runtime}),
    )
    document_access_and_limits(app.openapi_schema, settings)
    return app


def cors_config(settings: Settings) -> CORSConfig | None:
    """Return the CORS policy for `cors_allow_origins`, or None to send no CORS headers."""
    origins = split_list(settings.cors_allow_origins)
    if not origins:
        return None
    return CORSConfig(
        allow_origins=origins, allow_methods=["GET", "POST"],
        allow_headers=["Content-Type", API_KEY_HEADER, REQUEST_ID_HEADER],
        expose_headers=["Retry-After", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset",
                        "RateLimit-Policy", REQUEST_ID_HEADER],
    )
