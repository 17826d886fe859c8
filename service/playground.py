"""The search playground: a static HTML page at `/` and `/playground` that calls the JSON API.

The page, its stylesheet and its script live in `service/static/` and need no build step.
The script calls the API under `/api/v1` on the same origin, so the page works wherever
the service is mounted at the root path.
"""

from __future__ import annotations

from pathlib import Path

from litestar import Response, get
from litestar.datastructures import CacheControlHeader
from litestar.enums import MediaType
from litestar.handlers import HTTPRouteHandler
from litestar.router import Router
from litestar.static_files import create_static_files_router

STATIC_DIR = Path(__file__).parent / "static"
PAGE_FILE = STATIC_DIR / "playground.html"
STATIC_PATH = "/static/playground"
"""URL prefix of the stylesheet and script. playground.html links to them by this path."""

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
"""Content-Security-Policy of the page: it may load files from, and send requests to, its own
origin only."""

# The file names carry no content hash, so browsers must revalidate them after a deploy.
REVALIDATE = CacheControlHeader(no_cache=True)


def playground_routes() -> list[HTTPRouteHandler | Router]:
    """Create the handlers for the page and for its static files.

    The page is read once, here, so edits to playground.html take effect after a restart.
    The static files router reads the stylesheet and script on each request.
    """
    page = PAGE_FILE.read_bytes()
    headers = {"Content-Security-Policy": CONTENT_SECURITY_POLICY}

    @get(["/", "/playground"], include_in_schema=False, sync_to_thread=False,
         cache_control=REVALIDATE)
    def playground_page() -> Response[bytes]:
        return Response(page, media_type=MediaType.HTML, headers=headers)

    static_files = create_static_files_router(
        path=STATIC_PATH, directories=[STATIC_DIR], name="playground_static",
        cache_control=REVALIDATE, include_in_schema=False,
    )
    return [playground_page, static_files]
