"""Schemathesis against the live OpenAPI schema of a running server (SQLite): generated
requests, valid and invalid, never get a 5xx, and every answer matches the schema."""

from __future__ import annotations

import asyncio
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from conveyor.api.app import create_app
from conveyor.domain.workspaces import Role
from conveyor.server import ConveyorServer
from conveyor.service.workspaces import WorkspaceService
from conveyor.store import open_store
from conveyor.store.urls import DatabaseURL
from tests.conftest import settings_for
from tests.support.postgres import free_port


@pytest.fixture(scope="module")
def live_api(
    tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path
) -> Iterator[tuple[str, str]]:
    path = tmp_path_factory.mktemp("fuzz") / "conveyor.db"
    shutil.copyfile(sqlite_template, path)
    url = DatabaseURL.parse(f"sqlite:///{path}")

    async def admin_key() -> str:
        store = await open_store(url)
        try:
            service = WorkspaceService(store)
            workspace = await service.create_workspace("acme")
            return (await service.create_key(workspace.id, Role.ADMIN)).token
        finally:
            await store.close()

    key = asyncio.run(admin_key())
    port = free_port()
    server = ConveyorServer(
        uvicorn.Config(create_app(settings_for(url)), port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=f"{base}/v1/workspaces/acme") as http:
        headers = {"Authorization": f"Bearer {key}"}
        job = http.post("/jobs", json={"type": "t"}, headers=headers).json()
        assert job["status"] == "QUEUED"
    yield base, key
    server.should_exit = True
    thread.join(20)


@pytest.fixture(scope="module")
def api_schema(live_api: tuple[str, str]) -> schemathesis.BaseSchema:
    base, _ = live_api
    # Streams never end by themselves: they are tested over real HTTP elsewhere.
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json").exclude(
        path_regex=r"/events/stream$"
    )
    # The schema forbids NUL in text by pattern, which some generation phases ignore; the
    # refusal of NUL characters has tests of its own (test_hostile_input).
    schema.config.generation.update(allow_x00=False)
    # An invalid body can also be too large: 413 is a refusal too (its own tests are in
    # test_hostile_input).
    rejection = schema.config.checks.negative_data_rejection
    rejection.expected_statuses = [*rejection.expected_statuses, "413"]
    return schema


@pytest.mark.slow
# Every operation's run in one test: 115 s beside the suite on a slow 2-core machine, and
# the default 120 s timeout fired inside a request, which Hypothesis then reported as a
# flaky operation instead of a timeout.
@pytest.mark.timeout(600)
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_generated_requests_get_documented_answers(
    api_schema: schemathesis.BaseSchema, live_api: tuple[str, str], mode: GenerationMode
) -> None:
    """Valid requests (positive) and invalid ones (negative), for every operation. Driven
    through schemathesis' Python API: one Hypothesis run per operation, failures collected
    so that one run reports them all."""
    base, key = live_api
    failures: list[str] = []
    operations = 0
    for result in api_schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=25,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: schemathesis.Case) -> None:
            wait = case.body.get("wait_seconds") if isinstance(case.body, dict) else None
            if isinstance(wait, int | float) and not isinstance(wait, bool) and 0 < wait <= 60:
                # A long-poll would only slow the run down; an invalid wait stays invalid.
                case.body["wait_seconds"] = 0
            case.call_and_validate(base_url=base, headers={"Authorization": f"Bearer {key}"})

        try:
            check()
        except Unsatisfiable:
            assert mode == GenerationMode.NEGATIVE, f"{operation.label}: no valid request?"
            # An operation without parameters has no invalid variant to send.
        except (Exception, BaseExceptionGroup) as error:  # Schemathesis reports in groups
            failures.append(f"{operation.label}: {str(error)[:3000]}")
    assert operations > 20
    assert not failures, "\n\n".join(failures)
