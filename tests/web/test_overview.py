"""The overview warns of due jobs that no live worker serves, and shows each worker's
types and whether it is still there (stopped ones greyed)."""

from __future__ import annotations

import httpx
from playwright.async_api import Browser, expect

from conveyor.store import Store
from tests.support.server import RunningServer
from tests.web.conftest import ARTIFACTS
from tests.web.support import Worker, as_key, create, dashboard


async def last_seen_long_ago(store: Store, worker_id: str) -> None:
    """A worker gone quiet 20 minutes ago, long past any lease, though still within the
    hour the overview looks back on (test set-up: time cannot be waited out)."""
    async with store.database.write() as connection:
        await connection.execute(
            "UPDATE workers SET last_seen_at = conveyor_after(:ago), "
            "first_seen_at = conveyor_after(:ago) WHERE worker_id = :worker_id",
            {"ago": -1200, "worker_id": worker_id},
        )


async def test_the_overview_names_queued_types_no_live_worker_serves(
    browser: Browser,
    server: RunningServer,
    keys: dict[str, str],
    client: httpx.AsyncClient,
    store: Store,
) -> None:
    async with as_key(server, keys["worker"]) as http:
        assert await Worker(http, "worker-mail").claim(types=["email.send"]) == []
        assert await Worker(http, "worker-reports").claim(types=["report.build"]) == []
    await last_seen_long_ago(store, "worker-reports")
    for n in range(3):
        await create(client, "command", payload={"argv": ["echo", str(n)]})
    await create(client, "email.send")  # worker-mail serves it
    await create(client, "report.build")  # only a stopped worker serves it

    async with dashboard(browser, server) as board:
        page = board.page
        await board.sign_in(keys["admin"])
        await expect(page.get_by_role("heading", name="Overview")).to_be_visible()
        warning = page.get_by_test_id("unserved-types")
        await expect(warning).to_be_visible(timeout=15_000)
        command = warning.locator('[data-testid="unserved-type"][data-type="command"]')
        await expect(command).to_contain_text(
            "3 due jobs of type command — no live worker serves this type"
        )
        await expect(command).to_contain_text("--allow-command-jobs")
        await expect(
            warning.locator('[data-testid="unserved-type"][data-type="report.build"]')
        ).to_contain_text("1 due job of type report.build")
        await expect(warning.get_by_test_id("unserved-type")).to_have_count(2)

        workers = page.get_by_test_id("workers-table")
        mail = workers.locator('[data-testid="worker-row"][data-worker-id="worker-mail"]')
        await expect(mail).to_have_attribute("data-state", "active")
        await expect(mail).to_contain_text("email.send")
        reports = workers.locator('[data-testid="worker-row"][data-worker-id="worker-reports"]')
        await expect(reports).to_have_attribute("data-state", "stopped")
        await expect(reports).to_contain_text("stopped")
        await expect(reports).to_contain_text("report.build")
        await expect(page.get_by_test_id("workers-active")).to_contain_text("1 of 2")
        await board.screenshot(ARTIFACTS / "dashboard-overview-unserved.png", full_page=True)

        # The warning's link is the list of those jobs.
        await command.get_by_role("link").click()
        await expect(page.get_by_test_id("job-row")).to_have_count(3)
        await board.assert_clean()
