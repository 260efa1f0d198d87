"""The New job dialog creates a job for later, in Chromium against a real server: "Run at"
is the browser's local time, sent with its zone, and the job waits Queued until then."""

from __future__ import annotations

from datetime import datetime

import httpx
from playwright.async_api import Browser, expect

from tests.support.server import RunningServer
from tests.web.support import dashboard


async def test_a_job_created_to_run_later(
    browser: Browser, server: RunningServer, keys: dict[str, str], client: httpx.AsyncClient
) -> None:
    async with dashboard(browser, server) as board:
        page = board.page
        await board.sign_in(keys["client"])
        dialog = await board.new_job_dialog("report.build")
        await dialog.get_by_label("Run at (optional)").fill("2031-01-02T03:04:05")
        await dialog.get_by_role("button", name="Create job").click()
        await expect(dialog).to_have_count(0)
        [job] = (await client.get("/jobs")).json()["data"]
        meant = await page.evaluate("new Date('2031-01-02T03:04:05').toISOString()")
        assert datetime.fromisoformat(job["run_at"]) == datetime.fromisoformat(meant)
        assert job["status"] == "QUEUED"
