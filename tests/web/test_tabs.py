"""Many dashboard tabs in one browser profile, in Chromium against a real server.

Chromium opens at most six HTTP/1.1 connections to a host, shared by every tab of a profile,
and an event stream holds one for as long as it is open: a tab holds one stream, whatever
its page."""

from __future__ import annotations

from typing import Any

import httpx
from playwright.async_api import Browser, expect

from tests.support.server import RunningServer
from tests.web.support import Worker, as_key, create, dashboard


async def test_a_tab_holds_one_stream_whatever_its_page(
    browser: Browser, server: RunningServer, keys: dict[str, str], client: httpx.AsyncClient
) -> None:
    async with as_key(server, keys["worker"]) as http:
        worker = Worker(http, "worker-1")
        jobs: list[dict[str, Any]] = []
        leases: list[str] = []
        for n in range(3):
            job = await create(client, "report.build", payload={"part": n})
            leases.append(await worker.claim_one(job["id"], "report.build"))
            jobs.append(job)
        first, second, third = jobs

        async with dashboard(browser, server) as board:
            await board.sign_in(keys["client"])
            await board.go(f"#/jobs/{first['id']}")
            tabs = [board]
            for route in (
                f"#/jobs/{second['id']}",
                f"#/jobs/{third['id']}",
                "#/jobs",
                f"#/jobs/{first['id']}",
            ):
                tabs.append(await tabs[-1].new_tab(route))
            listing = tabs[3]
            for tab, job in zip([*tabs[:3], tabs[4]], [*jobs, first], strict=True):
                await expect(tab.page.get_by_test_id("job-id")).to_have_text(job["id"])
            await expect(listing.page.get_by_test_id("job-row"), "the list loads").to_have_count(3)

            # Each tab follows live: its job's page, the job list.
            await worker.progress(first["id"], leases[0], 40, "going")
            for tab in (tabs[0], tabs[4]):
                await expect(tab.page.get_by_test_id("job-progress")).to_have_attribute(
                    "aria-valuenow", "40"
                )
            await worker.complete(third["id"], leases[2], {"ok": True})
            await expect(tabs[2].page.get_by_test_id("job-status")).to_have_text("Completed")
            await expect(tabs[2].page.get_by_test_id("live").last).to_have_attribute(
                "data-state", "complete"
            )
            created = await create(client, "report.build")
            await expect(listing.job_row(created["id"])).to_be_visible()
            for tab in tabs:
                await tab.assert_clean()
