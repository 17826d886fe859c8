"""Scheduled reindexing: build when the catalog changed, activate only past the gate."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import cast

import structlog
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import select

from indexer import artifacts, versions
from indexer.build import BuildContext, BuildReport, BuildRequest, build_version
from indexer.checksums import sha256_file
from indexer.errors import CatalogError
from indexer.gate import GoldenQuery, check_golden, check_model_change, check_removed
from indexer.schema import IndexVersion

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class ScheduledRun:
    """Outcome of one run: `skipped` (catalog unchanged), `activated` or `held` (gate failed)."""

    outcome: str
    version: int | None
    reasons: list[str]
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds per build stage; empty when nothing was built."""


def run_scheduled_build(request: BuildRequest, context: BuildContext, golden: list[GoldenQuery],
                        max_removed_fraction: float) -> ScheduledRun:
    """Build the catalog unless a ready or active version already has its checksum, then
    activate the new version only when it passes the promotion gate."""
    if not request.catalog.is_file():
        raise CatalogError(f"catalog file not found: {request.catalog}")
    checksum = sha256_file(request.catalog)
    with context.sessions() as session:
        same = session.scalars(
            select(IndexVersion.id).where(IndexVersion.source_checksum == checksum,
                                          IndexVersion.status == "ready")
            .order_by(IndexVersion.id.desc()).limit(1)
        ).first()
    if same is not None:
        log.info("scheduled_build_skipped", index_version=same, reason="catalog checksum unchanged")
        return ScheduledRun("skipped", same, [f"catalog unchanged since version {same}"])

    build = BuildRequest(request.catalog, request.columns, request.format, request.skip_invalid,
                         activate=False, progress=request.progress)
    report = cast(BuildReport, build_version(build, context))
    reasons = _gate(report, context, golden, max_removed_fraction)

    with context.sessions.begin() as session:
        if reasons:
            session.get_one(IndexVersion, report.version).note = "; ".join(reasons)
        else:
            versions.activate(session, report.version, source="scheduler")
    if reasons:
        log.warning("promotion_rejected", index_version=report.version, reasons=reasons)
        return ScheduledRun("held", report.version, reasons, report.timings)
    log.info("version_activated", index_version=report.version, source="scheduler")
    return ScheduledRun("activated", report.version, [], report.timings)


def _gate(report: BuildReport, context: BuildContext, golden: list[GoldenQuery],
          max_removed_fraction: float) -> list[str]:
    base_count = None
    with context.sessions() as session:
        if report.plan.base_version is not None:
            base_count = versions.get_version(session, report.plan.base_version).product_count
        checksum = versions.get_version(session, report.version).artifact_checksum or ""
        product_ids = versions.load_products(session, report.version).ids
    reasons = check_removed(report.plan.removed, base_count, max_removed_fraction)
    with context.sessions() as session:
        reasons += check_model_change(session, context.load_embedder(), context.promotion)
    if golden:
        index = artifacts.read_version(report.path, report.version, checksum).index
        reasons += check_golden(golden, context.load_embedder(), index, product_ids)
    return reasons


def run_on_schedule(cron: str, run: Callable[[], object]) -> None:
    """Call `run` at every time the crontab expression names (UTC), until interrupted.

    Runs never overlap: a run still going when the next is due makes that one skip.
    """
    trigger = cron_trigger(cron)
    scheduler = BlockingScheduler(timezone="UTC")
    scheduler.add_job(run, trigger, max_instances=1, coalesce=True, misfire_grace_time=3600)
    log.info("schedule_started", cron=cron,
             next_run=str(trigger.get_next_fire_time(None, datetime.now(UTC))))
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        log.info("schedule_stopped")


def cron_trigger(cron: str) -> CronTrigger:
    """Parse a five-field crontab expression; raises `CatalogError` when it is invalid."""
    try:
        return CronTrigger.from_crontab(cron, timezone="UTC")
    except ValueError as error:
        raise CatalogError(f"invalid cron expression {cron!r}: {error}") from error

