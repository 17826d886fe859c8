"""API keys on requests: who is calling, and which routes need which scope.

`ApiKeyMiddleware` looks up the `X-API-Key` header once per request and stores the result
in the connection's `user` (a `Caller`, or None) and `auth` (a `KeyCheck`). The guard
`require_scope`, registered on the whole app, decides by the route's path:

| routes | need |
| --- | --- |
| `/api/v1/health`, `/api/v1/ready`, and everything outside `/api/v1` | no key |
| `/api/v1/index/...`, `/api/v1/audit` | a key with the admin scope |
| every other route under `/api/v1` | a key with the search scope, unless search is open |

A missing, malformed, unknown, wrong or revoked key gets the same 401 and message, so that a
response never reveals whether a key exists. A key sent to an open search route must be valid.
"""

from __future__ import annotations

from enum import StrEnum

import structlog
from anyio import to_thread
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.types import ASGIApp
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from indexer import keys
from indexer.errors import AccessDeniedError, AuthenticationError, DatabaseUnavailableError
from indexer.keys import Caller
from indexer.settings import ENV_PREFIX, Settings

log = structlog.get_logger(__name__)

API_KEY_HEADER = "X-API-Key"
API_PREFIX = "/api/v1/"
PUBLIC_API_PATHS = frozenset({"/api/v1/health", "/api/v1/ready"})
ADMIN_API_PATHS = ("/api/v1/index", "/api/v1/audit")
"""Admin routes: these paths and every path below them."""

UNAUTHENTICATED = f"missing or invalid {API_KEY_HEADER} header"


class RouteGroup(StrEnum):
    """Route group: the scope a route needs, and the rate limit it counts against."""

    PUBLIC = "public"
    SEARCH = "search"
    ADMIN = "admin"


class KeyCheck(StrEnum):
    """Result of checking the `X-API-Key` header of a request."""

    MISSING = "missing"
    INVALID = "invalid"
    VALID = "valid"
    UNCHECKED = "unchecked"
    """The database could not be asked; the guard rejects the request with 503."""


def route_group(path_template: str) -> RouteGroup:
    """Return the group of a route, from its path template such as `/api/v1/index/jobs/{job_id}`."""
    if not path_template.startswith(API_PREFIX) or path_template in PUBLIC_API_PATHS:
        return RouteGroup.PUBLIC
    if any(path_template == path or path_template.startswith(path + "/") for path in ADMIN_API_PATHS):
        return RouteGroup.ADMIN
    return RouteGroup.SEARCH


class ApiKeyMiddleware(AbstractAuthenticationMiddleware):
    """Resolve the `X-API-Key` header to a `Caller`; it rejects nothing itself, the guard does."""

    def __init__(self, app: ASGIApp, sessions: sessionmaker[Session]) -> None:
        super().__init__(app)
        self.sessions = sessions

    async def authenticate_request(self, connection: ASGIConnection) -> AuthenticationResult:
        presented = connection.headers.get(API_KEY_HEADER)
        # Public routes never read the key, so they cost no lookup and work while the database is down.
        if presented is None or route_group(connection.scope["path_template"]) is RouteGroup.PUBLIC:
            return AuthenticationResult(user=None, auth=KeyCheck.MISSING)
        try:
            caller = await to_thread.run_sync(self._find_caller, presented)
        except OperationalError as error:
            # The driver's own message: SQLAlchemy's would add the statement's parameters.
            log.error("key_lookup_failed", error=str(error.orig))
            return AuthenticationResult(user=None, auth=KeyCheck.UNCHECKED)
        return AuthenticationResult(user=caller, auth=KeyCheck.VALID if caller else KeyCheck.INVALID)

    def _find_caller(self, presented: str) -> Caller | None:
        with self.sessions() as session:
            return keys.find_caller(session, presented)


def require_scope(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    """Guard of the whole app: raise `AuthenticationError` (401), `AccessDeniedError` (403) or
    `DatabaseUnavailableError` (503) unless the request may use the route, following the
    table in the module docstring."""
    group = route_group(connection.scope["path_template"])
    if group is RouteGroup.PUBLIC:
        return
    check = connection.scope.get("auth", KeyCheck.MISSING)
    if check is KeyCheck.UNCHECKED:
        raise DatabaseUnavailableError(
            "the metadata database is unavailable, so the API key cannot be checked; try again later")
    settings: Settings = connection.app.state.runtime.settings
    if check is KeyCheck.MISSING and group is RouteGroup.SEARCH and settings.search_is_open:
        return
    caller: Caller | None = connection.scope.get("user")
    if check is not KeyCheck.VALID or caller is None:
        raise AuthenticationError(UNAUTHENTICATED)
    if not caller.has_scope(group.value):
        raise AccessDeniedError(f"the API key lacks the {group.value} scope that this route needs")


def caller_name(connection: ASGIConnection) -> str:
    """Return the name of the request's valid API key; only for routes that `require_scope` guards."""
    caller: Caller | None = connection.scope.get("user")
    if caller is None:
        raise AuthenticationError(UNAUTHENTICATED)
    return caller.name


def log_access_mode(settings: Settings) -> None:
    """Log at start, as a warning, when search routes serve requests without a key."""
    if not settings.search_is_open:
        return
    reason = (f"{ENV_PREFIX}OPEN_SEARCH is true" if settings.open_search
              else f"{ENV_PREFIX}HOST {settings.host} is a loopback address")
    log.warning("search_routes_open", host=settings.host, reason=reason,
                hint=f"set {ENV_PREFIX}OPEN_SEARCH=false to require a key with the search scope")
