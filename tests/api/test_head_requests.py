"""`HEAD` on every route that answers `GET`: the `GET`'s status and headers, no body — the
probes, the dashboard, an event stream (which must end at once), and the API, whose key
is checked as for the `GET`."""

from __future__ import annotations

import httpx
import pytest

from tests.support.server import RunningServer

VARYING = {"date", "x-request-id", "content-length"}
"""Headers a second answer may give otherwise (the metrics' length changes as they count)."""


def steady(response: httpx.Response) -> dict[str, str]:
    return {name: value for name, value in response.headers.items() if name not in VARYING}


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics", "/", "/openapi.json"])
async def test_the_probes_and_the_dashboard_answer_head_as_get_without_a_body(
    server: RunningServer, path: str
) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        get = await http.get(path)
        head = await http.head(path)
    assert (head.status_code, get.status_code) == (200, 200), head.headers
    assert head.content == b""
    assert steady(head) == steady(get)
    if path != "/metrics":
        assert head.headers["content-length"] == str(len(get.content))


async def test_an_api_head_checks_the_key_as_its_get_does(
    server: RunningServer, keys: dict[str, str]
) -> None:
    jobs = f"{server.url}/v1/workspaces/acme/jobs"
    admin = {"Authorization": f"Bearer {keys['admin']}"}
    async with httpx.AsyncClient() as http:
        assert (await http.post(jobs, json={"type": "t"}, headers=admin)).status_code == 201
        get = await http.get(jobs, headers=admin)
        head = await http.head(jobs, headers=admin)
        assert (head.status_code, head.content) == (200, b"")
        assert head.headers["content-type"] == get.headers["content-type"]
        assert head.headers["content-length"] == str(len(get.content))
        refused = await http.head(jobs)
        assert (refused.status_code, refused.content) == (401, b"")
        assert refused.headers["content-type"] == "application/problem+json"
        missing = await http.head(f"{jobs}/00000000-0000-0000-0000-000000000000", headers=admin)
        assert missing.status_code == 404
        posted_only = await http.head(f"{jobs}/batch", headers=admin)
        assert posted_only.status_code == 405
        assert posted_only.headers["allow"] == "POST"


async def test_head_on_an_event_stream_answers_its_headers_and_ends(
    server: RunningServer, keys: dict[str, str]
) -> None:
    admin = {"Authorization": f"Bearer {keys['admin']}"}
    async with httpx.AsyncClient(base_url=f"{server.url}/v1/workspaces/acme", timeout=5) as http:
        job = (await http.post("/jobs", json={"type": "t"}, headers=admin)).json()
        for path in (f"/jobs/{job['id']}/events/stream", "/events/stream"):
            head = await http.head(path, headers=admin)  # a stream never ends by itself
            assert (head.status_code, head.content) == (200, b"")
            assert head.headers["content-type"].startswith("text/event-stream")
        # The connection serves the next request: the stream behind the HEAD was let go.
        assert (await http.get(f"/jobs/{job['id']}", headers=admin)).status_code == 200


async def test_allow_names_head_wherever_get_is_served(server: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        refused = await http.post("/healthz")
    assert refused.status_code == 405
    assert refused.headers["allow"] == "GET, HEAD"
