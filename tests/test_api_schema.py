"""Property-based tests of the service against its own OpenAPI schema (Schemathesis): whatever the generated
requests hold, no server error, and every response is one the schema documents.

One check is left out: "schema-valid data is accepted". The schema can say that a body is bytes, not that the
bytes are an ECG, so a schema-valid PNG rightly gets a 422 with the reader's reason."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from .serving import KEY, Server


@pytest.fixture(scope="module")
def api(small_model, tmp_path_factory):
    server = Server(small_model, tmp_path_factory.mktemp("schema-server"))
    yield server
    server.stop()


def test_every_operation_keeps_to_the_schema(api):
    schema = schemathesis.openapi.from_url(api.url + "/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/health", "/v1/models", "/v1/predict", "/v1/explain"}
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=30, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def keeps_to_schema(case):
            case.call_and_validate(headers={"Authorization": f"Bearer {KEY}"},
                                   excluded_checks=[positive_data_acceptance])

        keeps_to_schema()
    assert api.log.read_text().count(" request ") >= 4 * 10  # the generated requests did reach the server
