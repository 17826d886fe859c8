"""Schemathesis against the service's own OpenAPI schema, over HTTP with the real model.

Every operation gets schema-valid (positive) and schema-violating (negative) requests with
an admin key, from a fixed seed with derandomized generation. The test fails on any 5xx,
on any status code, content type, header or body that the schema does not describe, and on
any body that shows a stack trace or a path of the service's data folder.
"""

from __future__ import annotations

import dataclasses

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import TOOLS
from tests.integration.test_admin import renamed

pytestmark = [pytest.mark.integration, pytest.mark.sqlite_only]

SEED = 20261204
EXAMPLES_PER_OPERATION = 110
"""Hypothesis examples per operation and generation mode. Health and readiness take no
input and have one possible request each. The eight other operations, positive and negative
(the key header counts as input), make 1,762 cases with schemathesis 4.32.5."""

MIN_CASES = 1000

# The schema advertises these limits, so generated requests stay small enough for the
# model to encode each one in a few milliseconds.
SMALL_LIMITS = {"max_queries": 4, "max_products": 8, "max_text_chars": 64, "max_top_k": 20}


def test_schema_fuzzing_finds_no_violation(settings, build, write_csv, serve, api_key):
    build(write_csv(renamed("A"), name="a.csv"))
    catalog = write_csv(TOOLS, name="catalog.csv")
    build(catalog, activate=False)
    configured = dataclasses.replace(settings, **SMALL_LIMITS, catalog_path=str(catalog),
                                     rate_limit_search_per_minute=0, rate_limit_admin_per_minute=0)
    headers = {"X-API-Key": api_key("fuzzer", "admin")}
    data_dir = str(settings.data_dir.resolve())

    def no_internal_details(ctx, response, case) -> None:
        assert "Traceback" not in response.text, "a response shows a stack trace"
        assert data_dir not in response.text, "a response shows a path of the data folder"

    checks = [not_a_server_error, status_code_conformance, content_type_conformance,
              response_headers_conformance, response_schema_conformance, no_internal_details]
    cases = 0

    with serve(configured) as client:
        root = str(client.base_url).rstrip("/").removesuffix("/api/v1")
        schema = schemathesis.openapi.from_url(f"{root}/docs/openapi.json")
        operations = [result.ok() for result in schema.get_all_operations()]

        for operation in operations:
            # A request without parameters or body has nothing that could violate the schema.
            takes_input = bool(list(operation.iter_parameters())) or bool(operation.body)
            for mode in list(GenerationMode) if takes_input else [GenerationMode.POSITIVE]:

                @hypothesis_settings(max_examples=EXAMPLES_PER_OPERATION, derandomize=True, database=None,
                                     deadline=None, suppress_health_check=list(HealthCheck),
                                     phases=[Phase.explicit, Phase.generate, Phase.shrink])
                @seed(SEED)
                @given(case=operation.as_strategy(generation_mode=mode))
                def send(case) -> None:
                    nonlocal cases
                    cases += 1
                    response = case.call(base_url=root, headers=headers, timeout=60)
                    case.validate_response(response, checks=checks, headers=headers)

                send()

    assert len(operations) >= 10
    assert cases >= MIN_CASES, f"only {cases} cases ran"
