"""Index administration under /api/v1/index (versions, activation, rollback, reindex) and the
audit log under /api/v1/audit.

Every route needs an API key with the admin scope (see `service.auth`). Activation,
rollback and reindex are recorded in the audit log with the key's name.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from anyio import to_thread
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, JSONBody, Parameter
from litestar.status_codes import HTTP_200_OK, HTTP_202_ACCEPTED

from indexer import audit, versions
from indexer.arguments import MAX_RECORD_NUMBER
from indexer.schema import AuditEntry, IndexVersion
from service.auth import caller_name
from service.jobs import ReindexJob
from service.runtime import Runtime
from service.schemas import ErrorBody

MAX_AUDIT_ENTRIES = 1000
"""Maximum entries per request to the audit log; the command line has no such limit."""


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
    model_version: int | None
    """Trained model version the products were embedded with; null for the configured model."""
    source_path: str
    note: str | None
    error: str | None


MAX_VERSION = MAX_RECORD_NUMBER


class ActivateRequest(msgspec.Struct, forbid_unknown_fields=True):
    version: Annotated[int, msgspec.Meta(ge=1, le=MAX_VERSION, description="Version number to activate.")]


class AuditRecord(msgspec.Struct):
    """One admin action; `result` is `ok` or `failed: ` and the error."""

    occurred_at: datetime
    key_name: str
    action: str
    target: str
    result: str


class JobRecord(msgspec.Struct):
    job_id: str
    state: str
    created_at: datetime
    finished_at: datetime | None
    outcome: str | None
    version: int | None
    reasons: list[str]
    error: str | None


def to_record(record: IndexVersion, active_id: int | None) -> VersionRecord:
    return VersionRecord(
        record.id, versions.shown_status(record, active_id), record.created_at, record.finished_at,
        record.product_count, record.skipped_count, record.new_count, record.changed_count,
        record.unchanged_count, record.removed_count, record.encoded_count, record.build_seconds,
        record.model_name, record.model_version_id, record.source_path, record.note, record.error,
    )


def to_job(job: ReindexJob) -> JobRecord:
    return JobRecord(job.id, job.state, job.created_at, job.finished_at, job.outcome, job.version,
                     job.reasons, job.error)


def to_audit_record(entry: AuditEntry) -> AuditRecord:
    return AuditRecord(entry.occurred_at, entry.key_name, entry.action, entry.target, entry.result)


class AdminController(Controller):
    path = "/api/v1/index"
    tags = ["index administration"]

    @get("/versions", sync_to_thread=True)
    def list_versions(self, runtime: NamedDependency[Runtime]) -> list[VersionRecord]:
        """List every index version, newest first, with its build record."""
        with runtime.sessions() as session:
            active = versions.get_active(session)
            active_id = active.version.id if active else None
            return [to_record(record, active_id) for record in versions.list_versions(session)]

    @post("/activate", status_code=HTTP_200_OK,
          responses={404: ResponseSpec(ErrorBody), 409: ResponseSpec(ErrorBody)})
    async def activate(self, data: JSONBody[ActivateRequest], request: Request,
                       runtime: NamedDependency[Runtime]) -> VersionRecord:
        """Activate a ready version; this replica serves it before it responds."""
        record = await to_thread.run_sync(runtime.move_pointer, data.version, caller_name(request))
        await runtime.refresh()
        return to_record(record, record.id)

    @post("/rollback", status_code=HTTP_200_OK, responses={409: ResponseSpec(ErrorBody)})
    async def rollback(self, request: Request, runtime: NamedDependency[Runtime]) -> VersionRecord:
        """Re-activate the version that was active before the current one."""
        record = await to_thread.run_sync(runtime.move_pointer, None, caller_name(request))
        await runtime.refresh()
        return to_record(record, record.id)

    @post("/reindex", status_code=HTTP_202_ACCEPTED, sync_to_thread=True,
          responses={409: ResponseSpec(ErrorBody), 503: ResponseSpec(ErrorBody)})
    def reindex(self, request: Request, runtime: NamedDependency[Runtime]) -> JobRecord:
        """Start a reindex of the catalog file that CATALOG_SEARCH_CATALOG_PATH names; poll the
        job for its result. A request body is ignored, so no request can choose the file."""
        return to_job(runtime.start_reindex(caller_name(request)))

    @get("/jobs/{job_id:str}", sync_to_thread=False, responses={404: ResponseSpec(ErrorBody)})
    def job(self, job_id: FromPath[str], runtime: NamedDependency[Runtime]) -> JobRecord:
        """Return a reindex job's state and, once finished, its outcome."""
        return to_job(runtime.jobs.get(job_id))


class AuditController(Controller):
    path = "/api/v1/audit"
    tags = ["index administration"]

    @get(sync_to_thread=True)
    def audit_log(self, runtime: NamedDependency[Runtime],
                  limit: Annotated[int, Parameter(ge=1, le=MAX_AUDIT_ENTRIES,
                                                  description="Entries to return, newest first.")] = 100,
                  ) -> list[AuditRecord]:
        """List the newest admin actions with the key that requested each and its result."""
        with runtime.sessions() as session:
            return [to_audit_record(entry) for entry in audit.list_entries(session, limit)]
