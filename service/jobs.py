"""Background reindex jobs started through the admin API.

One job runs at a time in a worker thread. A job runs the same scheduled build as
`python -m indexer schedule --once`: it skips an unchanged catalog and activates the new
version only past the promotion gate. Job states live in this process's memory.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import structlog

from indexer.build import BuildContext, BuildRequest
from indexer.catalog import ColumnMap
from indexer.errors import CatalogSearchError, JobNotFoundError, ReindexUnavailableError
from indexer.schedule import run_scheduled_build
from service import metrics

log = structlog.get_logger(__name__)


@dataclass
class ReindexJob:
    """State of one reindex: `queued`, `running`, `succeeded` or `failed`."""

    id: str
    state: str = "queued"
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    finished_at: datetime | None = None
    outcome: str | None = None
    version: int | None = None
    reasons: list[str] = field(default_factory=list)
    error: str | None = None


class ReindexJobs:
    """Starts reindex jobs and keeps their states."""

    def __init__(self, catalog_path: str, columns: str, max_removed_fraction: float) -> None:
        self.catalog_path = catalog_path
        self.columns = columns
        self.max_removed_fraction = max_removed_fraction
        self.jobs: dict[str, ReindexJob] = {}
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="reindex")
        self._lock = threading.Lock()

    def start(self, context: BuildContext, on_done: Callable[[], None]) -> ReindexJob:
        """Queue a reindex of the configured catalog; `on_done` runs after a success.

        Raises `ReindexUnavailableError` when no catalog is configured or a job is unfinished.
        """
        if not self.catalog_path:
            raise ReindexUnavailableError(
                "reindex is not configured: set CATALOG_SEARCH_CATALOG_PATH to the catalog file"
            )
        with self._lock:
            busy = [job.id for job in self.jobs.values() if job.state in ("queued", "running")]
            if busy:
                raise ReindexUnavailableError(f"reindex job {busy[0]} has not finished yet")
            job = ReindexJob(uuid.uuid4().hex)
            self.jobs[job.id] = job
        self._executor.submit(self._run, job, context, on_done)
        log.info("reindex_queued", job_id=job.id, catalog=self.catalog_path)
        return job

    def get(self, job_id: str) -> ReindexJob:
        job = self.jobs.get(job_id)
        if job is None:
            raise JobNotFoundError(f"reindex job {job_id} not found")
        return job

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _run(self, job: ReindexJob, context: BuildContext, on_done: Callable[[], None]) -> None:
        job.state = "running"
        request = BuildRequest(Path(self.catalog_path), ColumnMap.parse(self.columns))
        try:
            result = run_scheduled_build(request, context, [], self.max_removed_fraction)
        except CatalogSearchError as error:
            job.state, job.error = "failed", str(error)
            metrics.BUILDS.labels("failed").inc()
            log.error("reindex_failed", job_id=job.id, error=str(error))
        except Exception as error:  # a job thread must record every failure, bugs included
            job.state, job.error = "failed", f"internal error: {type(error).__name__}"
            metrics.BUILDS.labels("failed").inc()
            log.exception("reindex_crashed", job_id=job.id)
        else:
            metrics.BUILDS.labels(result.outcome).inc()
            for stage, seconds in result.timings.items():
                metrics.BUILD_STAGE_SECONDS.labels(stage.removesuffix("_seconds")).observe(seconds)
            job.state, job.outcome = "succeeded", result.outcome
            job.version, job.reasons = result.version, result.reasons
            log.info("reindex_finished", job_id=job.id, outcome=result.outcome,
                     index_version=result.version)
            on_done()
        job.finished_at = datetime.now(UTC)
