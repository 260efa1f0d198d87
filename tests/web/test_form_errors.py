"""What a form says when something is wrong, in Chromium: a refused request (a problem+json
422) marks each field its `errors` name, with that field's message beside it (and read
with it: its accessible description); a range the page checks is said as a range; a
pasted key that cannot be one is "not valid", not a validation message about `api_key`.

The forms do not depend on the database: one backend is enough."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.async_api import Browser, expect

from tests.support.server import RunningServer
from tests.web.support import Dashboard, dashboard

pytestmark = pytest.mark.parametrize("backend", ["sqlite"])


def forget_refusals(board: Dashboard) -> None:
    """The browser logs each refused request (422) as a console error: expected here."""
    board.problems[:] = [p for p in board.problems if "status of 422" not in p]


async def test_a_refused_limit_marks_each_field_the_server_names(
    browser: Browser, server: RunningServer, keys: dict[str, str], client: httpx.AsyncClient
) -> None:
    async with dashboard(browser, server) as board:
        await board.sign_in(keys["admin"])
        dialog = await board.new_limit_dialog("openai")
        await dialog.get_by_label("Max running").fill("3")
        # Both past the server's bounds, which the page leaves to the server.
        await dialog.get_by_label("Rate: starts").fill("2000000")
        await dialog.get_by_label("per seconds").fill("99999999")
        await dialog.get_by_test_id("save-limit").click()

        starts = dialog.get_by_label("Rate: starts")
        seconds = dialog.get_by_label("per seconds")
        await expect(starts).to_have_attribute("aria-invalid", "true")
        await expect(starts).to_have_accessible_description(re.compile("equal to 1000000$"))
        await expect(seconds).to_have_attribute("aria-invalid", "true")
        await expect(seconds).to_have_accessible_description(re.compile("equal to 604800$"))
        await expect(dialog.get_by_test_id("field-error")).to_have_text(
            [
                "Input should be less than or equal to 1000000",
                "Input should be less than or equal to 604800",
            ]
        )
        await expect(dialog.get_by_label("Max running")).not_to_have_attribute(
            "aria-invalid", "true"
        )
        await expect(starts).to_be_focused()

        # Typing in a field clears its mark and its message; a good value saves.
        await starts.fill("10")
        await expect(starts).not_to_have_attribute("aria-invalid", "true")
        await expect(dialog.get_by_test_id("field-error")).to_have_count(1)
        await seconds.fill("60")
        await dialog.get_by_test_id("save-limit").click()
        await expect(dialog).to_have_count(0)
        stored = (await client.get("/limits/openai")).json()
        assert stored["rate"] == {"count": 10, "per_seconds": 60.0}
        forget_refusals(board)
        await board.assert_clean()


async def test_a_refused_schedule_says_what_is_wrong_beside_the_field(
    browser: Browser, server: RunningServer, keys: dict[str, str]
) -> None:
    async with dashboard(browser, server) as board:
        page = board.page
        await board.sign_in(keys["admin"])
        await board.nav("Schedules").click()
        form = page.get_by_test_id("schedule-form")
        await form.get_by_label("Name").fill("nightly")
        await form.get_by_label("Cron").fill("30 2 * * *")
        await form.get_by_label("Time zone").fill("Mars/Olympus_Mons")
        await form.get_by_label("Job type").fill("report.build")
        await page.get_by_test_id("create-schedule").click()

        zone = form.get_by_label("Time zone")
        await expect(zone).to_have_attribute("aria-invalid", "true")
        await expect(form.get_by_test_id("field-error")).to_contain_text("Mars/Olympus_Mons")
        await expect(zone).to_have_accessible_description(re.compile("Mars/Olympus_Mons"))
        await expect(form.get_by_label("Cron")).not_to_have_attribute("aria-invalid", "true")
        forget_refusals(board)
        await board.assert_clean()


async def test_a_weight_out_of_range_is_told_the_range(
    browser: Browser, server: RunningServer, keys: dict[str, str], client: httpx.AsyncClient
) -> None:
    async with dashboard(browser, server) as board:
        page = board.page
        await board.sign_in(keys["instance_admin"])
        await page.get_by_test_id("workspace-picker").locator('[data-slug="acme"]').click()
        await board.nav("Settings").click()
        weight = page.get_by_role("spinbutton", name="Weight", exact=True)
        await weight.fill("-1")
        await page.get_by_test_id("save-weight").click()
        range_told = "The weight must be a whole number from 1 to 1000."
        await expect(page.get_by_test_id("weight-error")).to_have_text(range_told)
        await expect(weight).to_have_attribute("aria-invalid", "true")
        await expect(weight).to_have_accessible_description(range_told)
        assert (await client.get("/settings")).json()["weight"] == 1
        await board.assert_clean()


async def test_a_pasted_key_too_long_to_be_one_is_not_valid(
    browser: Browser, server: RunningServer
) -> None:
    async with dashboard(browser, server) as board:
        page = board.page
        await page.goto(f"{server.url}/")
        await page.get_by_label("API key").fill("cvk_" + "x" * 300)
        await page.get_by_role("button", name="Sign in").click()
        error = page.get_by_test_id("sign-in-error")
        await expect(error).to_have_text(
            "That API key is not valid (unknown, mistyped or revoked)."
        )
        await expect(page.get_by_label("API key")).to_be_focused()
        forget_refusals(board)
        await board.assert_clean()
