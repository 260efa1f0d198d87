"""Large integers in the dashboard, in Chromium against a real server: the New job dialog
sends the payload as typed (the server takes integers up to 64 bits and refuses larger ones,
and says so in the form), and a job's page shows payload, result and event numbers with
every digit, whether read with the page or arriving live."""

from __future__ import annotations

import httpx
from playwright.async_api import Browser, expect

from tests.support.server import RunningServer
from tests.web.support import Worker, as_key, create, dashboard

BEYOND_DOUBLES = 9007199254740993  # 2**53 + 1: a double reads it as ...992
LARGEST_INT64 = 2**63 - 1
SMALLEST_INT64 = -(2**63)


async def test_the_new_job_dialog_sends_the_payload_as_typed(
    browser: Browser, server: RunningServer, keys: dict[str, str], client: httpx.AsyncClient
) -> None:
    async with dashboard(browser, server) as board:
        page = board.page
        await board.sign_in(keys["client"])
        dialog = await board.new_job_dialog("order.ship")
        payload = dialog.get_by_label("Payload (JSON)")
        await payload.fill('{"n": 123456789012345678901234567890}')
        await dialog.get_by_role("button", name="Create job").click()
        await expect(page.get_by_test_id("new-job-error")).to_contain_text(
            "integers must fit in 64 bits"
        )
        assert (await client.get("/jobs")).json()["data"] == [], "nothing created"
        # The browser logs the refused request itself.
        [refused] = [problem for problem in board.problems if "status of 422" in problem]
        board.problems.remove(refused)

        await payload.fill(f'{{"order_id": {BEYOND_DOUBLES}, "cap": {LARGEST_INT64}}}')
        await dialog.get_by_role("button", name="Create job").click()
        await expect(dialog).to_have_count(0)
        [job] = (await client.get("/jobs")).json()["data"]
        assert job["payload"] == {"order_id": BEYOND_DOUBLES, "cap": LARGEST_INT64}

        await board.go(f"#/jobs/{job['id']}")
        shown = page.get_by_test_id("payload")
        await expect(shown).to_contain_text(f'"order_id": {BEYOND_DOUBLES}')
        await expect(shown).to_contain_text(f'"cap": {LARGEST_INT64}')
        await board.assert_clean()


async def test_a_jobs_page_shows_large_integers_with_every_digit(
    browser: Browser, server: RunningServer, keys: dict[str, str], client: httpx.AsyncClient
) -> None:
    job = await create(client, "order.ship", payload={"order_id": BEYOND_DOUBLES, "qty": 2})
    async with as_key(server, keys["worker"]) as http:
        worker = Worker(http, "worker-1")
        lease = await worker.claim_one(job["id"], "order.ship")
        await worker.event(job["id"], lease, "order.reserved", {"batch": LARGEST_INT64})
        async with dashboard(browser, server) as board:
            page = board.page
            await board.sign_in(keys["client"])
            await board.go(f"#/jobs/{job['id']}")
            await expect(page.get_by_test_id("payload")).to_contain_text(
                f'"order_id": {BEYOND_DOUBLES}'
            )
            read = page.locator('[data-testid="event"][data-type="order.reserved"]')
            await expect(read, "an event read with the page").to_contain_text(
                f'{{"batch":{LARGEST_INT64}}}'
            )

            await worker.event(job["id"], lease, "order.split", {"part": SMALLEST_INT64})
            live = page.locator('[data-testid="event"][data-type="order.split"]')
            await expect(live, "an event arriving live").to_contain_text(
                f'{{"part":{SMALLEST_INT64}}}'
            )
            await worker.complete(job["id"], lease, {"invoice": BEYOND_DOUBLES + 2})
            await expect(page.get_by_test_id("job-status")).to_have_text("Completed")
            await expect(page.get_by_test_id("result")).to_contain_text(
                f'"invoice": {BEYOND_DOUBLES + 2}'
            )
            await board.assert_clean()
