"""API keys: creation, lookup and revocation.

A key reads `cs_<key id>_<secret>`. The `cs_` prefix lets operators and secret scanners
recognise a catalog-search key. The key id is 12 random hex digits that find the key's row,
and the secret is 32 random bytes in URL-safe base64. The database stores only the SHA-256
of the whole key: a key with 256 random bits cannot be guessed from its hash, so it needs
no slow password hash.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from indexer.errors import ApiKeyError
from indexer.schema import SCOPES, ApiKey

KEY_PREFIX = "cs_"
KEY_PATTERN = re.compile(r"cs_(?P<key_id>[0-9a-f]{12})_[A-Za-z0-9_-]{43}")
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
"""Key names are safe in logs, the audit log and rate-limit counters: no spaces, at most 100."""

UNKNOWN_KEY_HASH = "0" * 64
"""Compared against when no row has the key id, so that unknown and wrong keys take the same path."""


@dataclass(frozen=True)
class Caller:
    """Holder of a valid API key: its name and scopes."""

    name: str
    scopes: frozenset[str]

    def has_scope(self, scope: str) -> bool:
        """Return whether the key grants `scope`; the admin scope grants search too."""
        return scope in self.scopes or "admin" in self.scopes


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(session: Session, name: str, scopes: Iterable[str]) -> str:
    """Store a new key under `name` in the caller's transaction and return the key.

    Raises `ApiKeyError` for an invalid name, no scope or an unknown scope, or a name that
    another key, revoked ones included, already has.
    """
    wanted = set(scopes)
    if not NAME_PATTERN.fullmatch(name):
        raise ApiKeyError(f"invalid key name {name!r}: use 1 to 100 letters, digits, '.', '_' or '-', "
                          "starting with a letter or digit")
    unknown = sorted(wanted - set(SCOPES))
    if not wanted or unknown:
        raise ApiKeyError(f"invalid scopes {unknown or []}: give one or more of {', '.join(SCOPES)}")
    if session.scalar(select(ApiKey.id).where(ApiKey.name == name)) is not None:
        raise ApiKeyError(f"an API key named {name!r} already exists; revoked keys keep their names")

    key_id = secrets.token_hex(6)
    key = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    session.add(ApiKey(name=name, key_id=key_id, key_hash=hash_key(key),
                       scopes=" ".join(scope for scope in SCOPES if scope in wanted),
                       created_at=datetime.now(UTC)))
    session.flush()
    return key


def list_keys(session: Session) -> list[ApiKey]:
    """Return every key, revoked ones included, oldest first."""
    return list(session.scalars(select(ApiKey).order_by(ApiKey.id)))


def revoke_key(session: Session, name: str) -> ApiKey:
    """Mark the key `name` revoked in the caller's transaction.

    Raises `ApiKeyError` when no key has that name or the key is already revoked.
    """
    record = session.scalar(select(ApiKey).where(ApiKey.name == name))
    if record is None:
        raise ApiKeyError(f"no API key is named {name!r}; list them with: python -m indexer keys list")
    if record.revoked_at is not None:
        raise ApiKeyError(f"the API key {name!r} was already revoked at "
                          f"{record.revoked_at:%Y-%m-%d %H:%M:%S} UTC")
    record.revoked_at = datetime.now(UTC)
    session.flush()
    return record


def find_caller(session: Session, presented: str) -> Caller | None:
    """Return the holder of `presented`, or None for a malformed, unknown, wrong or revoked key.

    The hash is compared in constant time, also when no row has the key id.
    """
    match = KEY_PATTERN.fullmatch(presented)
    if match is None:
        return None
    record = session.scalar(select(ApiKey).where(ApiKey.key_id == match["key_id"]))
    expected = record.key_hash if record is not None else UNKNOWN_KEY_HASH
    if not hmac.compare_digest(hash_key(presented), expected) or record is None:
        return None
    if record.revoked_at is not None:
        return None
    return Caller(record.name, frozenset(record.scopes.split()))
