"""The search playground page, driven in headless Chromium against the real app.

Each test that checks what a user sees saves a screenshot to test-artifacts/.
"""

from __future__ import annotations

import csv
import re

import httpx
import pytest
from playwright.sync_api import Page, Route, expect

from tests.browser.conftest import SAMPLE_CATALOG

pytestmark = pytest.mark.browser

WOOD_QUERY = "What can I use to cut wood?"
NAILS_QUERY = "Something to drive nails with"
ADHOC_PRODUCTS = [
    "Circular Saw 7-1/4 in. 15 Amp: corded saw for cutting wood, plywood and lumber",
    "Claw Hammer 16 oz: steel hammer for driving and pulling nails",
    "Tape Measure 25 ft: measuring tape with a magnetic hook",
    "Ratchet Screwdriver with 12 Bits: screwdriver with a ratcheting handle",
]
SCORE_PATTERN = re.compile(r"^-?\d\.\d{4}$")


def open_playground(page: Page, base_url: str, path: str = "/playground") -> None:
    page.goto(base_url + path)
    expect(page.get_by_role("tab", name="Catalog search")).to_be_visible()


def urls_off_origin(urls: list[str], base_url: str) -> list[str]:
    """Return the URLs that leave the server under test; `data:` URLs make no request."""
    return [url for url in urls if not url.startswith(base_url + "/") and not url.startswith("data:")]


def test_default_ranking_finds_model_number(page, catalog_server):
    open_playground(page, catalog_server)
    page.get_by_label("Query", exact=True).fill("HD-20B")

    first = page.locator("#search-output .result").first
    expect(first.locator(".result-title")).to_contain_text("HD-20B")
    expect(page.get_by_label("Ranking")).to_have_value("")


def sample_product_count() -> int:
    with SAMPLE_CATALOG.open(encoding="utf-8", newline="") as stream:
        return sum(1 for _ in csv.DictReader(stream))


def test_search_shows_saw_first(page, catalog_server, requested_urls, save_screenshot):
    # A whole question ranks by meaning: hybrid ranking puts a wood glue whose description
    # mentions wood and cutting first.
    open_playground(page, catalog_server)
    page.get_by_label("Ranking").select_option("dense")
    page.get_by_label("Query", exact=True).fill(WOOD_QUERY)

    output = page.locator("#search-output")
    results = output.locator(".result")
    expect(results).to_have_count(10)
    first = results.first
    expect(first.locator(".result-title")).to_contain_text("Saw")
    expect(first.locator(".score-value")).to_have_text(SCORE_PATTERN)
    expect(first.locator(".result-fields")).to_contain_text(re.compile(r"Product ID\s*HT-\d{4}"))
    expect(output.locator(".summary")).to_have_text(
        f"10 results for “{WOOD_QUERY}” from index version 1")
    expect(output).to_have_attribute("aria-live", "polite")
    status = page.locator("#index-status")
    expect(status).to_contain_text("Index version 1")
    expect(status).to_contain_text(f"{sample_product_count()} products")
    save_screenshot(page, "playground-search.png")

    # The page shows the API's own first match, not a reformatted or reordered one.
    api = httpx.post(f"{catalog_server}/api/v1/search",
                     json={"queries": [WOOD_QUERY], "top_k": 10, "mode": "dense"}, timeout=60).json()
    best = api["results"][0]["matches"][0]
    expect(first.locator(".result-title")).to_have_text(best["title"])
    expect(first.locator(".result-fields dd").first).to_have_text(best["product_id"])
    expect(first.locator(".score-value")).to_have_text(f"{best['score']:.4f}")

    expect(first.locator(".result-fields")).to_contain_text(f"Category{best['category']}")
    expect(first.locator(".result-fields")).to_contain_text(f"Brand{best['brand']}")

    assert urls_off_origin(requested_urls, catalog_server) == []


def test_search_waits_for_typing_pause(page, catalog_server):
    open_playground(page, catalog_server)
    searches: list[str] = []
    page.on("request", lambda request: searches.append(request.url)
            if request.url.endswith("/api/v1/search") else None)

    page.get_by_label("Query", exact=True).press_sequentially(WOOD_QUERY, delay=40)

    expect(page.locator("#search-output .summary")).to_contain_text(f"for “{WOOD_QUERY}”")
    # Keys 40 ms apart fall inside the 250 ms debounce, so the whole query should cost one
    # request. The bound leaves room for a stall on a busy machine. Without a debounce,
    # each of the 27 keys would send a request.
    assert 1 <= len(searches) <= 3


def test_adhoc_match_per_query(page, catalog_server, requested_urls, save_screenshot):
    open_playground(page, catalog_server)
    adhoc_tab = page.get_by_role("tab", name="Ad-hoc match")
    adhoc_tab.click()
    expect(adhoc_tab).to_have_attribute("aria-selected", "true")

    page.get_by_label("Queries, one per line").fill(f"{WOOD_QUERY}\n{NAILS_QUERY}")
    # A blank line between products is skipped, not sent.
    page.get_by_label("Products, one per line").fill(
        "\n".join(ADHOC_PRODUCTS[:2]) + "\n\n" + "\n".join(ADHOC_PRODUCTS[2:]))
    expect(page.locator("#adhoc-queries-count")).to_have_text("2 queries")
    expect(page.locator("#adhoc-products-count")).to_have_text("4 products")
    page.get_by_label("Matches per query (top_k)").fill("2")
    page.get_by_role("button", name="Match", exact=True).click()

    output = page.locator("#adhoc-output")
    expect(output.locator(".summary")).to_have_text("2 queries matched against 4 products")
    groups = output.locator(".query-group")
    expect(groups).to_have_count(2)

    wood = groups.nth(0)
    expect(wood.locator("h2")).to_have_text(f"Query 1: {WOOD_QUERY}")
    expect(wood.locator(".result")).to_have_count(2)
    expect(wood.locator(".result-title").first).to_have_text(ADHOC_PRODUCTS[0])
    expect(wood.locator(".score-value").first).to_have_text(SCORE_PATTERN)

    nails = groups.nth(1)
    expect(nails.locator("h2")).to_have_text(f"Query 2: {NAILS_QUERY}")
    expect(nails.locator(".result")).to_have_count(2)
    expect(nails.locator(".result-title").first).to_have_text(ADHOC_PRODUCTS[1])
    expect(output).to_have_attribute("aria-live", "polite")
    save_screenshot(page, "playground-adhoc.png")

    assert urls_off_origin(requested_urls, catalog_server) == []


def test_tabs_follow_keyboard(page, empty_server):
    open_playground(page, empty_server)
    search_tab = page.get_by_role("tab", name="Catalog search")
    adhoc_tab = page.get_by_role("tab", name="Ad-hoc match")
    search_panel = page.locator("#panel-search")
    adhoc_panel = page.locator("#panel-adhoc")

    search_tab.focus()
    page.keyboard.press("ArrowRight")
    expect(adhoc_tab).to_be_focused()
    expect(adhoc_tab).to_have_attribute("aria-selected", "true")
    expect(search_tab).to_have_attribute("aria-selected", "false")
    expect(adhoc_panel).to_be_visible()
    expect(search_panel).to_be_hidden()

    page.keyboard.press("ArrowRight")
    expect(search_tab).to_be_focused()
    expect(search_tab).to_have_attribute("aria-selected", "true")

    page.keyboard.press("End")
    expect(adhoc_tab).to_be_focused()
    page.keyboard.press("Home")
    expect(search_tab).to_be_focused()
    expect(search_panel).to_be_visible()

    # Only the selected tab is in the Tab order, so Tab leaves the tab list for the panel.
    page.keyboard.press("Tab")
    expect(page.get_by_label("Query", exact=True)).to_be_focused()

    adhoc_tab.focus()
    page.keyboard.press("Enter")
    expect(adhoc_tab).to_have_attribute("aria-selected", "true")
    expect(adhoc_panel).to_be_visible()


def test_hash_opens_adhoc_tab(page, empty_server):
    open_playground(page, empty_server, "/playground#adhoc")

    expect(page.get_by_role("tab", name="Ad-hoc match")).to_have_attribute("aria-selected", "true")
    expect(page.locator("#panel-adhoc")).to_be_visible()


def test_search_without_index_shows_503(page, empty_server, save_screenshot):
    expected = httpx.post(f"{empty_server}/api/v1/search", json={"queries": [WOOD_QUERY]},
                          timeout=60)
    assert expected.status_code == 503
    open_playground(page, empty_server)
    expect(page.locator("#index-status")).to_contain_text("No active index version")

    page.get_by_label("Query", exact=True).fill(WOOD_QUERY)

    error = page.locator("#search-output .error")
    expect(error.locator("h2")).to_have_text("The service cannot answer yet (HTTP 503)")
    expect(error.locator("p")).to_have_text(expected.json()["detail"])
    expect(error).to_contain_text("no index version is active")
    expect(page.locator("#search-output .result")).to_have_count(0)
    save_screenshot(page, "playground-error-no-index.png")


def test_rejected_top_k_shows_fields(page, empty_server, save_screenshot):
    open_playground(page, empty_server)
    page.get_by_label("Results (top_k)").fill("500")
    page.get_by_label("Query", exact=True).fill(WOOD_QUERY)

    error = page.locator("#search-output .error")
    expect(error.locator("h2")).to_have_text("The request was rejected as invalid (HTTP 422)")
    expect(error.locator("p")).to_have_text("Invalid request: top_k must be between 1 and 100, got 500")
    expect(error.locator("li")).to_have_text(["top_k: must be between 1 and 100, got 500"])
    save_screenshot(page, "playground-error-top-k.png")


def test_adhoc_error_names_line(page, empty_server):
    open_playground(page, empty_server, "/playground#adhoc")
    page.get_by_label("Queries, one per line").fill(WOOD_QUERY)
    # The over-long product is the second one sent but sits on line 3 of the box.
    page.get_by_label("Products, one per line").fill(f"{ADHOC_PRODUCTS[0]}\n\n{'x' * 2001}")
    page.get_by_role("button", name="Match", exact=True).click()

    error = page.locator("#adhoc-output .error")
    expect(error.locator("h2")).to_have_text("The request was rejected as invalid (HTTP 422)")
    expect(error.locator("li")).to_have_text(
        ["products[1] (Products, line 3): has 2001 characters; the maximum is 2000"])


def test_network_failure_shows_message(page, catalog_server, save_screenshot):
    open_playground(page, catalog_server)
    expect(page.locator("#index-status")).to_contain_text("Index version 1")

    def drop_connection(route: Route) -> None:
        route.abort("connectionrefused")

    page.route("**/api/v1/search", drop_connection)
    page.get_by_label("Query", exact=True).fill(WOOD_QUERY)

    error = page.locator("#search-output .error")
    expect(error.locator("h2")).to_have_text("Could not reach the service")
    expect(error.locator("p")).to_contain_text(f"{catalog_server}/api/v1/search")
    expect(error.locator("p")).to_contain_text("Check that the service is running")
    save_screenshot(page, "playground-error-network.png")


def test_api_key_kept_in_session(page, empty_server):
    open_playground(page, empty_server)
    key_field = page.get_by_label("API key")
    key_field.fill("test-key-1")

    with page.expect_request("**/api/v1/search") as with_key:
        page.get_by_label("Query", exact=True).fill("drill")
    assert with_key.value.headers.get("x-api-key") == "test-key-1"
    assert page.evaluate("sessionStorage.length") == 1
    assert page.evaluate("localStorage.length") == 0

    # sessionStorage survives a reload of the same tab.
    page.reload()
    expect(page.get_by_label("API key")).to_have_value("test-key-1")

    # A new tab starts without the key.
    other_tab = page.context.new_page()
    open_playground(other_tab, empty_server)
    expect(other_tab.get_by_label("API key")).to_have_value("")
    other_tab.close()

    page.get_by_label("API key").fill("")
    assert page.evaluate("sessionStorage.length") == 0
    with page.expect_request("**/api/v1/search") as without_key:
        page.get_by_label("Query", exact=True).fill("hammer")
    assert "x-api-key" not in without_key.value.headers


@pytest.mark.parametrize("path", ["/", "/playground"])
def test_page_served_with_policy(empty_server, path):
    response = httpx.get(empty_server + path, timeout=30)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert "<title>Search playground" in response.text


@pytest.mark.parametrize("name, media_type", [
    ("playground.css", "text/css"),
    ("playground.js", "text/javascript"),
])
def test_static_files_served(empty_server, name, media_type):
    response = httpx.get(f"{empty_server}/static/playground/{name}", timeout=30)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith(media_type)
    assert response.headers["cache-control"] == "no-cache"
