"""Every row of the domain-error table, checked through a real app."""

from __future__ import annotations

import pytest
from litestar import Litestar, get
from litestar.testing import TestClient

from indexer.errors import (
    AccessDeniedError,
    ArtifactError,
    AuthenticationError,
    BuildLockedError,
    DatabaseUnavailableError,
    IndexNotReadyError,
    JobNotFoundError,
    ModelNotReadyError,
    NoRollbackTargetError,
    ProductNotFoundError,
    ReindexUnavailableError,
    VersionNotActivatableError,
    VersionNotFoundError,
)
from service.errors import EXCEPTION_HANDLERS, STATUS_BY_ERROR

CASES = [
    (IndexNotReadyError("no index version is active"), 503),
    (ModelNotReadyError("the embedding model is still loading"), 503),
    (VersionNotFoundError(4), 404),
    (VersionNotActivatableError(4, "failed"), 409),
    (JobNotFoundError("reindex job 5f not found"), 404),
    (ProductNotFoundError("HT-9", 3), 404),
    (NoRollbackTargetError("version 1 was the first active version"), 409),
    (ReindexUnavailableError("reindex is not configured"), 409),
    (BuildLockedError("another build is running"), 409),
    (AuthenticationError("missing or invalid X-API-Key header"), 401),
    (AccessDeniedError("the API key lacks the admin scope that this route needs"), 403),
    (DatabaseUnavailableError("the metadata database is unavailable"), 503),
]


def client_raising(error: Exception) -> TestClient:
    @get("/fail", sync_to_thread=False)
    def fail() -> None:
        raise error

    return TestClient(Litestar([fail], exception_handlers=EXCEPTION_HANDLERS))


def test_every_mapped_error_has_a_case():
    assert {type(error) for error, _ in CASES} == set(STATUS_BY_ERROR)


@pytest.mark.parametrize("error, status", CASES, ids=lambda value: type(value).__name__)
def test_mapped_error_status_and_detail(error, status):
    with client_raising(error) as client:
        response = client.get("/fail")

    assert response.status_code == status
    assert response.json() == {"status_code": status, "detail": str(error)}


def test_unmapped_domain_error_hides_detail():
    with client_raising(ArtifactError(3, "secret path /srv/x")) as client:
        response = client.get("/fail")

    assert response.status_code == 500
    assert response.json() == {"status_code": 500, "detail": "Internal Server Error"}
