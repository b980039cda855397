"""Property-based fuzzing of every operation against the server's own OpenAPI schema
(schemathesis), over a throw-away copy of the fixture index, with the API key sent so that the
write paths are exercised past authentication: no 5xx, responses that match their schema and
documented status codes, and no response naming a server path.

The long run (every phase, thousands of cases) is ``python -m policyqa.eval.bench.fuzz_api``; this
keeps a fixed, derandomised sample of it in every test run.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from policyqa.api.app import create_app
from policyqa.service import QAService
from tests.api.conftest import AUTH, make_settings
from tests.helpers import HashingEncoder

#: A server path in a response: the test's own temporary root, or any absolute path of the
#: usual server directories.
_SERVER_PATH = re.compile(r"(?<![\w.:/])/(?:tmp|root|home|var|srv|opt|usr|etc|work)/")


@schemathesis.check
def no_server_path(ctx: Any, response: Any, case: Any) -> bool | None:
    """No response body names a directory of the server."""
    text = response.text if isinstance(response.text, str) else ""
    match = _SERVER_PATH.search(text)
    if match:
        raise AssertionError(
            f"the response names a server path: …{text[max(0, match.start() - 40) : match.end() + 40]}…"
        )
    return None


@pytest.fixture(scope="module")
def fuzz_app(built_index: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    root = tmp_path_factory.mktemp("fuzz") / "root"
    shutil.copytree(built_index, root)
    svc = QAService(make_settings(root, ask_deadline_s=30.0), encoder=HashingEncoder())
    svc.warm_up()
    app = create_app(svc.settings, svc, ui=False)
    with TestClient(app):  # runs the lifespan (thread pool sizing) once
        yield app
    svc.close()


@pytest.fixture(scope="module")
def api_schema(fuzz_app: Any) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", fuzz_app)


_CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    no_server_path,
]


def test_every_operation_holds_its_schema_and_never_errs(api_schema: Any) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert {f"{op.method.upper()} {op.path}" for op in operations} >= {
        "POST /search",
        "POST /ask",
        "GET /documents",
        "POST /documents",
        "GET /documents/{doc_id}",
        "DELETE /documents/{doc_id}",
        "GET /health",
        "GET /stats",
    }
    calls: list[str] = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=25,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any) -> None:
            calls.append(case.operation.label)
            case.call_and_validate(headers=AUTH, checks=_CHECKS)

        run()
    assert len(calls) >= 10 * len(operations)  # the sample really ran
