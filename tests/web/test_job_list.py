"""The job list's search forgives: the id box finds a job by what the list shows of its id
(ellipsis and all), and the type box matches the start of a type."""

from __future__ import annotations

import httpx
from playwright.async_api import Browser, expect

from tests.support.server import RunningServer
from tests.web.support import create, dashboard


async def test_the_id_box_finds_a_job_by_what_the_list_shows(
    browser: Browser, server: RunningServer, keys: dict[str, str], client: httpx.AsyncClient
) -> None:
    jobs = [await create(client, "email.send") for _ in range(3)]
    wanted = jobs[1]
    async with dashboard(browser, server) as board:
        page = board.page
        await board.sign_in(keys["client"])
        await board.go("#/jobs")
        rows = page.get_by_test_id("job-row")
        await expect(rows).to_have_count(3)
        shown = await board.job_row(wanted["id"]).locator(".job-link").inner_text()
        assert shown.startswith("…"), shown

        id_box = page.get_by_label("Job id")
        for typed in (shown, f" {shown} ", "..." + shown[1:], shown[1:].upper(), wanted["id"]):
            await id_box.fill(typed)
            await expect(rows, f"typed {typed!r}").to_have_count(1)
            await expect(rows).to_have_attribute("data-job-id", wanted["id"])
            await expect(page.get_by_text("An id is hexadecimal digits and dashes.")).to_be_hidden()
        await id_box.fill("not-an-id")
        await expect(page.get_by_text("An id is hexadecimal digits and dashes.")).to_be_visible()
        await page.get_by_role("button", name="Clear filters").click()
        await expect(rows).to_have_count(3)
        await board.assert_clean()


async def test_the_type_box_matches_the_start_of_a_type(
    browser: Browser, server: RunningServer, keys: dict[str, str], client: httpx.AsyncClient
) -> None:
    fail = await create(client, "demo.fail")
    echo = await create(client, "demo.echo")
    await create(client, "email.send")
    await create(client, "demos")  # a prefix match is not a word match: "demo" finds it too
    async with dashboard(browser, server) as board:
        page = board.page
        await board.sign_in(keys["client"])
        await board.go("#/jobs")
        rows = page.get_by_test_id("job-row")
        await expect(rows).to_have_count(4)
        type_box = page.get_by_label("Type")
        await type_box.fill("demo.")
        await expect(rows).to_have_count(2)
        assert {await row.get_attribute("data-job-id") for row in await rows.all()} == {
            fail["id"],
            echo["id"],
        }
        assert "type=demo." in page.url
        await type_box.fill("Demo")  # types are lower case: forgiven
        await expect(rows).to_have_count(3)
        await type_box.fill("demo.fail")
        await expect(rows).to_have_count(1)
        await expect(rows).to_have_attribute("data-job-id", fail["id"])
        await type_box.fill("demo fail")
        await expect(
            page.get_by_text("A type must be 1 to 100 characters of a-z, 0-9, _ . : -")
        ).to_be_visible()
        await expect(rows, "an impossible type leaves the list as it was").to_have_count(1)
        await board.assert_clean()


async def test_select_all_matching_then_cancel_and_retry_with_a_confirmation(
    browser: Browser, server: RunningServer, keys: dict[str, str], client: httpx.AsyncClient
) -> None:
    mail = [await create(client, "mail.send") for _ in range(3)]
    sms = await create(client, "sms.send")
    async with dashboard(browser, server) as board:
        page = board.page
        await board.sign_in(keys["client"])
        await board.go("#/jobs")
        rows = page.get_by_test_id("job-row")
        await expect(rows).to_have_count(4)
        await page.get_by_label("Type").fill("mail")
        await expect(rows).to_have_count(3)

        await page.get_by_test_id("select-all").click()
        await expect(page.get_by_test_id("bulk-selected")).to_have_text(
            "All 3 jobs matching these filters are selected."
        )
        await page.get_by_test_id("bulk-cancel").click()
        dialog = page.get_by_test_id("confirm-dialog")
        await expect(dialog.get_by_role("heading")).to_have_text("Cancel 3 jobs?")
        await dialog.get_by_role("button", name="Back").click()
        await expect(dialog).to_have_count(0)
        assert {(await client.get(f"/jobs/{job['id']}")).json()["status"] for job in mail} == {
            "QUEUED"
        }, "going back changes nothing"

        await page.get_by_test_id("bulk-cancel").click()
        await dialog.get_by_role("button", name="Cancel 3 jobs").click()
        await expect(page.get_by_test_id("bulk-result")).to_have_text("Matched 3 · cancelled 3")
        for job in mail:
            await expect(board.job_row(job["id"])).to_have_attribute("data-status", "CANCELLED")
        assert (await client.get(f"/jobs/{sms['id']}")).json()["status"] == "QUEUED"

        await page.get_by_test_id("select-all").click()
        await page.get_by_test_id("bulk-retry").click()
        await expect(dialog.get_by_role("heading")).to_have_text("Run again 3 jobs?")
        await dialog.get_by_role("button", name="Run again 3 jobs").click()
        await expect(page.get_by_test_id("bulk-result")).to_have_text("Matched 3 · run again 3")
        await expect(rows).to_have_count(6)
        retried = (
            await client.get("/jobs", params={"type": "mail.send", "status": "QUEUED"})
        ).json()
        assert sorted(job["retry_of"] for job in retried["data"]) == sorted(j["id"] for j in mail)
        await board.assert_clean()


async def test_more_filters_narrow_the_list(
    browser: Browser, server: RunningServer, keys: dict[str, str], client: httpx.AsyncClient
) -> None:
    keyed = await create(client, "t", concurrency_key="customer-1")
    await create(client, "t", concurrency_key="customer-2")
    async with dashboard(browser, server) as board:
        page = board.page
        await board.sign_in(keys["client"])
        await board.go("#/jobs")
        rows = page.get_by_test_id("job-row")
        await expect(rows).to_have_count(2)
        await page.get_by_text("More filters").click()
        await page.get_by_label("Concurrency key").fill("customer-1")
        await expect(rows).to_have_count(1)
        await expect(rows).to_have_attribute("data-job-id", keyed["id"])
        assert "concurrency_key=customer-1" in page.url
        await page.get_by_label("Created after").fill("2999-01-01T00:00")
        await expect(page.get_by_text("No jobs match these filters")).to_be_visible()
        await page.get_by_role("button", name="Clear filters").click()
        await expect(rows).to_have_count(2)
        await board.assert_clean()


# The fastest hand: the Type box changes and Cancel… is clicked before the list follows.
TYPE_THEN_CANCEL = """(typed) => {
  const type = document.getElementById('filter-type');
  type.value = typed;
  type.dispatchEvent(new Event('input', {bubbles: true}));
  document.querySelector('[data-testid="bulk-cancel"]').click();
}"""
TYPE = """(typed) => {
  const type = document.getElementById('filter-type');
  type.value = typed;
  type.dispatchEvent(new Event('input', {bubbles: true}));
}"""


async def test_a_bulk_cancel_acts_only_on_the_filters_it_states(
    browser: Browser, server: RunningServer, keys: dict[str, str], client: httpx.AsyncClient
) -> None:
    held = [await create(client, "report.build", hold=True) for _ in range(2)]

    async def statuses() -> set[str]:
        return {(await client.get(f"/jobs/{job['id']}")).json()["status"] for job in held}

    async with dashboard(browser, server) as board:
        page = board.page
        await board.sign_in(keys["client"])
        await board.go("#/jobs?status=PENDING")
        rows = page.get_by_test_id("job-row")
        dialog = page.get_by_test_id("confirm-dialog")
        await expect(rows).to_have_count(2)

        # Changing a filter ends the selection at once: Cancel… has nothing to act on.
        await page.get_by_test_id("select-all").click()
        await page.evaluate(TYPE_THEN_CANCEL, "demo.sleep")
        await expect(page.get_by_text("No jobs match these filters")).to_be_visible()
        assert "type=demo.sleep" in page.url
        await expect(page.get_by_test_id("bulk-cancel")).to_be_hidden()
        await expect(page.get_by_test_id("select-all")).to_be_visible()
        await expect(dialog, "no dialog for the filters the page no longer shows").to_have_count(0)
        assert await statuses() == {"PENDING"}

        # The dialog states the filters it acts on; if they change before it is confirmed,
        # nothing is cancelled, and the page says so.
        await page.get_by_label("Type").fill("report")
        await expect(rows).to_have_count(2)
        await page.get_by_test_id("select-all").click()
        await page.get_by_test_id("bulk-cancel").click()
        await expect(dialog.get_by_role("heading")).to_have_text("Cancel 2 jobs?")
        await expect(dialog).to_contain_text("Filters: status Pending; type starting with report.")
        await page.evaluate(TYPE, "demo.sleep")
        await dialog.get_by_role("button", name="Cancel 2 jobs").click()
        await expect(page.get_by_test_id("toast").last).to_have_text(
            "Nothing was cancelled: the filters changed before you confirmed. "
            "Select the matching jobs again."
        )
        await expect(page.get_by_text("No jobs match these filters")).to_be_visible()
        assert await statuses() == {"PENDING"}
        await board.assert_clean()
