"""Queries and state changes of index versions and the active pointer."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from indexer import catalog
from indexer.errors import NoRollbackTargetError, VersionNotActivatableError, VersionNotFoundError
from indexer.schema import Activation, ActiveIndex, IndexVersion, Product

RECORD_BATCH = 5000
"""Product rows per INSERT and per transaction. SQLite has one write lock per database,
and a batch holds it for about 0.2 s on two cores, so other writers such as an activation
get the lock between batches instead of after the whole catalog. 5,000 rows of 9 columns
also stay under PostgreSQL's limit of 65,535 bind parameters per statement."""


@dataclass(frozen=True)
class ActiveVersion:
    """The version the active pointer names, and when it was activated."""

    version: IndexVersion
    activated_at: datetime


@dataclass(frozen=True)
class StoredProducts:
    """The products of one version, ordered by their position in the FAISS index."""

    ids: list[str]
    titles: list[str]
    categories: list[str]
    brands: list[str]


def list_versions(session: Session) -> list[IndexVersion]:
    """Return every version, newest first."""
    return list(session.scalars(select(IndexVersion).order_by(IndexVersion.id.desc())))


def get_version(session: Session, version: int) -> IndexVersion:
    """Return one version; raises `VersionNotFoundError`."""
    record = session.get(IndexVersion, version)
    if record is None:
        raise VersionNotFoundError(version)
    return record


def get_active(session: Session) -> ActiveVersion | None:
    """Return the active version, or None when no version was ever activated."""
    row = session.execute(
        select(IndexVersion, ActiveIndex.activated_at).join(
            ActiveIndex, ActiveIndex.version_id == IndexVersion.id
        )
    ).first()
    return None if row is None else ActiveVersion(row[0], row[1])


def shown_status(record: IndexVersion, active_id: int | None) -> str:
    """Return the stored status, or `active` for the version the pointer names."""
    return "active" if record.id == active_id else record.status


def activate(session: Session, version: int, source: str, action: str = "activate") -> IndexVersion:
    """Point the active pointer at a ready version and record the move, in the caller's
    transaction.

    Raises `VersionNotFoundError`, or `VersionNotActivatableError` for a version that is
    building, failed or retired.
    """
    record = get_version(session, version)
    if record.status != "ready":
        raise VersionNotActivatableError(version, record.status)

    pointer = session.get(ActiveIndex, 1, with_for_update=True)
    previous = pointer.version_id if pointer else None
    if previous == version:
        # Recording a move onto itself would make the next rollback return to this version.
        return record
    now = datetime.now(UTC)
    if pointer is None:
        session.add(ActiveIndex(id=1, version_id=version, activated_at=now))
    else:
        pointer.version_id = version
        pointer.activated_at = now
    session.add(Activation(version_id=version, previous_version_id=previous, action=action,
                           source=source, activated_at=now))
    session.flush()
    return record


def rollback(session: Session, source: str) -> IndexVersion:
    """Re-activate the version that was active before the current one.

    Raises `NoRollbackTargetError` when nothing was active before, and
    `VersionNotActivatableError` when that version is no longer ready (retired by pruning).
    """
    pointer = session.get(ActiveIndex, 1, with_for_update=True)
    if pointer is None:
        raise NoRollbackTargetError("no index version is active, so there is nothing to roll back")
    last = session.scalars(
        select(Activation).where(Activation.version_id == pointer.version_id)
        .order_by(Activation.id.desc()).limit(1)
    ).first()
    if last is None or last.previous_version_id is None:
        raise NoRollbackTargetError(
            f"version {pointer.version_id} was the first active version; there is none to roll back to"
        )
    return activate(session, last.previous_version_id, source, action="rollback")


def load_products(session: Session, version: int) -> StoredProducts:
    """Return the ids, titles, categories and brands of a version's products in FAISS
    position order."""
    rows = session.execute(
        select(Product.product_id, Product.title, Product.category, Product.brand)
        .where(Product.version_id == version)
        .order_by(Product.position)
    ).all()
    columns = list(zip(*rows, strict=True)) if rows else [(), (), (), ()]
    return StoredProducts(*(list(column) for column in columns))


def load_attributes(session: Session, version: int) -> list[dict[str, Any]]:
    """Return the attributes of a version's products in FAISS position order."""
    return list(session.scalars(
        select(Product.attributes).where(Product.version_id == version).order_by(Product.position)
    ))


def load_texts(session: Session, version: int, template: str) -> list[str]:
    """Render the texts a version's products were embedded from, in FAISS position order."""
    rows = session.execute(
        select(Product.product_id, Product.title, Product.description, Product.category, Product.brand)
        .where(Product.version_id == version)
        .order_by(Product.position)
    )
    return [catalog.Product(*row).text(template) for row in rows]


def record_products(sessions: sessionmaker[Session], version: int, products: Iterable[catalog.Product],
                    hashes: Iterable[str], first_position: int = 0) -> int:
    """Insert a `building` version's products in FAISS position order, from `first_position` on.

    `hashes` are the SHA-256 digests of the products' embedded texts, in the same order.
    Each batch of `RECORD_BATCH` rows is committed on its own. Partly recorded products do
    no harm, because nothing reads the products of a version before it is `ready`, and a
    failed build deletes them with `delete_products`. Returns the number of rows inserted.
    """
    rows = (
        {"version_id": version, "position": position, "product_id": product.id,
         "title": product.title, "description": product.description,
         "category": product.category, "brand": product.brand,
         "attributes": product.attributes, "text_sha256": digest}
        for position, (product, digest) in enumerate(zip(products, hashes, strict=True),
                                                      start=first_position)
    )
    count = 0
    while batch := list(itertools.islice(rows, RECORD_BATCH)):
        with sessions.begin() as session:
            session.execute(insert(Product), batch)
        count += len(batch)
    return count


def delete_products(sessions: sessionmaker[Session], version: int) -> None:
    """Delete a version's products, `RECORD_BATCH` positions per transaction."""
    with sessions() as session:
        last = session.scalar(select(func.max(Product.position)).where(Product.version_id == version))
    if last is None:
        return
    for start in range(0, last + 1, RECORD_BATCH):
        with sessions.begin() as session:
            session.execute(delete(Product).where(
                Product.version_id == version, Product.position >= start,
                Product.position < start + RECORD_BATCH))
