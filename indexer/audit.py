"""The audit log: who requested each admin action, on what, and how it ended.

Admin actions are activate, rollback and reindex through the API or the command line, and
the creation and revocation of API keys. The command line records itself as `cli`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from indexer.errors import CatalogSearchError
from indexer.schema import AuditEntry

log = structlog.get_logger(__name__)

CLI_ACTOR = "cli"
"""Key name recorded for actions run through `python -m indexer`."""

OK = "ok"


@dataclass
class AuditedAction:
    """The transaction an audited action runs in, and its target, which the action may refine."""

    session: Session
    target: str


@contextmanager
def audited(sessions: sessionmaker[Session], key_name: str, action: str,
            target: str) -> Iterator[AuditedAction]:
    """Run an admin action in one transaction and record it in the audit log.

    A success is recorded in the action's own transaction, so that a committed action is
    never missing from the log. A failure rolls the action back and is recorded in a new
    transaction with its error; the error is then raised again.
    """
    audited_action: AuditedAction | None = None
    try:
        with sessions.begin() as session:
            audited_action = AuditedAction(session, target)
            yield audited_action
            session.add(_entry(key_name, action, audited_action.target, OK))
    except Exception as error:
        _record_failure(sessions, key_name, action, audited_action.target if audited_action else target,
                        error)
        raise


def _record_failure(sessions: sessionmaker[Session], key_name: str, action: str, target: str,
                    error: Exception) -> None:
    internal = f"internal error ({type(error).__name__})"
    reason = str(error) if isinstance(error, CatalogSearchError) else internal
    try:
        with sessions.begin() as session:
            session.add(_entry(key_name, action, target, f"failed: {reason}"))
    except SQLAlchemyError as write_error:
        # The action's own error is raised by the caller; this one must not replace it.
        log.error("audit_write_failed", action=action, key_name=key_name, error=str(write_error))


def _entry(key_name: str, action: str, target: str, result: str) -> AuditEntry:
    return AuditEntry(occurred_at=datetime.now(UTC), key_name=key_name, action=action, target=target,
                      result=result)


def list_entries(session: Session, limit: int) -> list[AuditEntry]:
    """Return the newest `limit` entries, newest first."""
    return list(session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)))
