"""The job page in Chromium against a real server: held jobs created from the New job dialog
and released with a button, the events timeline filtered by type and without progress
ticks, a failed job's error, and dates of another year with their year."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx
from playwright.async_api import Browser, expect

from tests.support.server import RunningServer
from tests.web.conftest import ARTIFACTS
from tests.web.support import Worker, as_key, create, dashboard


async def test_a_held_job_is_created_from_the_dialog_and_released_from_its_page(
    browser: Browser, server: RunningServer, keys: dict[str, str], client: httpx.AsyncClient
) -> None:
    async with dashboard(browser, server) as board:
        page = board.page
        await board.sign_in(keys["client"])
        dialog = await board.new_job_dialog("invoice.send")
        await dialog.get_by_label("Payload (JSON)").fill('{"invoice": 7}')
        await dialog.get_by_label("Hold it").check()
        await dialog.get_by_role("button", name="Create job").click()
        await expect(dialog).to_have_count(0)
        await expect(page.get_by_test_id("job-row")).to_have_count(1)
        listed = (await client.get("/jobs")).json()["data"]
        assert [job["status"] for job in listed] == ["PENDING"], "created held"
        held = listed[0]

        await page.get_by_test_id("job-row").click()
        await expect(page.get_by_test_id("job-status")).to_have_text("Pending")
        await expect(page.get_by_test_id("held-note")).to_contain_text("Held")
        release = page.get_by_test_id("release")
        await expect(release).to_be_visible()
        await board.screenshot(ARTIFACTS / "dashboard-job-held.png")
        await release.click()
        await expect(page.get_by_test_id("job-status")).to_have_text("Queued")
        await expect(page.get_by_test_id("toast").last).to_contain_text("released")
        await expect(release, "no Release once queued").to_have_count(0)
        await expect(page.get_by_test_id("held-note")).to_be_hidden()
        await expect(
            page.locator('[data-testid="event"][data-type="job.queued"]'), "the release's event"
        ).to_have_count(1)
        stored = (await client.get(f"/jobs/{held['id']}")).json()
        assert stored["status"] == "QUEUED"
        await board.assert_clean()

    # A worker may not release (the server says so too): no button for it.
    other = await create(client, "invoice.send", hold=True)
    async with dashboard(browser, server) as board:
        page = board.page
        await board.sign_in(keys["worker"])
        await board.go(f"#/jobs/{other['id']}")
        await expect(page.get_by_test_id("job-status")).to_have_text("Pending")
        await expect(page.get_by_test_id("held-note")).to_contain_text("client or admin key")
        await expect(page.get_by_test_id("release")).to_have_count(0)
        await board.assert_clean()


async def test_the_events_timeline_hides_progress_ticks_and_filters_by_type(
    browser: Browser, server: RunningServer, keys: dict[str, str], client: httpx.AsyncClient
) -> None:
    async with as_key(server, keys["worker"]) as http:
        worker = Worker(http, "worker-1")
        job = await create(client, "report.build")
        lease = await worker.claim_one(job["id"], "report.build")
        for percent in (10, 20, 30, 40):
            await worker.progress(job["id"], lease, percent, f"part {percent // 10}")
        await worker.event(job["id"], lease, "ai.tool_called", {"tool": "sql.query"})

        async with dashboard(browser, server) as board:
            page = board.page
            events = page.get_by_test_id("event")
            shown = page.locator('[data-testid="event"]:visible')
            ticks = page.locator('[data-testid="event"][data-type="job.progress"]')
            tool_calls = page.locator('[data-testid="event"][data-type="ai.tool_called"]')
            await board.sign_in(keys["admin"])
            await board.go(f"#/jobs/{job['id']}")
            # job.created, job.queued, job.started, 4 job.progress, ai.tool_called
            await expect(events).to_have_count(8)
            await expect(shown).to_have_count(8)
            await expect(page.get_by_test_id("event-count")).to_have_text("8 events")

            toggle = page.get_by_test_id("show-progress")
            await expect(toggle).to_be_checked()
            await toggle.uncheck()
            await expect(shown).to_have_count(4)
            await expect(ticks.first).to_be_hidden()
            await expect(page.get_by_test_id("event-count")).to_have_text("8 events · 4 shown")
            # The bar still moves with ticks that are not listed.
            await worker.progress(job["id"], lease, 60, "part 6")
            await expect(page.get_by_test_id("job-progress")).to_have_attribute(
                "aria-valuenow", "60"
            )
            await expect(events).to_have_count(9)
            await expect(shown).to_have_count(4)

            # One type only; its options name the types seen, with how many.
            type_filter = page.get_by_test_id("event-type-filter")
            await expect(type_filter.locator("option")).to_have_text(
                [
                    "all types",
                    "ai.tool_called (1)",
                    "job.created (1)",
                    "job.progress (5)",
                    "job.queued (1)",
                    "job.started (1)",
                ]
            )
            await type_filter.select_option("ai.tool_called")
            await expect(shown).to_have_count(1)
            await expect(tool_calls).to_be_visible()
            await worker.event(job["id"], lease, "ai.tool_called", {"tool": "chart.render"})
            await expect(shown, "a new event of the chosen type is listed").to_have_count(2)
            await expect(type_filter.locator("option", has_text="ai.tool_called")).to_have_text(
                "ai.tool_called (2)"
            )
            await worker.step(job["id"], lease, "render")
            await expect(type_filter.locator("option", has_text="step.started")).to_have_count(1)
            await expect(shown, "other types stay out").to_have_count(2)
            await board.screenshot(ARTIFACTS / "dashboard-job-events-filtered.png")

            # Progress ticks of the chosen type: the toggle still applies.
            await type_filter.select_option("job.progress")
            await expect(page.get_by_test_id("events-none-shown")).to_be_visible()
            await toggle.check()
            await expect(shown).to_have_count(5)
            await expect(page.get_by_test_id("events-none-shown")).to_be_hidden()
            await type_filter.select_option("")
            await expect(shown).to_have_count(await events.count())

            # The choice to hide ticks is remembered by this browser.
            await toggle.uncheck()
            await page.reload()
            await expect(page.get_by_test_id("job-type")).to_have_text("report.build")
            await expect(page.get_by_test_id("show-progress")).not_to_be_checked()
            await expect(ticks.first).to_be_hidden()
            await board.assert_clean()


async def test_a_failed_jobs_error_is_shown_in_the_failed_list_and_on_its_page(
    browser: Browser, server: RunningServer, keys: dict[str, str], client: httpx.AsyncClient
) -> None:
    first_line = (
        "KeyError: 'to' while rendering the template invoices/monthly-summary.html for "
        "customer acme-industries-international, which has no default address on file"
    )
    error = f"{first_line}\n  File \"myjobs.py\", line 12, in send_email\n    job.payload['to']"
    async with as_key(server, keys["worker"]) as http:
        worker = Worker(http, "worker-1")
        failed = await create(client, "email.send", payload={"cc": "x@example.com"})
        lease = await worker.claim_one(failed["id"], "email.send")
        await worker.fail(failed["id"], lease, error)
        done = await create(client, "email.send")
        lease = await worker.claim_one(done["id"], "email.send")
        await worker.complete(done["id"], lease, {"ok": True})
    stored = (await client.get(f"/jobs/{failed['id']}")).json()

    async with dashboard(browser, server) as board:
        page = board.page
        await board.sign_in(keys["client"])
        await board.go("#/jobs")
        await expect(page.get_by_test_id("job-row")).to_have_count(2)
        await expect(page.get_by_test_id("row-error"), "no error column unfiltered").to_have_count(
            0
        )
        await page.get_by_test_id("filter-FAILED").click()
        await expect(page.get_by_test_id("job-row")).to_have_count(1)
        row_error = board.job_row(failed["id"]).get_by_test_id("row-error")
        await expect(row_error).to_be_visible()
        shown = await row_error.inner_text()
        assert shown.startswith("KeyError: 'to' while rendering"), shown
        assert shown.endswith("…"), f"not shortened: {shown!r}"
        assert len(shown) <= 140, f"not shortened: {shown!r}"
        assert "File" not in shown, f"more than the first line: {shown!r}"
        await expect(row_error, "the whole error on hover").to_have_attribute("title", error)
        await expect(page.get_by_role("columnheader", name="Error")).to_be_visible()
        await board.screenshot(ARTIFACTS / "dashboard-jobs-failed.png")

        await board.job_row(failed["id"]).click()
        await expect(page.get_by_test_id("job-status")).to_have_text("Failed")
        await expect(page.get_by_test_id("job-error")).to_have_text(error)
        # A traceback of its own (`error_detail`) shows only when the server sends one.
        detail = stored.get("error_detail")
        if detail:
            await expect(page.get_by_test_id("job-error-detail")).to_have_text(detail)
        else:
            await expect(page.get_by_test_id("job-error-detail")).to_have_count(0)
        await board.assert_clean()


async def test_a_date_in_another_year_shows_its_year(
    browser: Browser, server: RunningServer, keys: dict[str, str], client: httpx.AsyncClient
) -> None:
    job = await create(client, "report.build", run_at="9999-06-30T12:00:00Z")
    async with dashboard(browser, server) as board:
        page = board.page
        await board.sign_in(keys["client"])
        await board.go(f"#/jobs/{job['id']}")
        facts = page.get_by_test_id("job-facts")
        await expect(facts.locator("dt:text-is('Runs at') + dd")).to_contain_text("9999")
        created = await facts.locator("dt:text-is('Created') + dd").inner_text()
        assert re.fullmatch(r"\d\d:\d\d:\d\d \(.*\)", created), f"today is a time: {created!r}"
        await board.assert_clean()


async def test_a_job_created_for_later_says_when_it_is_due(
    browser: Browser, server: RunningServer, keys: dict[str, str], client: httpx.AsyncClient
) -> None:
    later = await create(client, "report.build", run_at=_from_now(minutes=5))
    now = await create(client, "report.build")
    async with dashboard(browser, server) as board:
        page = board.page
        await board.sign_in(keys["client"])
        await board.go("#/jobs")
        await expect(page.get_by_test_id("job-row")).to_have_count(2)
        await expect(board.job_row(later["id"]).get_by_test_id("due")).to_have_text(
            re.compile(r"due in [45] min")
        )
        await expect(board.job_row(now["id"]).get_by_test_id("status")).to_have_text("Queued")
        await expect(board.job_row(now["id"]).get_by_test_id("due")).to_have_count(0)

        await board.go(f"#/jobs/{later['id']}")
        due_note = page.get_by_test_id("due-note")
        await expect(due_note).to_have_text(
            # A time alone today; past midnight the date comes first ("Dec 8, 00:01:02").
            re.compile(
                r"Not due until (\w{3} \d{1,2}, )?\d\d:\d\d:\d\d \(in [45] min\)\. "
                r"No worker claims it"
            )
        )
        await board.go(f"#/jobs/{now['id']}")
        await expect(page.get_by_test_id("job-status")).to_have_text("Queued")
        await expect(due_note).to_be_hidden()

        soon = await create(client, "report.build", run_at=_from_now(seconds=5))
        await board.go(f"#/jobs/{soon['id']}")
        await expect(due_note).to_contain_text("Not due until")
        await expect(due_note, "gone once the job is due").to_be_hidden(timeout=15_000)

        # In the list too: "due in …" leaves the row when the time comes (not "due … ago").
        sooner = await create(client, "report.build", run_at=_from_now(seconds=4))
        await board.go("#/jobs")
        in_list = board.job_row(sooner["id"]).get_by_test_id("due")
        await expect(in_list).to_have_text(re.compile(r"due in \d+ s"))
        await expect(in_list, "gone once the job is due").to_have_count(0, timeout=15_000)
        await board.assert_clean()


def _from_now(**delta: float) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat()
