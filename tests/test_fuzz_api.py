"""Schemathesis against the app's own OpenAPI schema, signed in with a token of every role, on a live server
(embedded default): a fixed, derandomized number of examples per operation; no 5xx, no response that
breaks the schema."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from api import create_app
from sohoa.settings import Settings

from conftest import LiveServer
from deploy import api_token

EXAMPLES = 20  # per operation; printed in the closing figures (operations × EXAMPLES)


@pytest.fixture(scope="module")
def fuzz_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    data: Path = tmp_path_factory.mktemp("fuzz") / "data"
    app_settings = Settings(data_dir=data, worker_threads=1)
    server = LiveServer(create_app(app_settings))
    try:
        yield server.url, {"Authorization": f"Bearer {api_token(app_settings)}"}
    finally:
        server.stop()


@pytest.fixture(scope="module")
def api_schema(fuzz_target: tuple[str, dict[str, str]]) -> schemathesis.BaseSchema:
    url, auth = fuzz_target
    return schemathesis.openapi.from_url(f"{url}/openapi.json", headers=auth)


def test_api_fuzz(api_schema: schemathesis.BaseSchema, fuzz_target: tuple[str, dict[str, str]]) -> None:
    """Every operation of the schema, EXAMPLES derandomized examples each (Schemathesis' pytest plugin is not
    used: it does not run on this pytest; its strategies and checks are)."""
    url, auth = fuzz_target
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 25
    calls = 0
    failures: list[str] = []
    for op in operations:

        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck),
                  database=None)  # fmt: skip
        @given(case=op.as_strategy())
        def run(case: schemathesis.Case) -> None:
            nonlocal calls
            if case.path == "/tokens/{token_id}" and case.method == "DELETE":
                case.path_parameters = {"token_id": "0123456789ab"}  # never the token this test signs in with
            calls += 1
            case.call_and_validate(base_url=url, headers=auth, checks=[not_a_server_error,
                                                                        response_schema_conformance])  # fmt: skip

        try:
            run()
        except Exception as e:  # noqa: BLE001 - collected and reported together
            failures.append(f"{op.method.upper()} {op.path}: {str(e)[:1500]}")
    print(f"fuzzed {len(operations)} operations with {calls} requests")
    assert not failures, "\n\n".join(failures)
