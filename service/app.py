"""The Litestar application factory."""

from __future__ import annotations

import functools
from collections.abc import Callable

from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi.config import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin, SwaggerRenderPlugin
from litestar.plugins.prometheus import PrometheusConfig, PrometheusController

from indexer.database import create_database_engine, migrate
from indexer.embedding import Embedder, load_embedder
from indexer.settings import Settings
from service.admin import AdminController
from service.errors import EXCEPTION_HANDLERS
from service.playground import playground_routes
from service.request_id import RequestIdMiddleware
from service.routes import SearchController
from service.runtime import Runtime


class MetricsController(PrometheusController):
    """Prometheus exposition of Litestar's request metrics and the service's own."""

    path = "/metrics"


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

    prometheus = PrometheusConfig(app_name="catalog-search", prefix="catalog_search_http",
                                  group_path=True, exclude=[MetricsController.path])
    return Litestar(
        route_handlers=[SearchController, AdminController, MetricsController, *playground_routes()],
        middleware=[RequestIdMiddleware(), prometheus.middleware],
        dependencies={"runtime": Provide(lambda: runtime, use_cache=True, sync_to_thread=False)},
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        on_startup=[runtime.start],
        on_shutdown=[runtime.stop, engine.dispose],
        request_max_body_size=settings.max_body_bytes,
        logging_config=None,  # structlog, configured by the entry point, renders all logs
        openapi_config=OpenAPIConfig(
            title="catalog-search", version="0.1.0",
            description="Semantic product search over a versioned catalog index.",
            path="/docs", render_plugins=[ScalarRenderPlugin(), SwaggerRenderPlugin(path="/swagger")],
        ),
        state=State({"runtime": runtime}),
    )
