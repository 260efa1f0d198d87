"""The dashboard in a real headless Chromium, against a real server (SQLite and PostgreSQL).

Every test watches the page for console errors, uncaught exceptions and Content-Security-
Policy violations and fails on any: the page is served with a strict CSP (no inline script
or style), and the dashboard must live within it."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, expect

from conveyor.store import Store
from tests.support.server import RunningServer
from tests.web.conftest import ARTIFACTS
from tests.web.support import WS, Worker, as_key, create, dashboard, populate

REPO = Path(__file__).resolve().parents[2]
# The README's picture is refreshed only on request, so a test run leaves the tree clean.
README_IMAGE = REPO / "docs" / "img" / "dashboard.png"
UPDATE_README_IMAGE = os.environ.get("CONVEYOR_UPDATE_SCREENSHOTS") == "1"


# -- 1. the whole loop, live ---------------------------------------------------------------


async def test_a_job_appears_runs_live_and_is_cancelled_from_the_page(
    browser: Browser, server: RunningServer, keys: dict[str, str], client: httpx.AsyncClient
) -> None:
    async with dashboard(browser, server) as board, as_key(server, keys["worker"]) as http:
        page = board.page
        worker = Worker(http, "worker-7")
        await board.sign_in(keys["admin"])
        await expect(page.get_by_test_id("workspace")).to_have_text("acme")
        await expect(page.get_by_test_id("role")).to_have_text("admin")

        await board.nav("Jobs").click()
        await expect(page.get_by_role("heading", name="Jobs")).to_be_visible()
        await expect(page.get_by_test_id("jobs-summary")).to_have_text("0 jobs")
        await expect(page.get_by_test_id("live")).to_have_attribute("data-state", "open")

        # A job created elsewhere shows up in the list by itself.
        job = await create(
            client,
            "report.build",
            priority=2,
            payload={"customer": "acme", "period": "2026-Q3", "formats": ["pdf", "csv"]},
            agent_task_id="task-42",
        )
        row = board.job_row(job["id"])
        await expect(row, "the new job appears in the list without a reload").to_be_visible()
        await expect(row).to_have_attribute("data-status", "QUEUED")
        assert await board.still_same_document(), "the page reloaded to show the new job"

        # Open it from the keyboard: rows are tab stops, Enter opens them.
        await row.focus()
        await page.keyboard.press("Enter")
        await expect(page).to_have_url(f"{server.url}/#/jobs/{job['id']}")
        await expect(page.get_by_test_id("job-type")).to_have_text("report.build")
        await expect(page.get_by_test_id("job-status")).to_have_text("Queued")
        await expect(page.get_by_test_id("payload")).to_contain_text('"period": "2026-Q3"')
        await expect(page.get_by_test_id("live")).to_have_count(2)  # the header's and this job's

        # The worker claims it, reports progress, a step and its own event: all arrive live.
        lease = await worker.claim_one(job["id"], "report.build")
        await expect(page.get_by_test_id("job-status"), "job.started arrives").to_have_text(
            "Running"
        )
        await expect(page.get_by_test_id("worker")).to_have_text("worker-7")
        await worker.progress(job["id"], lease, 40, "rendering charts")
        progress = page.get_by_test_id("job-progress")
        await expect(progress, "job.progress moves the bar").to_have_attribute(
            "aria-valuenow", "40"
        )
        await expect(page.get_by_test_id("job-progress-text")).to_have_text("40%")
        await expect(page.get_by_test_id("job-progress-message")).to_have_text("rendering charts")
        await worker.step(
            job["id"],
            lease,
            "plan the report",
            kind="AI_ACTION",
            phase="SETUP",
            output="outline: 4 sections\n",
            tokens=(1834, 412),
        )
        await worker.event(job["id"], lease, "ai.tool_called", {"tool": "sql.query", "rows": 1280})
        tool_call = page.locator('[data-testid="event"][data-type="ai.tool_called"]')
        await expect(tool_call, "a worker's own event type arrives live").to_contain_text(
            '"tool":"sql.query"'
        )
        step = page.get_by_test_id("step")
        await expect(step).to_have_count(1)
        await expect(step).to_contain_text("plan the report")
        await expect(step.get_by_test_id("step-tokens")).to_have_text("1,834 in · 412 out tokens")
        await worker.step(job["id"], lease, "query the warehouse", status=None)
        await expect(step).to_have_count(2)
        events = (await client.get(f"/jobs/{job['id']}/events")).json()["data"]
        await expect(page.get_by_test_id("event-count")).to_have_text(f"{len(events)} events")
        assert await board.still_same_document(), "the job page reloaded"
        await board.screenshot(ARTIFACTS / "dashboard-job-running.png")

        # Cancel with the button (after confirming); the page follows.
        await page.get_by_test_id("cancel").click()
        dialog = page.get_by_test_id("confirm-dialog")
        await expect(dialog).to_be_visible()
        await dialog.get_by_role("button", name="Cancel job").click()
        await expect(page.get_by_test_id("job-status")).to_have_text("Cancelled")
        await expect(page.get_by_test_id("cancel"), "no Cancel on a cancelled job").to_have_count(0)
        await expect(page.get_by_test_id("retry"), "an admin may retry it").to_be_visible()
        await expect(
            page.locator('[data-testid="event"][data-type="job.cancelled"]')
        ).to_have_count(1)
        await expect(page.get_by_test_id("live").last).to_have_attribute("data-state", "complete")
        stored = (await client.get(f"/jobs/{job['id']}")).json()
        assert stored["status"] == "CANCELLED"
        # The worker's lease is gone with it.
        refused = await http.patch(
            f"{WS}/jobs/{job['id']}/progress", json={"progress_percent": 50, "lease_id": lease}
        )
        assert refused.status_code == 409, refused.text
        await board.screenshot(ARTIFACTS / "dashboard-job.png")

        # Retry makes a new job and shows it, linked to the old one.
        await page.get_by_test_id("retry").click()
        await expect(page.get_by_test_id("toast").last).to_contain_text("Retried as new job")
        await expect(page).not_to_have_url(f"{server.url}/#/jobs/{job['id']}")
        await expect(page.get_by_test_id("job-status")).to_have_text("Queued")
        await expect(page.get_by_test_id("job-type")).to_have_text("report.build")
        await expect(page.get_by_role("link", name=job["id"].replace("-", "")[-8:])).to_be_visible()
        retried_id = page.url.rsplit("/", 1)[-1]
        retried = (await client.get(f"/jobs/{retried_id}")).json()
        assert retried["retry_of"] == job["id"]

        # Back in the list the rows say so too.
        await board.nav("Jobs").click()
        await expect(board.job_row(job["id"])).to_have_attribute("data-status", "CANCELLED")
        await expect(board.job_row(retried_id)).to_have_attribute("data-status", "QUEUED")
        assert await board.still_same_document()
        await board.assert_clean()


# -- 2. what each role sees -----------------------------------------------------------------


async def test_roles_see_only_the_actions_they_may_take(
    browser: Browser, server: RunningServer, keys: dict[str, str], client: httpx.AsyncClient
) -> None:
    async with as_key(server, keys["worker"]) as http:
        worker = Worker(http)
        done = await create(client, "email.send", payload={"to": "a@example.com"})
        lease = await worker.claim_one(done["id"], "email.send")
        await worker.complete(done["id"], lease, {"message_id": "m-1"})
        broken = await create(client, "email.send", payload={"to": "b@example.com"})
        lease = await worker.claim_one(broken["id"], "email.send")
        await worker.fail(broken["id"], lease, "SMTP 550: mailbox unavailable")
        stopped = await create(client, "email.send")
        assert (await client.post(f"/jobs/{stopped['id']}/cancel")).status_code == 200
        waiting = await create(client, "email.send")

        # The server refuses what the page hides.
        async with as_key(server, keys["client"]) as as_client:
            refused = await as_client.get(f"{WS}/keys")
            assert refused.status_code == 403, refused.text
        refused = await http.post(f"{WS}/jobs/{waiting['id']}/cancel")
        assert refused.status_code == 403, refused.text

    async with dashboard(browser, server) as board:
        page = board.page
        await board.sign_in(keys["client"])
        await expect(page.get_by_test_id("role")).to_have_text("client")
        nav = page.get_by_role("navigation", name="Main")
        await expect(nav.get_by_role("link", name="Jobs")).to_be_visible()
        await expect(
            nav.get_by_role("link", name="API keys"), "no keys link for a client"
        ).to_have_count(0)
        await board.go("#/keys")
        await expect(page.get_by_test_id("not-allowed")).to_contain_text("Not allowed")
        await board.screenshot(ARTIFACTS / "dashboard-not-allowed.png")

        await board.go(f"#/jobs/{done['id']}")
        await expect(page.get_by_test_id("job-status")).to_have_text("Completed")
        await expect(page.get_by_test_id("result")).to_contain_text('"message_id": "m-1"')
        await expect(page.get_by_test_id("cancel"), "no Cancel on a completed job").to_have_count(0)
        await expect(page.get_by_test_id("retry"), "no Retry on a completed job").to_have_count(0)

        await board.go(f"#/jobs/{broken['id']}")
        await expect(page.get_by_test_id("job-status")).to_have_text("Failed")
        await expect(page.get_by_test_id("job-error")).to_have_text("SMTP 550: mailbox unavailable")
        await expect(
            page.get_by_test_id("retry"), "a client may retry a failed job"
        ).to_be_visible()
        await board.screenshot(ARTIFACTS / "dashboard-job-failed.png")
        await expect(page.get_by_test_id("cancel")).to_have_count(0)

        await board.go(f"#/jobs/{stopped['id']}")
        await expect(page.get_by_test_id("job-status")).to_have_text("Cancelled")
        await expect(page.get_by_test_id("cancel"), "no Cancel on a cancelled job").to_have_count(0)
        await expect(page.get_by_test_id("retry")).to_be_visible()

        await board.go(f"#/jobs/{waiting['id']}")
        await expect(page.get_by_test_id("job-status")).to_have_text("Queued")
        await expect(
            page.get_by_test_id("cancel"), "a client may cancel a queued job"
        ).to_be_visible()

        await board.go("#/jobs")
        await expect(page.get_by_test_id("job-row")).to_have_count(4)
        await expect(page.get_by_test_id("new-job")).to_be_visible()
        await board.assert_clean()

    async with dashboard(browser, server) as board:
        page = board.page
        await board.sign_in(keys["worker"])
        await expect(page.get_by_test_id("role")).to_have_text("worker")
        nav = page.get_by_role("navigation", name="Main")
        await expect(nav.get_by_role("link", name="API keys")).to_have_count(0)
        for job, status in ((waiting, "Queued"), (broken, "Failed"), (stopped, "Cancelled")):
            await board.go(f"#/jobs/{job['id']}")
            await expect(page.get_by_test_id("job-status")).to_have_text(status)
            await expect(
                page.get_by_test_id("cancel"), f"no Cancel for a worker ({status})"
            ).to_have_count(0)
            await expect(
                page.get_by_test_id("retry"), f"no Retry for a worker ({status})"
            ).to_have_count(0)
        await board.go("#/jobs")
        await expect(page.get_by_test_id("job-row")).to_have_count(4)
        await expect(page.get_by_test_id("new-job"), "a worker may not create jobs").to_have_count(
            0
        )
        await board.go("#/keys")
        await expect(page.get_by_test_id("not-allowed")).to_be_visible()
        await board.assert_clean()


# -- 3. an admin's tools: the new-job form, filters, keys, sign-out ---------------------------


async def test_admin_creates_jobs_filters_and_manages_keys(
    browser: Browser, server: RunningServer, keys: dict[str, str], client: httpx.AsyncClient
) -> None:
    older = await create(client, "image.resize", payload={"width": 640})
    async with dashboard(browser, server) as board:
        page = board.page
        await board.sign_in(keys["admin"])
        await board.go("#/jobs")
        await expect(page.get_by_test_id("job-row")).to_have_count(1)

        # The form says what is wrong with the payload before the server is asked.
        await page.get_by_test_id("new-job").click()
        dialog = page.get_by_test_id("new-job-dialog")
        await dialog.get_by_label("Type").fill("Invoice Send")
        await dialog.get_by_role("button", name="Create job").click()
        await expect(dialog.get_by_test_id("new-job-error")).to_contain_text(
            "The type must be 1 to 100 characters of a-z, 0-9, _ . : -"
        )
        await dialog.get_by_label("Type").fill("invoice.send")
        await dialog.get_by_label("Priority").select_option("1")
        await dialog.get_by_label("Payload (JSON)").fill('{"invoice": 7,}')
        await dialog.get_by_role("button", name="Create job").click()
        await expect(dialog.get_by_test_id("new-job-error")).to_contain_text("not valid JSON")
        await board.screenshot(ARTIFACTS / "dashboard-new-job.png")
        await dialog.get_by_label("Payload (JSON)").fill('{"invoice": 7, "note": "<b>bold</b>"}')
        await dialog.get_by_role("button", name="Create job").click()
        await expect(dialog).to_have_count(0)
        await expect(page.get_by_test_id("toast").first).to_contain_text("Created job")
        await expect(page.get_by_test_id("job-row")).to_have_count(2)
        listed = (await client.get("/jobs", params={"type": "invoice.send"})).json()["data"]
        assert len(listed) == 1
        assert listed[0]["priority"] == 1
        assert listed[0]["payload"] == {"invoice": 7, "note": "<b>bold</b>"}

        # Untrusted text stays text.
        await board.go(f"#/jobs/{listed[0]['id']}")
        await expect(page.get_by_test_id("payload")).to_contain_text('"<b>bold</b>"')
        assert await page.locator("[data-testid=payload] b").count() == 0

        # Filters narrow the list and live in the URL.
        await board.go("#/jobs")
        await page.get_by_label("Type").fill("image.resize")
        await expect(page.get_by_test_id("job-row")).to_have_count(1)
        await expect(page.get_by_test_id("job-row")).to_have_attribute("data-job-id", older["id"])
        assert "type=image.resize" in page.url
        await page.get_by_role("button", name="Clear filters").click()
        await expect(page.get_by_test_id("job-row")).to_have_count(2)
        await page.get_by_test_id("filter-CANCELLED").click()
        await expect(page.get_by_test_id("jobs-summary")).to_have_text("0 jobs")
        await expect(page.get_by_text("No jobs match these filters")).to_be_visible()
        assert (await client.post(f"/jobs/{older['id']}/cancel")).status_code == 200
        await expect(
            page.get_by_test_id("job-row"), "a job moving into the filter appears"
        ).to_have_count(1)
        await page.get_by_label("Job id").fill(older["id"][:8])
        await expect(page.get_by_test_id("job-row")).to_have_count(1)
        await page.get_by_label("Job id").fill("zz")
        await expect(page.get_by_text("An id is hexadecimal digits and dashes.")).to_be_visible()

        # Keys: create one (its token is shown once and works), then revoke it.
        await board.nav("API keys").click()
        await expect(page.get_by_role("heading", name="API keys", level=1)).to_be_visible()
        await expect(page.get_by_test_id("key-row")).to_have_count(3)  # the fixture's keys
        await page.get_by_label("Name (optional)").fill("ci-runner")
        await page.get_by_label("Role").select_option("client")
        await page.get_by_test_id("create-key").click()
        token = await page.get_by_test_id("new-key-token").input_value()
        await expect(page.get_by_test_id("issued-key")).to_contain_text("shown this once")
        await expect(page.get_by_test_id("key-row")).to_have_count(4)
        await board.screenshot(ARTIFACTS / "dashboard-keys.png")
        async with as_key(server, token) as fresh:
            assert (await fresh.get(f"{WS}/jobs")).status_code == 200
            row = page.get_by_test_id("key-row").filter(has_text="ci-runner")
            await row.get_by_test_id("revoke-key").click()
            await (
                page.get_by_test_id("confirm-dialog")
                .get_by_role("button", name="Revoke key")
                .click()
            )
            await expect(row.get_by_test_id("key-state")).to_contain_text("revoked")
            assert (await fresh.get(f"{WS}/jobs")).status_code == 401

        # Sign out: back to the sign-in form, and the session is gone.
        await page.get_by_test_id("sign-out").click()
        await expect(page.get_by_role("heading", name="Sign in to the dashboard")).to_be_visible()
        status = await page.evaluate("fetch('/v1/session').then(r => r.status)")
        assert status == 401
        await board.assert_clean()


async def test_a_wrong_key_is_refused_with_a_message(
    browser: Browser, server: RunningServer
) -> None:
    async with dashboard(browser, server) as board:
        page = board.page
        await page.goto(f"{server.url}/")
        await page.get_by_label("API key").fill("cvk_not-a-real-key")
        await page.get_by_role("button", name="Sign in").click()
        await expect(page.get_by_test_id("sign-in-error")).to_contain_text("not valid")
        await expect(page.get_by_label("API key")).to_be_focused()
        await board.screenshot(ARTIFACTS / "dashboard-sign-in.png")
        await board.assert_clean()


# -- 4. the overview (and the README's picture) ---------------------------------------------


async def test_overview_shows_counts_throughput_and_workers(
    browser: Browser,
    server: RunningServer,
    keys: dict[str, str],
    store: Store,
    client: httpx.AsyncClient,
) -> None:
    await populate(store, server, keys, client)
    stats = (await client.get("/stats")).json()
    async with dashboard(browser, server) as board:
        page = board.page
        await board.sign_in(keys["admin"])
        await expect(page.get_by_role("heading", name="Overview")).to_be_visible()
        for status, number in stats["by_status"].items():
            await expect(page.get_by_test_id(f"count-{status}")).to_contain_text(str(number))
        chart = page.get_by_test_id("throughput-chart")
        await expect(chart).to_be_visible()
        minutes_with_work = len([m for m in stats["throughput"] if m["completed"] + m["failed"]])
        assert minutes_with_work >= 10, f"the history was not spread out: {stats['throughput']}"
        assert await chart.locator(".chart-minute.has-data").count() >= minutes_with_work - 1
        workers = page.get_by_test_id("workers-table")
        for name in ("worker-a", "worker-b", "worker-c"):
            await expect(workers).to_contain_text(name)
        await expect(workers).to_contain_text("s ago")
        await expect(page.get_by_test_id("oldest-queued")).not_to_contain_text("none waiting")
        await expect(page.get_by_test_id("types-table")).to_contain_text("ai.summarize")

        # A card is a way into the list, filtered.
        await page.get_by_test_id("count-FAILED").focus()
        await page.keyboard.press("Enter")
        await expect(page.get_by_test_id("job-row")).to_have_count(stats["by_status"]["FAILED"])
        await expect(page.get_by_test_id("filter-FAILED")).to_have_attribute("aria-pressed", "true")

        await board.go("#/")
        await expect(page.get_by_test_id("throughput-chart")).to_be_visible()
        await page.mouse.move(0, 0)
        if UPDATE_README_IMAGE:
            await board.screenshot(README_IMAGE, full_page=True)
        await board.screenshot(ARTIFACTS / "dashboard-overview.png")
        await board.go("#/jobs")
        await expect(page.get_by_test_id("job-row")).to_have_count(25)
        await board.screenshot(ARTIFACTS / "dashboard-jobs.png")

        # Pages: 25 rows each by default, the page number kept in the URL.
        total = sum(stats["by_status"].values())
        pager = page.get_by_role("navigation", name="Pages")
        await expect(pager).to_contain_text(f"1\u201325 of {total}")
        await expect(page.get_by_test_id("page-prev")).to_be_disabled()
        await page.get_by_test_id("page-next").click()
        await expect(pager).to_contain_text(f"26\u201350 of {total}")
        assert "page=2" in page.url
        await page.get_by_label("Rows per page").select_option("100")
        await expect(page.get_by_test_id("job-row")).to_have_count(100)
        await expect(pager).to_contain_text(f"page 1 of {-(-total // 100)}")
        await board.assert_clean()


@pytest.fixture(autouse=True)
def _artifacts_folder() -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
