"""`/docs`, the interactive API reference, renders the server's OpenAPI 3.1 schema in a
real Chromium, from assets the package ships (nothing fetched from elsewhere)."""

from __future__ import annotations

import httpx
import pytest
from playwright.async_api import Browser, Request, expect

from tests.support.server import RunningServer
from tests.web.conftest import ARTIFACTS
from tests.web.support import dashboard

# The page does not touch the database: one backend is enough.
pytestmark = pytest.mark.parametrize("backend", ["sqlite"])


async def test_the_api_reference_renders_the_openapi_31_schema(
    browser: Browser, server: RunningServer
) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        spec = (await http.get("/openapi.json")).json()
    assert spec["openapi"].startswith("3.1"), spec["openapi"]

    async with dashboard(browser, server) as board:
        page = board.page
        requested: list[str] = []

        def on_request(request: Request) -> None:
            requested.append(request.url)

        page.on("request", on_request)
        await page.goto(f"{server.url}/docs")
        await expect(page).to_have_title("Conveyor API")
        create_job = page.locator(".opblock-summary").filter(has_text="Create a job")
        await expect(create_job, "the operations are listed").to_be_visible()
        await expect(page.get_by_text("Unable to render this definition")).to_have_count(0)
        await expect(page.locator(".errors-wrapper")).to_have_count(0)
        summaries = page.locator(".opblock-summary-path")
        for path in (
            "/v1/workspaces/{ws}/jobs",
            "/v1/workspaces/{ws}/jobs/{job_id}/cancel",
            "/v1/workspaces/{ws}/claims",
            "/v1/workspaces/{ws}/stats",
            "/healthz",
        ):
            await expect(summaries.filter(has_text=path).first, path).to_be_visible()
        operations = sum(len(item) for item in spec["paths"].values())
        await expect(page.locator(".opblock")).to_have_count(operations)

        # An operation opens to show its request body and responses.
        await create_job.click()
        opened = page.locator(".opblock.is-open")
        await expect(opened.get_by_role("heading", name="Request body")).to_be_visible()
        await expect(opened.locator(".responses-table").first).to_contain_text("201")
        await opened.get_by_text("Schema", exact=True).first.click()
        await expect(opened.locator(".model-box").first).to_be_visible()
        await board.screenshot(ARTIFACTS / "api-docs.png")

        # "Try it out" calls this server and shows the answer.
        health = page.locator(".opblock").filter(
            has=page.locator(".opblock-summary-path", has_text="/healthz")
        )
        await health.locator(".opblock-summary").click()
        await health.get_by_role("button", name="Try it out").click()
        await health.get_by_role("button", name="Execute").click()
        await expect(health.locator(".live-responses-table")).to_contain_text('"status": "ok"')

        elsewhere = [url for url in requested if not url.startswith(f"{server.url}/")]
        assert not elsewhere, f"the reference fetched from elsewhere: {elsewhere}"
        await board.assert_clean()
