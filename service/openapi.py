"""What the OpenAPI schema cannot learn from the routes' types: keys, limits and error responses.

The request limits are settings, so they are written into the request schemas when the
app is built. Clients and schema-driven tools then see the limits the service enforces.
The routes that need a key, and the errors every route can return (401, 403, 413, 422,
429, 503), come from the same path table as the guard and the rate limiter.
"""

from __future__ import annotations

from litestar.openapi.spec import (
    OpenAPI,
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    PathItem,
    Reference,
    Schema,
    SecurityScheme,
)

from indexer.settings import ENV_PREFIX, Settings
from service.auth import API_KEY_HEADER, RouteGroup, route_group

SECURITY_SCHEME = "apiKey"
ERROR_BODY = Reference(ref="#/components/schemas/ErrorBody")

TEXT_LISTS = {
    ("SearchRequest", "queries"): "max_queries",
    ("SimilarityRequest", "text"): "max_queries",
    ("SimilarityRequest", "products"): "max_products",
}
"""Request fields that are lists of texts, and the setting that bounds their length."""

TOP_K_FIELDS = (("SearchRequest", "top_k"), ("SimilarityRequest", "top_k"))

NOT_BLANK = r"\S"
"""A text must contain at least one character that is not whitespace."""


def document_access_and_limits(openapi: OpenAPI, settings: Settings) -> None:
    """Add the request limits, the API key scheme and the shared error responses to `openapi`.

    Raises `KeyError` when a request schema no longer has a field this module bounds, so that
    a renamed field fails at start instead of leaving its limit undocumented.
    """
    schemas = openapi.components.schemas or {}
    _document_request_limits(schemas, settings)
    openapi.components.security_schemes = {
        **(openapi.components.security_schemes or {}),
        SECURITY_SCHEME: SecurityScheme(
            type="apiKey", name=API_KEY_HEADER, security_scheme_in="header",
            description="An API key from `python -m indexer keys create`. The search scope opens the "
                        "search routes, the admin scope the admin routes and search.",
        ),
    }
    for path, item in (openapi.paths or {}).items():
        group = route_group(path)
        for operation in _operations(item):
            _document_operation(operation, group, settings)


def _document_request_limits(schemas: dict[str, Schema], settings: Settings) -> None:
    for (component, field), setting in TEXT_LISTS.items():
        texts = _array_variant(_property(schemas, component, field))
        texts.min_items = 1
        texts.max_items = getattr(settings, setting)
        item = texts.items
        if not isinstance(item, Schema):
            raise KeyError(f"{component}.{field} is not a list of strings")
        item.min_length = 1
        item.max_length = settings.max_text_chars
        item.pattern = NOT_BLANK
    for component, field in TOP_K_FIELDS:
        top_k = _property(schemas, component, field)
        top_k.minimum = 1
        top_k.maximum = settings.max_top_k


def _document_operation(operation: Operation, group: RouteGroup, settings: Settings) -> None:
    responses = operation.responses if operation.responses is not None else {}
    operation.responses = responses
    if group is not RouteGroup.PUBLIC:
        open_search = group is RouteGroup.SEARCH and settings.search_is_open
        # An empty requirement lets a request without a key through.
        operation.security = [{SECURITY_SCHEME: []}, *([{}] if open_search else [])]
        responses.setdefault("401", _error("Missing, malformed, unknown or revoked API key"))
        responses.setdefault("403", _error(f"The API key lacks the {group} scope"))
        responses.setdefault("503", _error("The metadata database that holds the keys is unavailable"))
        if getattr(settings, f"rate_limit_{group}_per_minute") > 0:
            responses.setdefault("429", _error(
                f"Over the {group} rate limit ({ENV_PREFIX}RATE_LIMIT_{group.upper()}_PER_MINUTE)",
                headers={"Retry-After": OpenAPIHeader(
                    schema=Schema(type=OpenAPIType.INTEGER, minimum=1), required=True,
                    description="Seconds until the limit's window resets")},
            ))
    if operation.request_body is not None:
        responses.setdefault("413", _error(f"The body is larger than {ENV_PREFIX}MAX_BODY_BYTES"))
    if operation.request_body is not None or operation.parameters:
        responses.setdefault("422", _error("Invalid request: the body names each invalid field"))


def _operations(item: PathItem) -> list[Operation]:
    methods = (item.get, item.put, item.post, item.delete, item.options, item.head, item.patch, item.trace)
    return [operation for operation in methods if operation is not None]


def _property(schemas: dict[str, Schema], component: str, field: str) -> Schema:
    properties = schemas[component].properties or {}
    found = properties[field]
    if not isinstance(found, Schema):
        raise KeyError(f"{component}.{field} is a reference, not an inline schema")
    return found


def _array_variant(schema: Schema) -> Schema:
    """Return `schema`, or for an optional list (`oneOf` a list and null) its list variant."""
    for variant in schema.one_of or [schema]:
        if isinstance(variant, Schema) and variant.type == OpenAPIType.ARRAY:
            return variant
    raise KeyError(f"no list in schema {schema.title or schema}")


def _error(description: str, headers: dict[str, OpenAPIHeader | Reference] | None = None) -> OpenAPIResponse:
    return OpenAPIResponse(description=description, headers=headers,
                           content={"application/json": OpenAPIMediaType(schema=ERROR_BODY)})
