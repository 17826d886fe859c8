"""Two service processes on one database and one artifact folder follow one active pointer."""

from __future__ import annotations

import pytest

from tests.conftest import TOOLS
from tests.integration.service_process import served_version, service_process

pytestmark = pytest.mark.integration

POLL_SECONDS = 1.0


def test_activation_through_one_replica_reaches_both(settings, build, write_csv, api_key):
    build(write_csv(TOOLS, name="first.csv"))
    key = api_key("operator", "admin")
    second = build(write_csv(TOOLS[:4], name="second.csv"), activate=False)

    with (service_process(settings, POLL_SECONDS) as first_replica,
          service_process(settings, POLL_SECONDS) as second_replica):
        assert served_version(first_replica, until=lambda version: version == 1) == 1
        assert served_version(second_replica, until=lambda version: version == 1) == 1

        response = first_replica.post("/index/activate", json={"version": second.version},
                                      headers={"X-API-Key": key})
        served_at_once = first_replica.post("/search", json={"queries": ["saw"]}).json()["index_version"]
        # The other replica reads the pointer within its poll interval; the attempts below
        # allow twice that and the time to load the version.
        followed = served_version(second_replica, until=lambda version: version == second.version,
                                  attempts=int(2 * POLL_SECONDS / 0.05) + 100)
        search = second_replica.post("/search", json={"queries": ["saw"]}).json()

    assert response.status_code == 200
    assert served_at_once == second.version
    assert followed == second.version
    assert search["index_version"] == second.version
