"""API keys and the audit log against a real database, without HTTP."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from indexer import audit, keys
from indexer.errors import ApiKeyError, VersionNotFoundError
from indexer.schema import ApiKey

pytestmark = pytest.mark.both_databases


def create(sessions, name: str, *scopes: str) -> str:
    with sessions.begin() as session:
        return keys.create_key(session, name, scopes)


def find(sessions, key: str):
    with sessions() as session:
        return keys.find_caller(session, key)


def test_created_key_is_stored_as_hash(sessions):
    key = create(sessions, "storefront", "search")

    with sessions() as session:
        stored = session.scalars(select(ApiKey)).one()
    assert keys.KEY_PATTERN.fullmatch(key)
    assert stored.key_hash == keys.hash_key(key)
    assert key not in (stored.key_hash, stored.key_id, stored.scopes, stored.name)
    assert stored.revoked_at is None


def test_valid_key_finds_caller(sessions):
    key = create(sessions, "operator", "admin", "search", "admin")

    caller = find(sessions, key)

    assert caller == keys.Caller("operator", frozenset({"search", "admin"}))


@pytest.mark.parametrize("scopes, search, admin", [
    (("search",), True, False),
    (("admin",), True, True),
    (("search", "admin"), True, True),
])
def test_admin_scope_grants_search(sessions, scopes, search, admin):
    caller = find(sessions, create(sessions, "holder", *scopes))

    assert caller.has_scope("search") is search
    assert caller.has_scope("admin") is admin


def test_wrong_unknown_and_malformed_keys_find_nobody(sessions):
    key = create(sessions, "storefront", "search")
    wrong_secret = key[:-1] + ("A" if key[-1] != "A" else "B")
    unknown_id = key[:3] + "f" * 12 + key[15:]

    assert find(sessions, wrong_secret) is None
    assert find(sessions, unknown_id) is None
    assert find(sessions, "cs_short") is None
    assert find(sessions, "") is None
    assert find(sessions, key + "x") is None


def test_revoked_key_finds_nobody(sessions):
    key = create(sessions, "storefront", "search")

    with sessions.begin() as session:
        revoked = keys.revoke_key(session, "storefront")

    assert revoked.revoked_at is not None
    assert find(sessions, key) is None


@pytest.mark.parametrize("name, scopes, message", [
    ("", ["search"], "invalid key name ''"),
    ("with space", ["search"], "invalid key name 'with space'"),
    ("-leading-dash", ["search"], "invalid key name"),
    ("x" * 101, ["search"], "invalid key name"),
    ("storefront", [], r"invalid scopes \[\]"),
    ("storefront", ["search", "write"], r"invalid scopes \['write'\]"),
])
def test_invalid_key_request_rejected(sessions, name, scopes, message):
    with pytest.raises(ApiKeyError, match=message), sessions.begin() as session:
        keys.create_key(session, name, scopes)


def test_name_of_revoked_key_stays_taken(sessions):
    create(sessions, "storefront", "search")
    with sessions.begin() as session:
        keys.revoke_key(session, "storefront")

    with pytest.raises(ApiKeyError, match="already exists"), sessions.begin() as session:
        keys.create_key(session, "storefront", ["search"])


def test_revoke_unknown_or_revoked_key_rejected(sessions):
    create(sessions, "storefront", "search")
    with sessions.begin() as session:
        keys.revoke_key(session, "storefront")

    with pytest.raises(ApiKeyError, match="already revoked"), sessions.begin() as session:
        keys.revoke_key(session, "storefront")
    with pytest.raises(ApiKeyError, match="no API key is named 'nobody'"), sessions.begin() as session:
        keys.revoke_key(session, "nobody")


def test_audited_success_recorded_with_action(sessions):
    with audit.audited(sessions, "operator", "key_created", "storefront") as action:
        keys.create_key(action.session, "storefront", ["search"])
        action.target = "storefront (search)"

    with sessions() as session:
        (entry,) = audit.list_entries(session, 10)
        assert session.scalars(select(ApiKey.name)).all() == ["storefront"]
    assert (entry.key_name, entry.action, entry.target, entry.result) == (
        "operator", "key_created", "storefront (search)", "ok")


def test_audited_failure_rolled_back_and_recorded(sessions):
    with pytest.raises(VersionNotFoundError):
        with audit.audited(sessions, "operator", "activate", "version 7") as action:
            keys.create_key(action.session, "written-then-rolled-back", ["search"])
            raise VersionNotFoundError(7)

    with sessions() as session:
        (entry,) = audit.list_entries(session, 10)
        assert session.scalars(select(ApiKey)).all() == []
    assert entry.result == "failed: index version 7 does not exist"


def test_audited_bug_recorded_without_its_message(sessions):
    with pytest.raises(ZeroDivisionError):
        with audit.audited(sessions, "operator", "rollback", "the previously active version"):
            1 / 0  # noqa: B018

    with sessions() as session:
        (entry,) = audit.list_entries(session, 10)
    assert entry.result == "failed: internal error (ZeroDivisionError)"


def test_audit_entries_listed_newest_first(sessions):
    for number in range(3):
        with audit.audited(sessions, "cli", "activate", f"version {number}"):
            pass

    with sessions() as session:
        entries = audit.list_entries(session, 2)

    assert [entry.target for entry in entries] == ["version 2", "version 1"]
