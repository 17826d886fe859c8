"""Browser fixtures: the real app with the playground routes, served over HTTP, and
Debian's headless Chromium driven by Playwright.

Playwright uses the system Chromium at CHROMIUM_PATH; `playwright install` is never needed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from indexer.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE_CATALOG = REPO_ROOT / "data" / "sample_catalog.csv"
ARTIFACTS_DIR = REPO_ROOT / "test-artifacts"

CHROMIUM_PATH = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 900}


@pytest.fixture
def serve_playground(serve) -> Callable[[Settings], contextlib.AbstractContextManager[str]]:
    """Start the real app with `serve`; each context yields the server's base URL."""

    @contextlib.contextmanager
    def start(settings: Settings) -> Iterator[str]:
        with serve(settings) as client:
            yield str(client.base_url).rstrip("/").removesuffix("/api/v1")

    return start


@pytest.fixture
def catalog_server(settings, build, serve_playground) -> Iterator[str]:
    """Base URL of a server whose active index is data/sample_catalog.csv, built as version 1."""
    build(SAMPLE_CATALOG)
    with serve_playground(settings) as base_url:
        yield base_url


@pytest.fixture
def empty_server(settings, serve_playground) -> Iterator[str]:
    """Base URL of a ready server with no index version, so /search returns 503."""
    with serve_playground(settings) as base_url:
        yield base_url


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM_PATH.exists():
        pytest.fail(f"Chromium not found at {CHROMIUM_PATH}; install it with "
                    "'apt-get install -y chromium' (Debian's package).")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM_PATH), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh page in its own browser context, so storage does not leak between tests.

    The test fails at teardown when the page raised an uncaught JavaScript error.
    """
    context = browser.new_context(viewport=VIEWPORT)
    new_page = context.new_page()
    page_errors: list[str] = []
    new_page.on("pageerror", lambda error: page_errors.append(str(error)))

    yield new_page

    context.close()
    if page_errors:
        pytest.fail(f"the page raised uncaught JavaScript errors: {page_errors}")


@pytest.fixture
def requested_urls(page: Page) -> list[str]:
    """Every URL that `page` requests from now on, in order."""
    urls: list[str] = []
    page.on("request", lambda request: urls.append(request.url))
    return urls


@pytest.fixture
def save_screenshot() -> Callable[[Page, str], Path]:
    """Save a full-page screenshot as test-artifacts/<name> and return its path."""

    def save(page: Page, name: str) -> Path:
        ARTIFACTS_DIR.mkdir(exist_ok=True)
        path = ARTIFACTS_DIR / name
        page.screenshot(path=str(path), full_page=True)
        return path

    return save
