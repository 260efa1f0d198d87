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
        await expect(page.get_by_text("A type is lower-case letters")).to_be_visible()
        await expect(rows, "an impossible type leaves the list as it was").to_have_count(1)
        await board.assert_clean()
