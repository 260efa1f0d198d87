"""The dashboard's Schedules view in Chromium: create (and a refused cron named), next runs,
run now, pause and resume, the jobs each schedule made (fired by the server's scheduler on
a clock the test moves), delete; read-only for a worker key; and on a 390 px phone every
control in reach without sideways scrolling."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import httpx
import pytest
from playwright.async_api import Browser, expect

from tests.support.clock import FakeClock
from tests.support.server import RunningServer
from tests.web.conftest import ARTIFACTS
from tests.web.support import dashboard
from tests.web.test_layout import DESKTOP, PHONE, assert_fits, assert_in_reach
from tests.worker.conftest import eventually

# The view does not depend on the database (the API tests cover both): one is enough.
pytestmark = pytest.mark.parametrize("backend", ["sqlite"])

NOW = datetime(2026, 12, 5, 10, 2, tzinfo=UTC)


async def test_schedules_are_created_run_paused_followed_and_deleted(
    browser: Browser, server: RunningServer, keys: dict[str, str], client: httpx.AsyncClient
) -> None:
    clock = FakeClock(NOW)
    server.runtime.schedules.clock = clock
    async with dashboard(browser, server, viewport=DESKTOP) as board:
        page = board.page
        await board.sign_in(keys["admin"])
        await board.nav("Schedules").click()
        await expect(page.get_by_role("heading", name="Schedules", exact=True)).to_be_visible()
        await expect(page.get_by_text("No schedules")).to_be_visible()

        form = page.get_by_test_id("schedule-form")
        await form.get_by_label("Name").fill("broken")
        await form.get_by_label("Cron").fill("61 * * * *")
        await form.get_by_label("Time zone").fill("UTC")
        await form.get_by_label("Job type").fill("report.build")
        await page.get_by_test_id("create-schedule").click()
        await expect(page.get_by_test_id("schedule-error")).to_contain_text("cron")
        await expect(form.get_by_label("Cron")).to_have_attribute("aria-invalid", "true")
        # The browser logs the refused request (422) as a console error: expected here.
        board.problems[:] = [p for p in board.problems if "status of 422" not in p]

        await form.get_by_label("Name").fill("every-five")
        await form.get_by_label("Cron").fill("*/5 * * * *")
        await form.get_by_label("Payload (JSON)").fill('{"region": "eu"}')
        await page.get_by_test_id("create-schedule").click()
        row = page.locator('[data-testid="schedule-row"][data-name="every-five"]')
        await expect(row).to_be_visible()
        await expect(row.get_by_test_id("schedule-state")).to_have_text("Active")
        await expect(row.get_by_test_id("upcoming").locator("li")).to_have_count(3)
        created = (await client.get("/schedules/every-five")).json()
        assert created["next_run_at"] == "2026-12-05T10:05:00+00:00"
        assert created["job"]["payload"] == {"region": "eu"}

        # Run now: a job at once, linked as the last run.
        await row.get_by_test_id("trigger").click()
        await expect(row.get_by_test_id("last-job")).to_be_visible()
        triggered = (await client.get("/schedules/every-five")).json()["last_job_id"]

        # The server's scheduler fires the 10:05 tick when its clock gets there.
        clock.set(datetime(2026, 12, 5, 10, 5, 0, 5000, tzinfo=UTC))
        server.runtime.scheduler.wake()

        async def fired() -> bool:
            runs = (await client.get("/schedules/every-five/runs")).json()["data"]
            return any(run["outcome"] == "fired" for run in runs)

        await eventually(fired, what="the 10:05 tick")

        # Its page: the rule, the next runs, and the jobs its runs made.
        await row.locator(".schedule-link").click()
        await expect(page.get_by_role("heading", name="every-five")).to_be_visible()
        runs = page.get_by_test_id("run-row")
        await expect(runs).to_have_count(2)
        await expect(page.locator('[data-testid="run-row"][data-outcome="fired"]')).to_contain_text(
            "Fired"
        )
        await expect(
            page.locator('[data-testid="run-row"][data-outcome="triggered"]')
        ).to_contain_text("Queued")
        await expect(page.get_by_test_id("upcoming").locator("li")).to_have_count(5)
        await board.screenshot(ARTIFACTS / "schedules" / "schedule-desktop.png", full_page=True)
        await (
            page.locator('[data-testid="run-row"][data-outcome="triggered"]')
            .get_by_test_id("run-job")
            .click()
        )
        await expect(page).to_have_url(f"{server.url}/#/jobs/{triggered}")
        await expect(page.get_by_test_id("status").first).to_have_text("Queued")

        # Pause and resume from the list.
        await board.nav("Schedules").click()
        await row.get_by_test_id("pause").click()
        await expect(row.get_by_test_id("schedule-state")).to_have_text("Paused")
        await expect(row).to_contain_text("paused")
        assert (await client.get("/schedules/every-five")).json()["next_run_at"] is None
        await row.get_by_test_id("resume").click()
        await expect(row.get_by_test_id("schedule-state")).to_have_text("Active")
        await board.screenshot(ARTIFACTS / "schedules" / "schedules-desktop.png", full_page=True)

        # Delete, after saying yes.
        await row.get_by_test_id("delete").click()
        dialog = page.get_by_test_id("confirm-dialog")
        await dialog.get_by_role("button", name="Delete schedule").click()
        await expect(row).to_have_count(0)
        assert (await client.get("/schedules/every-five")).status_code == 404
        await board.assert_clean()


async def test_a_worker_key_sees_schedules_but_cannot_change_them(
    browser: Browser, server: RunningServer, keys: dict[str, str], client: httpx.AsyncClient
) -> None:
    made = await client.post(
        "/schedules", json={"name": "hourly", "cron": "@hourly", "job": {"type": "t"}}
    )
    assert made.status_code == 201
    async with dashboard(browser, server, viewport=DESKTOP) as board:
        page = board.page
        await board.sign_in(keys["worker"])
        await board.go("#/schedules")
        row = page.locator('[data-testid="schedule-row"][data-name="hourly"]')
        await expect(row).to_be_visible()
        await expect(page.get_by_test_id("schedule-form")).to_have_count(0)
        await expect(row.get_by_test_id("trigger")).to_have_count(0)
        await expect(row.get_by_test_id("delete")).to_have_count(0)
        await board.assert_clean()


async def test_the_list_pages_and_drops_no_schedule(
    browser: Browser, server: RunningServer, keys: dict[str, str], client: httpx.AsyncClient
) -> None:
    names = [f"report-{number:02}" for number in range(27)]
    for name in reversed(names):
        made = await client.post(
            "/schedules",
            json={"name": name, "cron": "@daily", "paused": True, "job": {"type": "t"}},
        )
        assert made.status_code == 201, made.text
    async with dashboard(browser, server, viewport=DESKTOP) as board:
        page = board.page
        await board.sign_in(keys["admin"])
        await board.go("#/schedules")
        rows = page.get_by_test_id("schedule-row")
        pager = page.get_by_role("navigation", name="Pages")
        await expect(rows).to_have_count(25)
        await expect(pager).to_contain_text("1\u201325 of 27 \u00b7 page 1 of 2")
        await expect(rows.first).to_have_attribute("data-name", "report-00")
        await expect(page.get_by_test_id("page-prev")).to_be_disabled()
        await page.get_by_test_id("page-next").click()
        await expect(rows).to_have_count(2)
        await expect(pager).to_contain_text("26\u201327 of 27 \u00b7 page 2 of 2")
        assert [await row.get_attribute("data-name") for row in await rows.all()] == names[25:]
        await expect(page.get_by_test_id("page-next")).to_be_disabled()
        assert "page=2" in page.url

        # Deleting the last page's schedules goes back to the page that still has rows.
        for _ in range(2):
            await rows.first.get_by_test_id("delete").click()
            dialog = page.get_by_test_id("confirm-dialog")
            await dialog.get_by_role("button", name="Delete schedule").click()
            await expect(dialog).to_have_count(0)
        await expect(rows).to_have_count(25)
        await expect(pager).to_contain_text("1\u201325 of 25 \u00b7 page 1 of 1")

        await page.get_by_label("Rows per page").select_option("50")
        await expect(rows).to_have_count(25)
        assert "limit=50" in page.url
        await page.reload()
        await expect(rows).to_have_count(25)
        await expect(page.get_by_label("Rows per page")).to_have_value("50")
        await board.assert_clean()


async def test_the_schedules_view_fits_a_phone(
    browser: Browser, server: RunningServer, keys: dict[str, str], client: httpx.AsyncClient
) -> None:
    for name, cron, zone in (
        ("nightly-report-for-every-region", "30 2 * * *", "America/New_York"),
        # Not one that fires while the test runs: its runs are counted below.
        ("new-year", "0 0 1 1 *", "UTC"),
    ):
        made = await client.post(
            "/schedules",
            json={"name": name, "cron": cron, "timezone": zone, "job": {"type": "report.build"}},
        )
        assert made.status_code == 201, made.text
    triggered = await client.post("/schedules/new-year/trigger")
    assert triggered.status_code == 201
    async with dashboard(browser, server, viewport=PHONE) as board:
        page = board.page
        await board.sign_in(keys["admin"])
        await assert_in_reach(board, board.nav("Schedules"), "the Schedules link")
        await board.nav("Schedules").click()
        await expect(page.get_by_test_id("schedule-row")).to_have_count(2)
        await assert_fits(board, "schedules")
        for label in (
            "Name",
            "Cron",
            "Time zone",
            "Job type",
            "Priority",
            "Overlap",
            "Catch up",
            "Max attempts",
            "Timeout in seconds",
            "Concurrency key",
        ):
            await assert_in_reach(
                board, page.get_by_test_id("schedule-form").get_by_label(label), label
            )
        await assert_in_reach(board, page.get_by_test_id("create-schedule"), "Create schedule")
        for row in await page.get_by_test_id("schedule-row").all():
            for action in ("edit", "pause", "trigger", "delete"):
                await assert_in_reach(board, row.get_by_test_id(action), f"a row's {action}")
        await board.screenshot(ARTIFACTS / "schedules" / "schedules-390.png", full_page=True)
        await page.locator('[data-name="new-year"]').get_by_test_id("edit").click()
        dialog = page.get_by_test_id("schedule-dialog")
        await assert_fits(board, "the edit dialog")
        for label in ("Cron", "Time zone", "Job type", "Max attempts", "Payload (JSON)"):
            await assert_in_reach(board, dialog.get_by_label(label), f"the dialog's {label}")
        await assert_in_reach(board, dialog.get_by_test_id("save-schedule"), "Save schedule")
        await board.screenshot(ARTIFACTS / "schedules" / "schedule-edit-390.png")
        await dialog.get_by_role("button", name="Cancel").click()

        await page.locator('[data-name="new-year"] .schedule-link').click()
        await expect(page.get_by_test_id("run-row")).to_have_count(1)
        await assert_fits(board, "one schedule")
        await assert_in_reach(board, page.get_by_test_id("run-job"), "the run's job link")
        await assert_in_reach(board, page.get_by_test_id("trigger"), "Run now")
        await board.screenshot(ARTIFACTS / "schedules" / "schedule-390.png", full_page=True)
        await board.assert_clean()


async def test_a_schedule_is_created_with_its_jobs_limits_and_edited(
    browser: Browser, server: RunningServer, keys: dict[str, str], client: httpx.AsyncClient
) -> None:
    async with dashboard(browser, server, viewport=DESKTOP) as board:
        page = board.page
        await board.sign_in(keys["admin"])
        await board.nav("Schedules").click()
        form = page.get_by_test_id("schedule-form")
        await form.get_by_label("Name").fill("weekday-report")
        await form.get_by_label("Cron").fill("0 9 * * MON-FRI")
        await form.get_by_label("Time zone").fill("UTC")
        await form.get_by_label("Job type").fill("report.build")
        await form.get_by_label("Max attempts").fill("3")
        await form.get_by_label("Timeout in seconds").fill("120")
        await form.get_by_label("Concurrency key").fill("reports")
        await page.get_by_test_id("create-schedule").click()
        row = page.locator('[data-testid="schedule-row"][data-name="weekday-report"]')
        await expect(row).to_be_visible()
        created = (await client.get("/schedules/weekday-report")).json()
        assert created["job"] == {
            "type": "report.build",
            "payload": {},
            "priority": 5,
            "max_attempts": 3,
            "timeout_seconds": 120.0,
            "concurrency_key": "reports",
        }

        # Edit: a new rule in another zone, no timeout any more.
        await row.get_by_test_id("edit").click()
        dialog = page.get_by_test_id("schedule-dialog")
        await expect(dialog.get_by_label("Cron")).to_have_value("0 9 * * MON-FRI")
        await expect(dialog.get_by_label("Max attempts")).to_have_value("3")
        await expect(dialog.get_by_label("Concurrency key")).to_have_value("reports")
        await dialog.get_by_label("Cron").fill("30 8 * * MON-FRI")
        await dialog.get_by_label("Time zone").fill("Europe/Berlin")
        await dialog.get_by_label("Timeout in seconds").fill("")
        await dialog.get_by_test_id("save-schedule").click()
        await expect(dialog).to_have_count(0)
        await expect(row.locator(".cron")).to_have_text("30 8 * * MON-FRI")
        await expect(row).to_contain_text("Europe/Berlin")
        edited = (await client.get("/schedules/weekday-report")).json()
        assert (edited["cron"], edited["timezone"]) == ("30 8 * * MON-FRI", "Europe/Berlin")
        assert edited["job"] == {**created["job"], "timeout_seconds": None}

        # Another client changes its priority while the dialog is open: the save does not
        # overwrite that; the dialog shows it, and the change made again keeps it.
        await row.get_by_test_id("edit").click()
        await dialog.get_by_label("Max attempts").fill("5")
        meanwhile = await client.patch("/schedules/weekday-report", json={"job": {"priority": 2}})
        assert meanwhile.status_code == 200, meanwhile.text
        await dialog.get_by_test_id("save-schedule").click()
        await expect(dialog.get_by_test_id("schedule-dialog-error")).to_contain_text(
            "Not saved: schedule weekday-report was changed elsewhere"
        )
        await expect(dialog.get_by_label("Priority")).to_have_value("2")
        await expect(dialog.get_by_label("Max attempts")).to_have_value("3")
        assert (await client.get("/schedules/weekday-report")).json()["job"]["max_attempts"] == 3
        await dialog.get_by_label("Max attempts").fill("5")
        await dialog.get_by_test_id("save-schedule").click()
        await expect(dialog).to_have_count(0)
        job = (await client.get("/schedules/weekday-report")).json()["job"]
        assert (job["max_attempts"], job["priority"]) == (5, 2)
        # The browser logs the refused PATCH (409) as a console error: expected here.
        board.problems[:] = [p for p in board.problems if "status of 409" not in p]
        await board.assert_clean()


async def test_next_runs_are_shown_in_the_schedules_own_time_zone(
    browser: Browser, server: RunningServer, keys: dict[str, str], client: httpx.AsyncClient
) -> None:
    made = await client.post(
        "/schedules",
        json={
            "name": "standup",
            "cron": "0 9 * * MON-FRI",
            "timezone": "Asia/Kolkata",
            "job": {"type": "standup.remind"},
        },
    )
    assert made.status_code == 201, made.text
    # A browser in Los Angeles, where 09:00 in Kolkata is 19:30 (19:30 on a Sunday for a
    # Monday's tick): the times are Kolkata's, named, not the browser's unlabelled.
    kolkata_weekday_nine = re.compile(r"^(Mon|Tue|Wed|Thu|Fri), \w{3} \d{1,2}, 09:00 GMT\+5:30$")
    async with dashboard(
        browser, server, viewport=DESKTOP, timezone_id="America/Los_Angeles", locale="en-US"
    ) as board:
        page = board.page
        await board.sign_in(keys["admin"])
        await board.nav("Schedules").click()
        row = page.locator('[data-testid="schedule-row"][data-name="standup"]')
        ticks = row.get_by_test_id("upcoming").locator("li")
        await expect(ticks).to_have_count(3)
        for tick in await ticks.all():
            await expect(tick).to_have_text(kolkata_weekday_nine)
            await expect(tick.locator("time")).to_have_attribute(
                "title", re.compile("^your time: ")
            )

        await row.locator(".schedule-link").click()
        ticks = page.get_by_test_id("upcoming").locator("li")
        await expect(ticks).to_have_count(5)
        for tick in await ticks.all():
            await expect(tick).to_have_text(kolkata_weekday_nine)
        await board.assert_clean()


async def test_editing_a_schedule_keeps_its_payloads_large_integers(
    browser: Browser, server: RunningServer, keys: dict[str, str], client: httpx.AsyncClient
) -> None:
    """The edit dialog shows 2**53 + 1 with every digit; saving a change of priority leaves
    the payload as it was (a payload read as doubles would be sent back rounded)."""
    payload = {"order_id": 2**53 + 1, "cap": 2**63 - 1}
    made = await client.post(
        "/schedules",
        json={
            "name": "orders",
            "cron": "0 9 * * *",
            "job": {"type": "order.ship", "payload": payload},
        },
    )
    assert made.status_code == 201, made.text
    async with dashboard(browser, server, viewport=DESKTOP) as board:
        page = board.page
        await board.sign_in(keys["admin"])
        await board.nav("Schedules").click()
        row = page.locator('[data-testid="schedule-row"][data-name="orders"]')
        await row.get_by_test_id("edit").click()
        dialog = page.get_by_test_id("schedule-dialog")
        await expect(dialog.get_by_label("Payload (JSON)")).to_have_value(
            re.compile(str(2**53 + 1))
        )
        await dialog.get_by_label("Priority").select_option("2")
        await dialog.get_by_test_id("save-schedule").click()
        await expect(dialog).to_have_count(0)
        job = (await client.get("/schedules/orders")).json()["job"]
        assert (job["priority"], job["payload"]) == (2, payload)

        # Created from the form, too, with every digit.
        form = page.get_by_test_id("schedule-form")
        await form.get_by_label("Name").fill("orders-2")
        await form.get_by_label("Cron").fill("0 9 * * *")
        await form.get_by_label("Job type").fill("order.ship")
        await form.get_by_label("Payload (JSON)").fill(f'{{"order_id": {2**53 + 1}}}')
        await page.get_by_test_id("create-schedule").click()
        await expect(
            page.locator('[data-testid="schedule-row"][data-name="orders-2"]')
        ).to_be_visible()
        created = (await client.get("/schedules/orders-2")).json()["job"]
        assert created["payload"] == {"order_id": 2**53 + 1}
        await board.assert_clean()


async def test_a_schedules_page_pages_its_runs_by_the_older_runs_link(
    browser: Browser, server: RunningServer, keys: dict[str, str], client: httpx.AsyncClient
) -> None:
    """51 runs: the page shows the newest 50 and links the older one; a run recorded while
    the page is open shifts nothing; the position is in the URL, and Newest runs goes back."""
    schedule = (
        await client.post(
            "/schedules",
            json={"name": "minutely", "cron": "* * * * *", "paused": True, "job": {"type": "t"}},
        )
    ).json()
    made = []
    for _ in range(51):
        made.append((await client.post("/schedules/minutely/trigger")).json()["id"])
    async with dashboard(browser, server, viewport=DESKTOP) as board:
        page = board.page
        await board.sign_in(keys["admin"])
        await board.go(f"#/schedules/{schedule['id']}")
        runs = page.get_by_test_id("run-row")
        await expect(runs).to_have_count(50)
        await expect(runs.first.get_by_test_id("run-job")).to_have_attribute("title", made[-1])
        await expect(runs.last.get_by_test_id("run-job")).to_have_attribute("title", made[1])
        await expect(page.get_by_test_id("newest-runs")).to_have_count(0)

        # A run recorded while the page is open: the older runs stay where they were.
        later = (await client.post("/schedules/minutely/trigger")).json()["id"]
        await page.get_by_test_id("older-runs").click()
        await expect(page).to_have_url(re.compile(r"#/schedules/[0-9a-f-]+\?cursor=\S+$"))
        await expect(runs).to_have_count(1)
        await expect(runs.first.get_by_test_id("run-job")).to_have_attribute("title", made[0])
        await expect(page.get_by_test_id("older-runs")).to_have_count(0)
        await page.reload()  # the position is in the URL
        await expect(runs).to_have_count(1)
        await expect(runs.first.get_by_test_id("run-job")).to_have_attribute("title", made[0])

        await page.get_by_test_id("newest-runs").click()
        await expect(runs).to_have_count(50)
        await expect(runs.first.get_by_test_id("run-job")).to_have_attribute("title", later)
        await expect(page.get_by_test_id("older-runs")).to_be_visible()
        await board.assert_clean()
