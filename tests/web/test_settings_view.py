"""The dashboard's Settings page in Chromium, at a desktop's size and a 390 px phone's: an
admin sees each final status's retention (the workspace's own or the instance's default,
marked) and the weight, and changes the retention (days, forever, the instance's default);
only an instance admin changes the weight; other keys get neither the page nor its link.

What the settings mean is the server's, tested on both databases in tests/api; the page
does not depend on the database, so one backend is enough."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Locator, Page, ViewportSize, expect

from tests.support.server import RunningServer
from tests.web.conftest import ARTIFACTS
from tests.web.support import VIEWPORT, Dashboard, dashboard
from tests.web.test_layout import PHONE, assert_fits, assert_in_reach

SIZES = pytest.mark.parametrize("viewport", [VIEWPORT, PHONE], ids=["desktop", "phone"])
pytestmark = pytest.mark.parametrize("backend", ["sqlite"])


def retention(page: Page, name: str) -> Locator:
    return page.locator(f'[data-testid="retention-row"][data-name="{name}"]')


async def settings_of(client: httpx.AsyncClient) -> dict[str, Any]:
    found = await client.get("/settings")
    assert found.status_code == 200, found.text
    body: dict[str, Any] = found.json()
    return body


async def open_settings(board: Dashboard) -> None:
    await assert_in_reach(board, board.nav("Settings"), "the Settings link")
    await board.nav("Settings").click()
    await expect(board.page.get_by_role("heading", name="Settings", level=1)).to_be_visible()
    await expect(retention(board.page, "completed_days")).to_be_visible()


async def expect_retention(page: Page, name: str, value: str, source: str) -> None:
    row = retention(page, name)
    await expect(row.get_by_test_id("retention-value")).to_have_text(value)
    await expect(row.get_by_test_id("retention-source")).to_have_attribute("data-source", source)


@SIZES
async def test_an_admin_sees_and_changes_the_retention_and_sees_the_weight(
    browser: Browser,
    server: RunningServer,
    keys: dict[str, str],
    client: httpx.AsyncClient,
    viewport: ViewportSize,
) -> None:
    size = f"{viewport['width']}x{viewport['height']}"
    async with dashboard(browser, server, viewport=viewport) as board:
        page = board.page
        await board.sign_in(keys["admin"])
        await open_settings(board)
        for name, days in (("completed_days", 14), ("failed_days", 30), ("cancelled_days", 14)):
            await expect_retention(page, name, f"{days} days", "instance")
            await expect(retention(page, name).get_by_test_id("retention-source")).to_have_text(
                "instance default"
            )
        await expect(page.get_by_test_id("weight-value")).to_have_text("1")
        await expect(page.get_by_test_id("weight-source")).to_have_text("this workspace")
        await expect(page.get_by_test_id("weight-read-only")).to_contain_text("instance admin")
        await expect(page.get_by_test_id("weight-input")).to_have_count(0)
        await assert_fits(board, "the settings page")
        await board.screenshot(ARTIFACTS / f"settings-{size}.png", full_page=True)

        # Completed: 3 days of its own; failed: kept forever; cancelled left as it is.
        completed = retention(page, "completed_days")
        await completed.get_by_label("Kept").select_option("days")
        await expect(completed.get_by_label("Days")).to_be_focused()
        await completed.get_by_label("Days").fill("3")
        await retention(page, "failed_days").get_by_label("Kept").select_option("forever")
        await expect(retention(page, "failed_days").get_by_label("Days")).to_be_hidden()
        await assert_in_reach(board, page.get_by_test_id("save-retention"), "Save retention")
        await page.get_by_test_id("save-retention").click()
        confirm = page.get_by_test_id("confirm-dialog")
        await expect(confirm).to_contain_text("Completed jobs older than 3 days will be deleted")
        await assert_in_reach(board, confirm.get_by_role("button", name="Shorten retention"), "Yes")
        await confirm.get_by_role("button", name="Shorten retention").click()
        await expect_retention(page, "completed_days", "3 days", "workspace")
        await expect(completed.get_by_test_id("retention-source")).to_have_text("this workspace")
        await expect_retention(page, "failed_days", "forever", "workspace")
        await expect_retention(page, "cancelled_days", "14 days", "instance")
        await expect(page.get_by_test_id("save-retention")).to_be_focused()
        stored = await settings_of(client)
        kept = {"completed_days": 3, "failed_days": None, "cancelled_days": 14}
        assert stored["retention"] == kept
        assert stored["source"]["retention"]["cancelled_days"] == "instance", "not sent: kept"

        # A number of days that is none is refused on the page, and marks its field.
        cancelled = retention(page, "cancelled_days")
        await cancelled.get_by_label("Kept").select_option("days")
        await cancelled.get_by_label("Days").fill("-2")
        await page.get_by_test_id("save-retention").click()
        await expect(page.get_by_test_id("retention-error")).to_contain_text("Cancelled jobs")
        await expect(cancelled.get_by_label("Days")).to_have_attribute("aria-invalid", "true")
        await cancelled.get_by_label("Days").fill("0")
        await expect(cancelled.get_by_label("Days")).not_to_have_attribute("aria-invalid", "true")

        # … and one the server refuses (past its bound) shows its answer on that field.
        await cancelled.get_by_label("Days").fill("99999")
        await page.get_by_test_id("save-retention").click()
        await expect(page.get_by_test_id("retention-error")).to_contain_text("36500")
        await expect(cancelled.get_by_label("Days")).to_have_attribute("aria-invalid", "true")
        await expect(cancelled.get_by_label("Days")).to_have_accessible_description(
            re.compile("from 0 to 36500")
        )
        board.problems[:] = [p for p in board.problems if "status of 422" not in p]
        assert (await settings_of(client))["retention"] == stored["retention"]

        # Back to the instance's default.
        await cancelled.get_by_label("Kept").select_option("default")
        await completed.get_by_label("Kept").select_option("default")
        await page.get_by_test_id("save-retention").click()
        await expect_retention(page, "completed_days", "14 days", "instance")
        await expect_retention(page, "cancelled_days", "14 days", "instance")
        await expect_retention(page, "failed_days", "forever", "workspace")
        stored = await settings_of(client)
        assert stored["source"]["retention"]["completed_days"] == "instance"
        assert stored["weight"] == 1
        await assert_fits(board, "the settings page, after changes")
        await board.assert_clean()


async def test_a_shorter_retention_is_saved_only_once_the_admin_says_yes(
    browser: Browser,
    server: RunningServer,
    keys: dict[str, str],
    client: httpx.AsyncClient,
) -> None:
    async with dashboard(browser, server) as board:
        page = board.page
        await board.sign_in(keys["admin"])
        await open_settings(board)
        completed = retention(page, "completed_days")
        cancelled = retention(page, "cancelled_days")
        await completed.get_by_label("Kept").select_option("days")
        await completed.get_by_label("Days").fill("0")
        await cancelled.get_by_label("Kept").select_option("days")
        await cancelled.get_by_label("Days").fill("7")
        await page.get_by_test_id("save-retention").click()

        confirm = page.get_by_test_id("confirm-dialog")
        await expect(confirm.get_by_role("heading")).to_have_text("Delete finished jobs sooner?")
        await expect(confirm).to_contain_text(
            "Completed jobs older than 0 days and cancelled jobs older than 7 days will be "
            "deleted, with their steps and events, at the next pruning (within a minute, by "
            "default). This cannot be undone."
        )
        await confirm.get_by_role("button", name="Keep them").click()
        await expect(confirm).to_have_count(0)
        await expect(page.get_by_test_id("save-retention")).to_be_focused()
        await expect_retention(page, "completed_days", "14 days", "instance")
        assert (await settings_of(client))["source"]["retention"] == {
            "completed_days": "instance",
            "failed_days": "instance",
            "cancelled_days": "instance",
        }, "nothing was saved"

        await page.get_by_test_id("save-retention").click()
        await confirm.get_by_role("button", name="Shorten retention").click()
        await expect_retention(page, "completed_days", "until the next pruning", "workspace")
        await expect_retention(page, "cancelled_days", "7 days", "workspace")
        kept = (await settings_of(client))["retention"]
        assert (kept["completed_days"], kept["cancelled_days"]) == (0, 7)

        # Keeping jobs longer deletes nothing: it is saved without a question.
        await completed.get_by_label("Kept").select_option("forever")
        await page.get_by_test_id("save-retention").click()
        await expect_retention(page, "completed_days", "forever", "workspace")
        await expect(confirm).to_have_count(0)
        await board.assert_clean()


@SIZES
async def test_an_instance_admin_changes_the_weight(
    browser: Browser,
    server: RunningServer,
    keys: dict[str, str],
    client: httpx.AsyncClient,
    viewport: ViewportSize,
) -> None:
    size = f"{viewport['width']}x{viewport['height']}"
    async with dashboard(browser, server, viewport=viewport) as board:
        page = board.page
        await board.sign_in(keys["instance_admin"])
        await page.get_by_test_id("workspace-picker").locator('[data-slug="acme"]').click()
        await expect(page.get_by_test_id("workspace")).to_have_text("acme")
        await open_settings(board)
        weight = page.get_by_role("spinbutton", name="Weight", exact=True)
        await expect(weight).to_have_value("1")
        await expect(page.get_by_test_id("weight-read-only")).to_have_count(0)

        # Out of bounds: the page says the range, on the field.
        await weight.fill("0")
        await assert_in_reach(board, page.get_by_test_id("save-weight"), "Save weight")
        await page.get_by_test_id("save-weight").click()
        await expect(page.get_by_test_id("weight-error")).to_contain_text("from 1 to 1000")
        await expect(weight).to_have_attribute("aria-invalid", "true")
        assert (await settings_of(client))["weight"] == 1

        await weight.fill("5")
        await page.get_by_test_id("save-weight").click()
        await expect(page.get_by_test_id("weight-value")).to_have_text("5")
        await expect(page.get_by_test_id("save-weight")).to_be_focused()
        assert (await settings_of(client))["weight"] == 5
        await assert_fits(board, "the settings page of an instance admin")
        await board.screenshot(ARTIFACTS / f"settings-instance-admin-{size}.png", full_page=True)
        await board.assert_clean()


async def test_other_keys_get_neither_the_page_nor_its_link(
    browser: Browser, server: RunningServer, keys: dict[str, str]
) -> None:
    for role in ("client", "worker"):
        async with dashboard(browser, server) as board:
            page = board.page
            await board.sign_in(keys[role])
            await expect(board.nav("Jobs")).to_be_visible()
            await expect(board.nav("Settings")).to_have_count(0)
            await board.go("#/settings")
            await expect(page.get_by_test_id("not-allowed")).to_contain_text(
                f"you signed in with a {role} key"
            )
            await board.assert_clean()
