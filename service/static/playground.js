// Search playground: calls the catalog-search JSON API on this page's own origin and renders
// what it returns. API data is always inserted with textContent, never parsed as HTML.
"use strict";

(() => {
  const API_BASE = "/api/v1";
  const SEARCH_DEBOUNCE_MS = 250;
  const STATUS_REFRESH_MS = 60000;
  // Shorter while the service is loading or has no active index, so the page notices a new one.
  const STATUS_RETRY_MS = 5000;
  const API_KEY_STORAGE_KEY = "catalog-search.playground.api-key";

  // Fields listed under each search result's title, in this order. A field that a match does
  // not contain is skipped.
  const RESULT_FIELDS = [
    { key: "product_id", label: "Product ID" },
    { key: "category", label: "Category" },
    { key: "brand", label: "Brand" },
  ];

  const element = (id) => document.getElementById(id);

  const apiKeyInput = element("api-key");
  const indexStatus = element("index-status");
  const searchForm = element("search-form");
  const searchQuery = element("search-query");
  const searchTopK = element("search-top-k");
  const searchMode = element("search-mode");
  const searchOutput = element("search-output");
  const adhocForm = element("adhoc-form");
  const adhocQueries = element("adhoc-queries");
  const adhocProducts = element("adhoc-products");
  const adhocTopK = element("adhoc-top-k");
  const adhocSubmit = element("adhoc-submit");
  const adhocOutput = element("adhoc-output");
  const resultTemplate = element("search-result-template");

  // ---- API access ------------------------------------------------------------------------

  // Thrown when fetch itself fails: the service is down, the connection dropped, and so on.
  class NetworkError extends Error {
    constructor(url, cause) {
      super(cause && cause.message ? cause.message : String(cause));
      this.name = "NetworkError";
      this.url = new URL(url, location.href).href;
    }
  }

  // Send one request. Resolves with {ok, status, body} for every HTTP response, where body is
  // the parsed JSON or undefined when the body is not JSON. Rejects with NetworkError, or with
  // the AbortError of `signal`.
  async function callApi(method, path, payload, signal) {
    const url = API_BASE + path;
    const headers = { Accept: "application/json" };
    if (payload !== undefined) {
      headers["Content-Type"] = "application/json";
    }
    const apiKey = apiKeyInput.value.trim();
    if (apiKey) {
      headers["X-API-Key"] = apiKey;
    }

    let response;
    let text;
    try {
      response = await fetch(url, {
        method,
        headers,
        body: payload === undefined ? undefined : JSON.stringify(payload),
        signal,
        cache: "no-store",
      });
      text = await response.text();
    } catch (error) {
      if (error.name === "AbortError") {
        throw error;
      }
      throw new NetworkError(url, error);
    }

    let body;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    return { ok: response.ok, status: response.status, body };
  }

  // A problem is what the page shows for a failed request: {title, detail, fields}, where
  // fields lists {key, message} pairs (the `extra` items of a 422 response).
  function describeHttpProblem(response, locateKey) {
    const { status, body } = response;
    const titles = {
      400: "The request was rejected as malformed",
      401: "The service requires an API key",
      403: "The API key was rejected",
      413: "The request is too large",
      422: "The request was rejected as invalid",
      429: "Too many requests",
      503: "The service cannot answer yet",
    };
    const title = titles[status] || `The request failed with HTTP ${status}`;

    let detail;
    if (body && typeof body.detail === "string") {
      detail = body.detail;
    } else if (body === undefined) {
      detail = `The response (HTTP ${status}) is not JSON, so it has no detail to show.`;
    } else {
      detail = `The response (HTTP ${status}) has no detail field.`;
    }

    const extra = body && Array.isArray(body.extra) ? body.extra : [];
    const fields = extra.map((item) => {
      const key = item && item.key !== undefined ? String(item.key) : "(no key)";
      const where = locateKey ? locateKey(key) : "";
      return {
        key: where ? `${key} (${where})` : key,
        message: item && item.message !== undefined ? String(item.message) : "",
      };
    });
    return { title: `${title} (HTTP ${status})`, detail, fields };
  }

  function describeNetworkProblem(error) {
    return {
      title: "Could not reach the service",
      detail:
        `The request to ${error.url} failed before any response arrived (${error.message}). ` +
        "Check that the service is running and that this page was opened from it, then try again.",
      fields: [],
    };
  }

  // ---- Rendering -------------------------------------------------------------------------

  function createElement(tag, className, text) {
    const node = document.createElement(tag);
    if (className) {
      node.className = className;
    }
    if (text !== undefined) {
      node.textContent = text;
    }
    return node;
  }

  function showSummary(output, text) {
    output.replaceChildren(createElement("p", "summary", text));
  }

  function showProblem(output, problem) {
    const box = createElement("div", "error");
    box.append(createElement("h2", "", problem.title), createElement("p", "", problem.detail));
    if (problem.fields.length > 0) {
      const list = createElement("ul");
      for (const field of problem.fields) {
        const item = createElement("li");
        item.append(createElement("code", "", field.key), document.createTextNode(`: ${field.message}`));
        list.append(item);
      }
      box.append(list);
    }
    output.replaceChildren(box);
  }

  function setBusy(output, busy) {
    output.setAttribute("aria-busy", String(busy));
  }

  function formatScore(score) {
    return typeof score === "number" ? score.toFixed(4) : String(score);
  }

  // Fill a result from the template: rank, title, score with its bar, then RESULT_FIELDS.
  function renderResult(rank, title, score, fields) {
    const item = resultTemplate.content.firstElementChild.cloneNode(true);
    item.querySelector(".result-rank").textContent = `${rank}. `;
    item.querySelector(".result-title").textContent = title;
    item.querySelector(".score-value").textContent = formatScore(score);
    // Cosine similarity can be negative, but the bar shows 0 to 1 and clamps the rest.
    const fraction = typeof score === "number" ? Math.min(Math.max(score, 0), 1) : 0;
    item.querySelector(".score-fill").style.width = `${(fraction * 100).toFixed(1)}%`;

    const list = item.querySelector(".result-fields");
    for (const field of fields) {
      const row = createElement("div");
      row.append(createElement("dt", "", field.label), createElement("dd", "", field.value));
      list.append(row);
    }
    if (fields.length === 0) {
      list.remove();
    }
    return item;
  }

  function pluralize(count, singular, plural) {
    return `${count.toLocaleString("en")} ${count === 1 ? singular : plural}`;
  }

  // ---- Index status ----------------------------------------------------------------------

  let statusTimer = null;
  let shownIndexVersion = null;

  function setIndexStatus(state, parts) {
    const text = parts.join(" · ");
    if (indexStatus.dataset.state === state && indexStatus.textContent === text) {
      return; // Rewriting the same text would make screen readers announce it again.
    }
    indexStatus.dataset.state = state;
    indexStatus.textContent = text;
  }

  async function refreshIndexStatus() {
    clearTimeout(statusTimer);
    let nextCheckMs = STATUS_RETRY_MS;
    try {
      const { ok, status, body } = await callApi("GET", "/ready");
      const readiness = body || {};
      if (ok && readiness.index_version !== undefined && readiness.index_version !== null) {
        shownIndexVersion = readiness.index_version;
        const parts = [`Index version ${readiness.index_version}`];
        if (typeof readiness.products === "number") {
          parts.push(pluralize(readiness.products, "product", "products"));
        }
        if (readiness.model) {
          parts.push(`model ${readiness.model}`);
        }
        setIndexStatus("ready", parts);
        nextCheckMs = STATUS_REFRESH_MS;
      } else if (ok) {
        shownIndexVersion = null;
        setIndexStatus("no-index", [
          "No active index version: build and activate one before searching the catalog",
        ]);
      } else if (status === 503) {
        shownIndexVersion = null;
        setIndexStatus("not-ready", [`Not ready: ${readiness.reason || "no reason given"}`]);
      } else {
        shownIndexVersion = null;
        const problem = describeHttpProblem({ status, body });
        setIndexStatus("error", [`Status check failed: ${problem.title}`, problem.detail]);
      }
    } catch (error) {
      shownIndexVersion = null;
      setIndexStatus("error", [`Status check failed: could not reach the service (${error.message})`]);
    }
    // Two refreshes can overlap (a search response can start one), so keep one timer only.
    clearTimeout(statusTimer);
    statusTimer = setTimeout(refreshIndexStatus, nextCheckMs);
  }

  // Refresh the header when a search response names another index version than the one shown.
  function noteIndexVersion(version) {
    if (version !== shownIndexVersion) {
      refreshIndexStatus();
    }
  }

  // ---- Shared input handling -------------------------------------------------------------

  // Return top_k as an integer, or null when the field does not contain one. Range checks are
  // left to the API, whose limits an operator can change.
  function readTopK(input) {
    const text = input.value.trim();
    return /^-?\d+$/.test(text) ? Number(text) : null;
  }

  function invalidTopKProblem(input) {
    const label = document.querySelector(`label[for="${input.id}"]`).textContent;
    return {
      title: "Invalid top_k",
      detail: `${label} must be a whole number, such as 10.`,
      fields: [],
    };
  }

  // ---- Catalog search tab ----------------------------------------------------------------

  let searchTimer = null;
  let searchController = null;

  function scheduleSearch() {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(runSearch, SEARCH_DEBOUNCE_MS);
  }

  async function runSearch() {
    clearTimeout(searchTimer);
    if (searchController) {
      searchController.abort();
      searchController = null;
    }
    setBusy(searchOutput, false);

    const query = searchQuery.value;
    if (!query.trim()) {
      showSummary(searchOutput, "Type a query to search the active catalog index.");
      return;
    }
    const topK = readTopK(searchTopK);
    if (topK === null) {
      showProblem(searchOutput, invalidTopKProblem(searchTopK));
      return;
    }

    const controller = new AbortController();
    searchController = controller;
    setBusy(searchOutput, true);
    try {
      const payload = { queries: [query], top_k: topK };
      if (searchMode.value) {
        payload.mode = searchMode.value;
      }
      const response = await callApi("POST", "/search", payload, controller.signal);
      if (!response.ok) {
        showProblem(searchOutput, describeHttpProblem(response));
      } else if (!response.body || !Array.isArray(response.body.results)) {
        showProblem(searchOutput, {
          title: "Unexpected response",
          detail: "The search response has no results list.",
          fields: [],
        });
      } else {
        renderSearchResponse(response.body);
        noteIndexVersion(response.body.index_version);
      }
    } catch (error) {
      if (error.name === "AbortError") {
        return; // A newer search replaced this one and owns the output now.
      }
      showProblem(searchOutput, describeNetworkProblem(error));
    } finally {
      if (searchController === controller) {
        searchController = null;
        setBusy(searchOutput, false);
      }
    }
  }

  function renderSearchResponse(body) {
    const result = body.results[0] || { query: searchQuery.value, matches: [] };
    const matches = result.matches || [];
    const summary =
      `${pluralize(matches.length, "result", "results")} for “${result.query}” ` +
      `from index version ${body.index_version}`;

    const list = createElement("ol", "results");
    matches.forEach((match, position) => {
      const fields = RESULT_FIELDS
        .filter((field) => match[field.key] !== undefined && match[field.key] !== null)
        .map((field) => ({ label: field.label, value: String(match[field.key]) }));
      list.append(renderResult(position + 1, match.title, match.score, fields));
    });
    searchOutput.replaceChildren(createElement("p", "summary", summary), list);
  }

  // ---- Ad-hoc match tab ------------------------------------------------------------------

  // Return the non-blank lines of a textarea as {text, line}, with 1-based line numbers, so
  // that an error about `products[2]` can name the line the user typed it on.
  function readLines(textarea) {
    const lines = [];
    textarea.value.split(/\r?\n/).forEach((raw, index) => {
      const text = raw.trim();
      if (text) {
        lines.push({ text, line: index + 1 });
      }
    });
    return lines;
  }

  function updateLineCounts() {
    element("adhoc-queries-count").textContent =
      pluralize(readLines(adhocQueries).length, "query", "queries");
    element("adhoc-products-count").textContent =
      pluralize(readLines(adhocProducts).length, "product", "products");
  }

  async function runAdhocMatch() {
    if (adhocSubmit.disabled) {
      return; // A match is still running.
    }
    const queries = readLines(adhocQueries);
    const products = readLines(adhocProducts);
    const topK = readTopK(adhocTopK);
    if (queries.length === 0 || products.length === 0) {
      const missing = queries.length === 0 ? "query" : "product";
      showProblem(adhocOutput, {
        title: `No ${missing} to match`,
        detail: `Enter at least one ${missing} per line in the ${missing === "query" ? "Queries" : "Products"} box.`,
        fields: [],
      });
      return;
    }
    if (topK === null) {
      showProblem(adhocOutput, invalidTopKProblem(adhocTopK));
      return;
    }

    // Name the textarea line behind a key such as `text[3]` or `products[0]`.
    const locateKey = (key) => {
      const found = /^(text|products)\[(\d+)\]$/.exec(key);
      if (!found) {
        return "";
      }
      const lines = found[1] === "text" ? queries : products;
      const entry = lines[Number(found[2])];
      const box = found[1] === "text" ? "Queries" : "Products";
      return entry ? `${box}, line ${entry.line}` : "";
    };

    adhocSubmit.disabled = true;
    setBusy(adhocOutput, true);
    try {
      const response = await callApi("POST", "/similarity", {
        text: queries.map((entry) => entry.text),
        products: products.map((entry) => entry.text),
        top_k: topK,
      });
      if (!response.ok) {
        showProblem(adhocOutput, describeHttpProblem(response, locateKey));
      } else if (!response.body || !Array.isArray(response.body.results)) {
        showProblem(adhocOutput, {
          title: "Unexpected response",
          detail: "The similarity response has no results list.",
          fields: [],
        });
      } else {
        renderAdhocResponse(response.body, products.length);
      }
    } catch (error) {
      showProblem(adhocOutput, describeNetworkProblem(error));
    } finally {
      adhocSubmit.disabled = false;
      setBusy(adhocOutput, false);
    }
  }

  function renderAdhocResponse(body, productCount) {
    const summary =
      `${pluralize(body.results.length, "query", "queries")} matched against ` +
      `${pluralize(productCount, "product", "products")}`;
    const groups = body.results.map((result, position) => {
      const group = createElement("section", "query-group");
      const heading = createElement("h2", "", `Query ${position + 1}: `);
      heading.append(createElement("span", "query-text", result.query));
      const list = createElement("ol", "results");
      (result.matches || []).forEach((match, rank) => {
        list.append(renderResult(rank + 1, match.product, match.score, []));
      });
      group.append(heading, list);
      return group;
    });
    adhocOutput.replaceChildren(createElement("p", "summary", summary), ...groups);
  }

  // ---- Tabs (WAI-ARIA tabs pattern with automatic activation) ----------------------------

  const tabs = Array.from(document.querySelectorAll('[role="tab"]'));
  const tabByHash = { "#search": "tab-search", "#adhoc": "tab-adhoc" };

  function selectTab(selected, moveFocus) {
    for (const tab of tabs) {
      const isSelected = tab === selected;
      tab.setAttribute("aria-selected", String(isSelected));
      tab.tabIndex = isSelected ? 0 : -1;
      element(tab.getAttribute("aria-controls")).hidden = !isSelected;
    }
    if (moveFocus) {
      selected.focus();
    }
    const hash = Object.keys(tabByHash).find((key) => tabByHash[key] === selected.id);
    history.replaceState(null, "", hash);
  }

  function handleTabKey(event) {
    const current = tabs.indexOf(event.currentTarget);
    const targets = {
      ArrowRight: (current + 1) % tabs.length,
      ArrowLeft: (current - 1 + tabs.length) % tabs.length,
      Home: 0,
      End: tabs.length - 1,
    };
    if (!(event.key in targets)) {
      return; // Enter and Space reach the button's click handler.
    }
    event.preventDefault();
    selectTab(tabs[targets[event.key]], true);
  }

  // ---- API key ---------------------------------------------------------------------------

  // sessionStorage throws when storage is disabled. The key then lasts for this page only.
  function loadApiKey() {
    try {
      apiKeyInput.value = sessionStorage.getItem(API_KEY_STORAGE_KEY) || "";
    } catch {
      apiKeyInput.value = "";
    }
  }

  function storeApiKey() {
    const apiKey = apiKeyInput.value.trim();
    try {
      if (apiKey) {
        sessionStorage.setItem(API_KEY_STORAGE_KEY, apiKey);
      } else {
        sessionStorage.removeItem(API_KEY_STORAGE_KEY);
      }
    } catch {
      // Keep using the key from the field.
    }
  }

  // ---- Wiring ----------------------------------------------------------------------------

  loadApiKey();
  apiKeyInput.addEventListener("input", storeApiKey);
  // Enter in the key field would otherwise submit its form and reload the page.
  element("api-key-form").addEventListener("submit", (event) => event.preventDefault());

  for (const tab of tabs) {
    tab.addEventListener("click", () => selectTab(tab, false));
    tab.addEventListener("keydown", handleTabKey);
  }
  const tabFromHash = element(tabByHash[location.hash] || "");
  if (tabFromHash) {
    selectTab(tabFromHash, false);
  }

  searchQuery.addEventListener("input", scheduleSearch);
  searchTopK.addEventListener("input", scheduleSearch);
  searchMode.addEventListener("change", scheduleSearch);
  searchForm.addEventListener("submit", (event) => {
    event.preventDefault();
    runSearch();
  });

  adhocQueries.addEventListener("input", updateLineCounts);
  adhocProducts.addEventListener("input", updateLineCounts);
  adhocForm.addEventListener("submit", (event) => {
    event.preventDefault();
    runAdhocMatch();
  });
  // Enter adds a line in a textarea, so Ctrl+Enter (Cmd+Enter on macOS) runs the match.
  adhocForm.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      adhocForm.requestSubmit();
    }
  });
  updateLineCounts();

  refreshIndexStatus();
  // A query left in the box by the browser's form restore is searched at once.
  if (searchQuery.value.trim()) {
    runSearch();
  }
})();
