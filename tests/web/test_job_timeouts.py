"""Timeouts in the dashboard, in Chromium against a real server: the New job dialog takes a
timeout (and refuses a bad one), the job's page shows it and when the running attempt
times out, and a timed-out attempt's event says so."""

from __future__ import annotations

import httpx
from playwright.async_api import Browser, expect

from tests.support.server import RunningServer
from tests.web.conftest import ARTIFACTS
from tests.web.support import Worker, as_key, dashboard


async def test_a_job_created_with_a_timeout_shows_it_and_its_timed_out_attempt(
    browser: Browser, server: RunningServer, keys: dict[str, str], client: httpx.AsyncClient
) -> None:
    async with dashboard(browser, server) as board:
        page = board.page
        await board.sign_in(keys["client"])
        dialog = await board.new_job_dialog("report.build")
        timeout = dialog.get_by_label("Timeout in seconds (optional)")
        await timeout.fill("0")
        await dialog.get_by_role("button", name="Create job").click()
        await expect(page.get_by_test_id("new-job-error")).to_contain_text("timeout")
        await expect(timeout).to_have_attribute("aria-invalid", "true")
        await timeout.fill("90")
        await dialog.get_by_role("button", name="Create job").click()
        await expect(dialog).to_have_count(0)
        [job] = (await client.get("/jobs")).json()["data"]
        assert job["timeout_seconds"] == 90

        await board.go(f"#/jobs/{job['id']}")
        await expect(page.get_by_test_id("timeout")).to_have_text("1 min 30 s per attempt")

        async with as_key(server, keys["worker"]) as http:
            worker = Worker(http, "worker-1")
            lease = await worker.claim_one(job["id"], "report.build")
            await expect(page.get_by_test_id("job-status")).to_have_text("Running")
            await expect(page.get_by_text("Times out")).to_be_visible()
            await worker.call(
                "POST",
                f"/jobs/{job['id']}/fail",
                {
                    "lease_id": lease,
                    "error": "timed out after 90 s",
                    "retryable": True,
                    "timed_out": True,
                },
            )
        await expect(page.get_by_test_id("job-status")).to_have_text("Failed")
        await expect(page.get_by_text("Times out"), "only while an attempt runs").to_have_count(0)
        timed_out = page.locator('[data-testid="event"][data-type="job.timed_out"]')
        await expect(timed_out).to_contain_text("attempt 1 ran past its timeout of 1 min 30 s")
        await expect(page.get_by_test_id("job-error")).to_have_text("timed out after 90 s")
        await board.screenshot(ARTIFACTS / "dashboard-job-timed-out.png")

        # A job without a timeout says it has none.
        other = await client.post("/jobs", json={"type": "report.build"})
        await board.go(f"#/jobs/{other.json()['id']}")
        await expect(page.get_by_test_id("timeout")).to_have_text("none")
        await board.assert_clean()
