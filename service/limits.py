"""Rate limits per API key, or per client address for requests without a valid key.

Litestar's `RateLimitMiddleware` counts each identity's requests in a fixed window of one
minute. One middleware per route group gives search and admin routes their own limits.
The counts live in Redis when `CATALOG_SEARCH_RATE_LIMIT_REDIS_URL` is set, so that every
replica shares them, and in the process's memory otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from time import time

import structlog
from litestar import Request
from litestar.exceptions import TooManyRequestsException
from litestar.middleware.base import DefineMiddleware
from litestar.middleware.rate_limit import (
    DURATION_VALUES,
    CacheObject,
    DurationUnit,
    RateLimitConfig,
    RateLimitMiddleware,
    get_remote_address,
)
from litestar.stores.base import Store
from litestar.stores.memory import MemoryStore
from litestar.stores.redis import RedisStore
from litestar.types import Receive, Scope, Send
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from indexer.keys import Caller
from indexer.settings import Settings
from service import metrics
from service.auth import RouteGroup, route_group
from service.errors import send_error_response

log = structlog.get_logger(__name__)

STORE_NAME = "rate_limit"
WINDOW: DurationUnit = "minute"
REDIS_TIMEOUT_SECONDS = 0.5
"""Maximum wait for Redis per call, in seconds. A rate-limit check must not hold a search for
long, so when Redis does not reply in time, the request is served without a limit."""


class FailOpenRateLimitMiddleware(RateLimitMiddleware):
    """Litestar's rate-limit middleware, except that it sends its 429 itself (see
    `send_error_response`) and that a failing store lets requests through.

    An unreachable Redis must not take search down with it. Each failure is counted in
    `catalog_search_rate_limit_store_errors_total`; the log gets one line when the store
    starts failing and one when it works again.

    NOTE: the middleware reads a count and then writes it back. Its lock orders that within
    one process only, so concurrent requests to different replicas can read the same count,
    and the shared limit may let a few more requests through than it is set to.
    """

    store_failing = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        except TooManyRequestsException as error:
            await send_error_response(scope, receive, send, error)

    async def retrieve_cached_history(self, key: str, store: Store) -> CacheObject:
        try:
            history = await super().retrieve_cached_history(key, store)
        except (RedisError, OSError) as error:
            self._failed(error)
            return CacheObject(history=[], reset=int(time()) + DURATION_VALUES[self.unit])
        self._recovered()
        return history

    async def set_cached_history(self, key: str, cache_object: CacheObject, store: Store) -> None:
        try:
            await super().set_cached_history(key, cache_object, store)
        except (RedisError, OSError) as error:
            self._failed(error)

    def _failed(self, error: Exception) -> None:
        metrics.RATE_LIMIT_STORE_ERRORS.inc()
        if not self.store_failing:
            self.store_failing = True
            log.error("rate_limit_store_failed", error=str(error), effect="requests are not limited")

    def _recovered(self) -> None:
        if self.store_failing:
            self.store_failing = False
            log.info("rate_limit_store_recovered")


def rate_limit_store(settings: Settings) -> Store:
    """Return the Redis store that `rate_limit_redis_url` names, or a store in this process's memory."""
    if not settings.rate_limit_redis_url:
        return MemoryStore()
    client = Redis.from_url(settings.rate_limit_redis_url, socket_timeout=REDIS_TIMEOUT_SECONDS,
                            socket_connect_timeout=REDIS_TIMEOUT_SECONDS, retry=Retry(NoBackoff(), 0))
    return RedisStore(client, namespace=settings.rate_limit_namespace, handle_client_shutdown=True)


def rate_limit_middleware(settings: Settings) -> list[DefineMiddleware]:
    """Return one rate-limit middleware per route group whose limit is not 0."""
    limits = {RouteGroup.SEARCH: settings.rate_limit_search_per_minute,
              RouteGroup.ADMIN: settings.rate_limit_admin_per_minute}
    return [
        RateLimitConfig(
            rate_limit=(WINDOW, limit), store=STORE_NAME, middleware_class=FailOpenRateLimitMiddleware,
            check_throttle_handler=_in_group(group), identifier_for_request=_identity(group),
        ).middleware
        for group, limit in limits.items() if limit > 0
    ]


def _in_group(group: RouteGroup) -> Callable[[Request], bool]:
    def check(request: Request) -> bool:
        return route_group(request.scope["path_template"]) is group

    return check


def _identity(group: RouteGroup) -> Callable[[Request], str]:
    def identify(request: Request) -> str:
        caller = request.scope.get("user")
        if isinstance(caller, Caller):
            return f"{group}:key:{caller.name}"
        return f"{group}:address:{get_remote_address(request)}"

    return identify
