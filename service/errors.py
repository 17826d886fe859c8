"""The one table that maps domain errors and validation failures to HTTP responses."""

from __future__ import annotations

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
    HTTP_500_INTERNAL_SERVER_ERROR,
    HTTP_503_SERVICE_UNAVAILABLE,
)

from indexer.errors import (
    AccessDeniedError,
    AuthenticationError,
    BuildLockedError,
    CatalogSearchError,
    IndexNotReadyError,
    JobNotFoundError,
    ModelNotReadyError,
    NoRollbackTargetError,
    ProductNotFoundError,
    ReindexUnavailableError,
    VersionNotActivatableError,
    VersionNotFoundError,
)

log = structlog.get_logger(__name__)

STATUS_BY_ERROR: dict[type[CatalogSearchError], int] = {
    IndexNotReadyError: HTTP_503_SERVICE_UNAVAILABLE,
    ModelNotReadyError: HTTP_503_SERVICE_UNAVAILABLE,
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
        if isinstance(item, dict) and item.get("message") == EMPTY_BODY_MESSAGE:
            item["message"] = "the request body is missing; send a JSON object"
    body = {"status_code": HTTP_422_UNPROCESSABLE_ENTITY, "detail": error.detail, "extra": extra}
    return Response(body, status_code=HTTP_422_UNPROCESSABLE_ENTITY)


def client_error_response(request: Request, error: ClientException) -> Response:
    """Keep Litestar's 4xx body, but name the body as the field when its JSON is malformed."""
    body: dict[str, object] = {"status_code": error.status_code, "detail": error.detail}
    if error.status_code == HTTP_413_REQUEST_ENTITY_TOO_LARGE:
        limit = request.app.state.runtime.settings.max_body_bytes
        body["detail"] = (f"the request body is larger than the maximum of {limit} bytes "
                          "(CATALOG_SEARCH_MAX_BODY_BYTES)")
    if isinstance(error.__cause__, SerializationException):
        message = f"the request body is not valid JSON: {error.detail}"
        body = {"status_code": HTTP_400_BAD_REQUEST, "detail": message,
                "extra": [{"key": "body", "message": message, "source": "body"}]}
    return Response(body, status_code=error.status_code, headers=error.headers)


def internal_error_response(request: Request, error: Exception) -> Response:
    """Log an unexpected error with its traceback and return a 500 that reveals nothing."""
    log.exception("unhandled_error", path=request.url.path, error_type=type(error).__name__)
    body = {"status_code": HTTP_500_INTERNAL_SERVER_ERROR, "detail": "Internal Server Error"}
    return Response(body, status_code=HTTP_500_INTERNAL_SERVER_ERROR)


EXCEPTION_HANDLERS = {
    Exception: internal_error_response,
    ClientException: client_error_response,
    CatalogSearchError: domain_error_response,
    ValidationException: validation_error_response,
}
