"""The one table that maps domain errors and validation failures to HTTP responses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog
from litestar import Request, Response
from litestar.exceptions import ClientException, SerializationException, ValidationException
from litestar.status_codes import (
    HTTP_400_BAD_REQUEST,
    HTTP_401_UNAUTHORIZED,
    HTTP_403_FORBIDDEN,
    HTTP_404_NOT_FOUND,
    HTTP_409_CONFLICT,
    HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    HTTP_422_UNPROCESSABLE_ENTITY,
    HTTP_429_TOO_MANY_REQUESTS,
    HTTP_500_INTERNAL_SERVER_ERROR,
    HTTP_503_SERVICE_UNAVAILABLE,
)
from litestar.types import Receive, Scope, Send

from indexer.errors import (
    AccessDeniedError,
    AuthenticationError,
    BuildLockedError,
    CatalogSearchError,
    DatabaseUnavailableError,
    IndexNotReadyError,
    JobNotFoundError,
    ModelNotReadyError,
    NoRollbackTargetError,
    ProductNotFoundError,
    ReindexUnavailableError,
    VersionNotActivatableError,
    VersionNotFoundError,
)
from indexer.settings import ENV_PREFIX, SEARCH_MODES
from service.auth import route_group

log = structlog.get_logger(__name__)

STATUS_BY_ERROR: dict[type[CatalogSearchError], int] = {
    IndexNotReadyError: HTTP_503_SERVICE_UNAVAILABLE,
    ModelNotReadyError: HTTP_503_SERVICE_UNAVAILABLE,
    DatabaseUnavailableError: HTTP_503_SERVICE_UNAVAILABLE,
    VersionNotFoundError: HTTP_404_NOT_FOUND,
    JobNotFoundError: HTTP_404_NOT_FOUND,
    ProductNotFoundError: HTTP_404_NOT_FOUND,
    VersionNotActivatableError: HTTP_409_CONFLICT,
    NoRollbackTargetError: HTTP_409_CONFLICT,
    ReindexUnavailableError: HTTP_409_CONFLICT,
    BuildLockedError: HTTP_409_CONFLICT,
    AuthenticationError: HTTP_401_UNAUTHORIZED,
    AccessDeniedError: HTTP_403_FORBIDDEN,
}
"""Status per domain error class; a class not listed here is a bug and becomes a 500."""

EMPTY_BODY_MESSAGE = "'data'"
"""Message Litestar 2.x gives when a required JSON body is absent."""

ENUM_MESSAGE = "Invalid enum value"
"""Start of msgspec's message for a value outside a Literal, which does not list the choices."""
CHOICES_BY_KEY = {"mode": SEARCH_MODES}


def domain_error_response(request: Request, error: CatalogSearchError) -> Response:
    status = next(
        (code for kind, code in STATUS_BY_ERROR.items() if isinstance(error, kind)),
        HTTP_500_INTERNAL_SERVER_ERROR,
    )
    if status == HTTP_500_INTERNAL_SERVER_ERROR:
        log.error("unmapped_error", error=repr(error), path=request.url.path)
        detail = "Internal Server Error"
    else:
        detail = str(error)
    return Response({"status_code": status, "detail": detail}, status_code=status)


def validation_error_response(request: Request, error: ValidationException) -> Response:
    """Return 422, as the original FastAPI service did, naming each invalid field."""
    extra = error.extra if isinstance(error.extra, list) else []
    for item in extra:
        if not isinstance(item, dict):
            continue
        message = str(item.get("message", ""))
        if message == EMPTY_BODY_MESSAGE:
            item["message"] = "the request body is missing; send a JSON object"
        choices = CHOICES_BY_KEY.get(str(item.get("key")))
        if choices and message.startswith(ENUM_MESSAGE):
            item["message"] = f"{message}; expected one of {', '.join(choices)}"
    body = {"status_code": HTTP_422_UNPROCESSABLE_ENTITY, "detail": error.detail, "extra": extra}
    return Response(body, status_code=HTTP_422_UNPROCESSABLE_ENTITY)


def client_error_response(request: Request, error: ClientException) -> Response:
    """Keep Litestar's 4xx body, but name the limit of a 413 or 429, and the body as the field
    when its JSON is malformed."""
    body: dict[str, object] = {"status_code": error.status_code, "detail": error.detail}
    headers = dict(error.headers or {})
    if error.status_code == HTTP_413_REQUEST_ENTITY_TOO_LARGE:
        limit = request.app.state.runtime.settings.max_body_bytes
        body["detail"] = (f"the request body is larger than the maximum of {limit} bytes "
                          "(CATALOG_SEARCH_MAX_BODY_BYTES)")
    if error.status_code == HTTP_429_TOO_MANY_REQUESTS:
        # The rate-limit middleware sends the seconds until its window resets; at least 1.
        retry_after = max(1, int(headers.get("RateLimit-Reset", "1")))
        headers["Retry-After"] = str(retry_after)
        body["detail"] = _rate_limit_detail(request, retry_after)
    if isinstance(error.__cause__, SerializationException):
        return invalid_body_response(f"the request body is not valid JSON: {error.detail}")
    return Response(body, status_code=error.status_code, headers=headers)


def invalid_body_response(message: str) -> Response:
    body = {"status_code": HTTP_400_BAD_REQUEST, "detail": message,
            "extra": [{"key": "body", "message": message, "source": "body"}]}
    return Response(body, status_code=HTTP_400_BAD_REQUEST)


def deep_body_response(request: Request, error: RecursionError) -> Response:
    """Return 400 for a JSON body nested deeper than the decoder can follow.

    msgspec raises RecursionError at about 1,000 levels while Litestar decodes the body.
    The routes themselves do not recurse, so this is the only source the service expects.
    """
    log.warning("request_body_too_deep", path=request.url.path)
    return invalid_body_response("the request body is not valid JSON: it is nested too deeply")


def _rate_limit_detail(request: Request, retry_after: int) -> str:
    group = route_group(request.scope["path_template"])
    setting = f"rate_limit_{group}_per_minute"
    limit = getattr(request.app.state.runtime.settings, setting)
    return (f"too many requests: the limit is {limit} {group} requests per minute per API key or "
            f"client address ({ENV_PREFIX}{setting.upper()}); retry after {retry_after} s")


def internal_error_response(request: Request, error: Exception) -> Response:
    """Log an unexpected error with its traceback and return a 500 that reveals nothing."""
    log.exception("unhandled_error", path=request.url.path, error_type=type(error).__name__)
    body = {"status_code": HTTP_500_INTERNAL_SERVER_ERROR, "detail": "Internal Server Error"}
    return Response(body, status_code=HTTP_500_INTERNAL_SERVER_ERROR)


EXCEPTION_HANDLERS: dict[type[Exception], Callable[[Request, Any], Response]] = {
    Exception: internal_error_response,
    ClientException: client_error_response,
    CatalogSearchError: domain_error_response,
    ValidationException: validation_error_response,
    RecursionError: deep_body_response,
}


async def send_error_response(scope: Scope, receive: Receive, send: Send, error: Exception) -> None:
    """Send the response that the handler table makes for `error`, from inside a middleware.

    Litestar turns an exception that a middleware raises into a response outside every
    middleware, where the request id and the request metrics never see its status. A
    middleware that rejects a request calls this instead of raising.
    """
    handler = next(EXCEPTION_HANDLERS[kind] for kind in type(error).__mro__ if kind in EXCEPTION_HANDLERS)
    request: Request = scope["litestar_app"].request_class(scope, receive)
    response = handler(request, error)
    await response.to_asgi_response(app=None, request=request)(scope, receive, send)
