"""Index administration under /api/v1/index: versions, activation, rollback, reindex.

Every route needs the admin key in the `X-API-Key` header, or returns 401. Without a
configured key (`CATALOG_SEARCH_ADMIN_KEY`) every route returns 403 and changes nothing.
"""

from __future__ import annotations

import hmac
from datetime import datetime

import msgspec
from anyio import to_thread
from litestar import Controller, get, post
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency
from litestar.handlers.base import BaseRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_202_ACCEPTED

from indexer import versions
from indexer.errors import AccessDeniedError, AuthenticationError
from indexer.schema import IndexVersion
from service.jobs import ReindexJob
from service.runtime import Runtime
from service.schemas import ErrorBody

API_KEY_HEADER = "X-API-Key"


class VersionRecord(msgspec.Struct):
    """An index version as the admin API lists it; `status` is `active` for the served pointer."""

    version: int
    status: str
    created_at: datetime
    finished_at: datetime | None
    product_count: int | None
    skipped_count: int
    new_count: int | None
    changed_count: int | None
    unchanged_count: int | None
    removed_count: int | None
    encoded_count: int | None
    build_seconds: float | None
    model_name: str
    source_path: str
    note: str | None
    error: str | None


class ActivateRequest(msgspec.Struct, forbid_unknown_fields=True):
    version: int


class JobRecord(msgspec.Struct):
    job_id: str
    state: str
    created_at: datetime
    finished_at: datetime | None
    outcome: str | None
    version: int | None
    reasons: list[str]
    error: str | None


async def require_admin_key(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    """Guard: raise `AccessDeniedError` while admin routes are disabled, and
    `AuthenticationError` unless the request carries the configured admin key."""
    runtime: Runtime = connection.app.state.runtime
    expected = runtime.settings.admin_key
    if not expected:
        raise AccessDeniedError("the admin API is disabled: set CATALOG_SEARCH_ADMIN_KEY to enable it")
    sent = connection.headers.get(API_KEY_HEADER, "")
    if not hmac.compare_digest(sent.encode(), expected.encode()):
        raise AuthenticationError(f"missing or invalid {API_KEY_HEADER} header")


def to_record(record: IndexVersion, active_id: int | None) -> VersionRecord:
    return VersionRecord(
        record.id, versions.shown_status(record, active_id), record.created_at, record.finished_at,
        record.product_count, record.skipped_count, record.new_count, record.changed_count,
        record.unchanged_count, record.removed_count, record.encoded_count, record.build_seconds,
        record.model_name, record.source_path, record.note, record.error,
    )


def to_job(job: ReindexJob) -> JobRecord:
    return JobRecord(job.id, job.state, job.created_at, job.finished_at, job.outcome, job.version,
                     job.reasons, job.error)


DENIED = ResponseSpec(ErrorBody, description="Missing or invalid admin key, or admin API disabled")


class AdminController(Controller):
    path = "/api/v1/index"
    tags = ["index administration"]
    guards = [require_admin_key]
    responses = {401: DENIED, 403: DENIED}

    @get("/versions", sync_to_thread=True)
    def list_versions(self, runtime: NamedDependency[Runtime]) -> list[VersionRecord]:
        """List every index version, newest first, with its build record."""
        with runtime.sessions() as session:
            active = versions.get_active(session)
            active_id = active.version.id if active else None
            return [to_record(record, active_id) for record in versions.list_versions(session)]

    @post("/activate", status_code=HTTP_200_OK,
          responses={404: ResponseSpec(ErrorBody), 409: ResponseSpec(ErrorBody)})
    async def activate(self, data: JSONBody[ActivateRequest],
                       runtime: NamedDependency[Runtime]) -> VersionRecord:
        """Activate a ready version; this replica serves it before it responds."""
        record = await to_thread.run_sync(runtime.move_pointer, data.version)
        await runtime.refresh()
        return to_record(record, record.id)

    @post("/rollback", status_code=HTTP_200_OK, responses={409: ResponseSpec(ErrorBody)})
    async def rollback(self, runtime: NamedDependency[Runtime]) -> VersionRecord:
        """Re-activate the version that was active before the current one."""
        record = await to_thread.run_sync(runtime.move_pointer, None)
        await runtime.refresh()
        return to_record(record, record.id)

    @post("/reindex", status_code=HTTP_202_ACCEPTED, sync_to_thread=False,
          responses={409: ResponseSpec(ErrorBody), 503: ResponseSpec(ErrorBody)})
    def reindex(self, runtime: NamedDependency[Runtime]) -> JobRecord:
        """Start a reindex of the configured catalog source; poll the job for its result."""
        return to_job(runtime.start_reindex())

    @get("/jobs/{job_id:str}", sync_to_thread=False, responses={404: ResponseSpec(ErrorBody)})
    def job(self, job_id: FromPath[str], runtime: NamedDependency[Runtime]) -> JobRecord:
        """Return a reindex job's state and, once finished, its outcome."""
        return to_job(runtime.jobs.get(job_id))
