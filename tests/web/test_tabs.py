"""Many dashboard tabs in one browser profile, in Chromium against a real server.

Chromium opens at most six HTTP/1.1 connections to a host, shared by every tab of a profile,
and an event stream holds one for as long as it is open: a tab holds one stream, whatever
its page, and a hidden tab none; shown again, it resumes exactly where it left off.

Headless Chromium reports every page as visible, whichever is in front (bring_to_front
changes nothing, and freezing a page with CDP's Page.setWebLifecycleState fires no
visibilitychange), so a tab is hidden and shown here the way the browser tells a page:
document.visibilityState, then a visibilitychange event."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any, NamedTuple

import httpx
from playwright.async_api import Browser, Request, expect

from tests.support.server import RunningServer
from tests.web.support import Dashboard, Worker, as_key, create, dashboard

SET_VISIBILITY = """(state) => {
  Object.defineProperty(document, 'visibilityState', {configurable: true, get: () => state});
  Object.defineProperty(document, 'hidden', {configurable: true, get: () => state === 'hidden'});
  document.dispatchEvent(new Event('visibilitychange'));
}"""


async def hide(tab: Dashboard) -> None:
    await tab.page.evaluate(SET_VISIBILITY, "hidden")


async def show(tab: Dashboard) -> None:
    await tab.page.evaluate(SET_VISIBILITY, "visible")


class Running(NamedTuple):
    worker: Worker
    jobs: list[dict[str, Any]]
    leases: list[str]
    """Each job's lease, in the order of `jobs`."""
    board: Dashboard

    def tab_routes(self, *between: str) -> list[str]:
        """The pages the tests open a tab each on after the board's: the second and third
        jobs', the job list, `between`, and the first job's again."""
        first, second, third = (job["id"] for job in self.jobs)
        return [f"#/jobs/{second}", f"#/jobs/{third}", "#/jobs", *between, f"#/jobs/{first}"]


@contextlib.asynccontextmanager
async def three_running_on_a_board(
    browser: Browser, server: RunningServer, keys: dict[str, str], client: httpx.AsyncClient
) -> AsyncIterator[Running]:
    """Three jobs a worker runs (each with its lease), and a dashboard signed in as a
    client on the first one's page."""
    async with as_key(server, keys["worker"]) as http:
        worker = Worker(http, "worker-1")
        jobs = [await create(client, "report.build", payload={"part": n}) for n in range(3)]
        leases = [await worker.claim_one(job["id"], "report.build") for job in jobs]
        async with dashboard(browser, server) as board:
            await board.sign_in(keys["client"])
            await board.go(f"#/jobs/{jobs[0]['id']}")
            yield Running(worker, jobs, leases, board)


async def test_a_tab_holds_one_stream_whatever_its_page(
    browser: Browser, server: RunningServer, keys: dict[str, str], client: httpx.AsyncClient
) -> None:
    async with three_running_on_a_board(browser, server, keys, client) as running:
        worker, jobs, leases, board = running
        first, _, third = jobs
        tabs = [board]
        for route in running.tab_routes():
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


async def test_a_hidden_tab_holds_no_stream_and_resumes_when_shown(
    browser: Browser, server: RunningServer, keys: dict[str, str], client: httpx.AsyncClient
) -> None:
    async with three_running_on_a_board(browser, server, keys, client) as running:
        worker, jobs, leases, board = running
        first = jobs[0]
        tabs = [board]
        for route in running.tab_routes("#/"):
            await expect(tabs[-1].page.get_by_test_id("live").first).to_have_attribute(
                "data-state", "open"
            )
            await hide(tabs[-1])  # the next tab comes to the front
            tabs.append(await tabs[-1].new_tab(route))

        # Each tab loaded its page; the last is in front, the others hold no stream.
        for tab, job in zip(tabs[:3], jobs, strict=True):
            await expect(tab.page.get_by_test_id("job-type")).to_have_text("report.build")
            await expect(tab.page.get_by_test_id("job-id")).to_have_text(job["id"])
        await expect(tabs[3].page.get_by_test_id("job-row")).to_have_count(3)
        await expect(tabs[4].page.get_by_test_id("count-RUNNING")).to_be_visible()
        front = tabs[5]
        await expect(front.page.get_by_test_id("job-id")).to_have_text(first["id"])
        for tab in tabs[:5]:
            await expect(tab.page.get_by_test_id("live").first, "paused").to_have_attribute(
                "data-state", "closed"
            )

        # The tab in front follows its job live.
        await worker.progress(first["id"], leases[0], 30, "one third")
        await expect(front.page.get_by_test_id("job-progress")).to_have_attribute(
            "aria-valuenow", "30"
        )

        # A hidden tab misses nothing: shown again, it resumes after its last event.
        hidden = tabs[0]
        events = hidden.page.get_by_test_id("event")
        before = await events.count()
        resumed_from: list[str | None] = []

        def on_request(request: Request) -> None:
            if request.url.endswith("/events/stream"):
                resumed_from.append(request.headers.get("last-event-id"))

        hidden.page.on("request", on_request)
        await worker.event(first["id"], leases[0], "ai.tool_called", {"tool": "sql"})
        await worker.progress(first["id"], leases[0], 60, "two thirds")
        await expect(front.page.get_by_test_id("job-progress")).to_have_attribute(
            "aria-valuenow", "60"
        )
        assert await events.count() == before, "a hidden tab follows nothing"
        await show(hidden)
        await expect(hidden.page.get_by_test_id("live").first).to_have_attribute(
            "data-state", "open"
        )
        await expect(events).to_have_count(before + 3)
        await expect(hidden.page.get_by_test_id("job-progress")).to_have_attribute(
            "aria-valuenow", "60"
        )
        seqs = [
            int(seq or 0)
            for seq in await events.evaluate_all("items => items.map((item) => item.dataset.seq)")
        ]
        assert seqs == list(range(1, before + 4)), f"a gap or a duplicate: {seqs}"
        [resumed] = resumed_from
        assert resumed, "resumed with Last-Event-ID"

        # The job list, shown again, lists the job created while it was hidden.
        created = await create(client, "report.build")
        await show(tabs[3])
        await expect(tabs[3].job_row(created["id"])).to_be_visible()
        for tab in tabs:
            await tab.assert_clean()
