"""Limits in the dashboard (create, edit, pause, resume, delete; read-only for keys that may
not manage them), why a queued job waits, the concurrency key from the New job dialog, and
an instance admin key choosing its workspace — at a desktop's size and a phone's.

What a limit does is the server's, tested on both databases in tests/service and tests/api;
these pages do not depend on the database, so one backend is enough."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, ViewportSize, expect

from tests.support.server import RunningServer
from tests.web.conftest import ARTIFACTS
from tests.web.support import VIEWPORT, Worker, as_key, create, dashboard
from tests.web.test_layout import assert_fits, assert_in_reach

PHONE: ViewportSize = {"width": 390, "height": 844}
SIZES = pytest.mark.parametrize("viewport", [VIEWPORT, PHONE], ids=["desktop", "phone"])
pytestmark = pytest.mark.parametrize("backend", ["sqlite"])


def row(page: Page, name: str) -> Any:
    return page.locator(f'[data-testid="limit-row"][data-name="{name}"]')


async def limit(client: httpx.AsyncClient, name: str) -> dict[str, Any] | None:
    found = await client.get(f"/limits/{name}")
    if found.status_code == 404:
        return None
    assert found.status_code == 200, found.text
    body: dict[str, Any] = found.json()
    return body


@SIZES
async def test_an_admin_creates_edits_pauses_resumes_and_deletes_a_limit(
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
        await board.nav("Limits").click()
        await expect(page.get_by_role("heading", name="Limits")).to_be_visible()
        await expect(page.get_by_text("No limits")).to_be_visible()
        await expect(page.get_by_test_id("limits-read-only")).to_have_count(0)

        # Create: a cap and a rate.
        await page.get_by_test_id("new-limit").click()
        dialog = page.get_by_test_id("limit-dialog")
        await dialog.get_by_label("Name").fill("openai")
        await dialog.get_by_label("Max running").fill("2")
        await dialog.get_by_label("Rate: starts").fill("10")
        await dialog.get_by_label("per seconds").fill("60")
        await board.screenshot(ARTIFACTS / f"limits-dialog-{size}.png")
        await dialog.get_by_test_id("save-limit").click()
        await expect(dialog).to_have_count(0)
        openai = row(page, "openai")
        await expect(openai.get_by_test_id("limit-running")).to_have_text("0 / 2")
        await expect(openai.get_by_test_id("limit-rate")).to_contain_text("10 per 60 s")
        await expect(openai.get_by_test_id("limit-state")).to_have_text("Open")
        stored = await limit(client, "openai")
        assert stored is not None
        assert (stored["max_running"], stored["rate"], stored["paused"]) == (
            2,
            {"count": 10, "per_seconds": 60.0},
            False,
        )

        # The same name again is refused in the dialog, before anything is sent.
        await page.get_by_test_id("new-limit").click()
        await dialog.get_by_label("Name").fill("openai")
        await dialog.get_by_test_id("save-limit").click()
        await expect(dialog.get_by_test_id("limit-error")).to_contain_text("already")
        await dialog.get_by_role("button", name="Cancel").click()

        # Pause and resume, from the row.
        await openai.get_by_test_id("pause-limit").click()
        await expect(openai.get_by_test_id("limit-state")).to_have_text("Paused")
        await expect(openai.get_by_test_id("limit-why")).to_have_text("none may start: paused")
        stored = await limit(client, "openai")
        assert stored is not None
        assert stored["paused"] is True
        assert stored["max_running"] == 2, "pausing keeps the caps"
        await board.screenshot(ARTIFACTS / f"limits-paused-{size}.png", full_page=True)
        await openai.get_by_test_id("resume-limit").click()
        await expect(openai.get_by_test_id("limit-state")).to_have_text("Open")
        await expect(openai.get_by_test_id("pause-limit")).to_be_focused()

        # Edit: no rate any more, a cap of 0 (none start): full at once.
        await openai.get_by_test_id("edit-limit").click()
        await expect(dialog.get_by_label("Max running")).to_have_value("2")
        await expect(dialog.get_by_label("Name")).to_have_attribute("readonly", "")
        await dialog.get_by_label("Max running").fill("0")
        await dialog.get_by_label("Rate: starts").fill("")
        await dialog.get_by_label("per seconds").fill("")
        await dialog.get_by_test_id("save-limit").click()
        await expect(openai.get_by_test_id("limit-running")).to_have_text("0 / 0")
        await expect(openai.get_by_test_id("limit-rate")).to_have_text("no cap")
        await expect(openai.get_by_test_id("limit-state")).to_have_text("Full")
        stored = await limit(client, "openai")
        assert stored is not None
        assert (stored["max_running"], stored["rate"]) == (0, None)

        # A limit made elsewhere shows up with the next look (the view polls).
        made = await client.put("/limits/type:email.send", json={"paused": True})
        assert made.status_code == 200, made.text
        await expect(row(page, "type:email.send").get_by_test_id("limit-state")).to_have_text(
            "Paused"
        )

        # Delete, after a confirmation; Keep it changes nothing.
        await openai.get_by_test_id("delete-limit").click()
        confirm = page.get_by_test_id("confirm-dialog")
        await confirm.get_by_role("button", name="Keep it").click()
        await expect(openai).to_be_visible()
        await openai.get_by_test_id("delete-limit").click()
        await confirm.get_by_role("button", name="Delete limit").click()
        await expect(openai).to_have_count(0)
        assert await limit(client, "openai") is None
        await expect(page.get_by_test_id("limit-row")).to_have_count(1)
        await board.assert_clean()


async def test_an_edit_does_not_undo_a_change_made_while_its_dialog_was_open(
    browser: Browser, server: RunningServer, keys: dict[str, str], client: httpx.AsyncClient
) -> None:
    made = await client.put("/limits/slowapi", json={"max_running": 2})
    assert made.status_code == 200, made.text
    async with dashboard(browser, server) as board:
        page = board.page
        await board.sign_in(keys["admin"])
        await board.nav("Limits").click()
        slowapi = row(page, "slowapi")
        await slowapi.get_by_test_id("edit-limit").click()
        dialog = page.get_by_test_id("limit-dialog")
        await expect(dialog.get_by_label("Max running")).to_have_value("2")
        await expect(dialog.get_by_label("Paused")).not_to_be_checked()

        # Another operator pauses it meanwhile; this one raises its cap.
        paused = await client.put("/limits/slowapi", json={"max_running": 2, "paused": True})
        assert paused.status_code == 200, paused.text
        await dialog.get_by_label("Max running").fill("4")
        await dialog.get_by_test_id("save-limit").click()

        await expect(dialog.get_by_test_id("limit-error")).to_contain_text(
            "Not saved: limit slowapi was changed elsewhere"
        )
        await expect(dialog.get_by_label("Paused"), "the dialog shows it now").to_be_checked()
        await expect(dialog.get_by_label("Max running")).to_have_value("2")
        stored = await limit(client, "slowapi")
        assert stored is not None
        assert (stored["max_running"], stored["paused"]) == (2, True), "the pause stands"

        # Made again over what it is now, the change keeps the pause.
        await dialog.get_by_label("Max running").fill("4")
        await dialog.get_by_test_id("save-limit").click()
        await expect(dialog).to_have_count(0)
        await expect(slowapi.get_by_test_id("limit-running")).to_have_text("0 / 4")
        await expect(slowapi.get_by_test_id("limit-state")).to_have_text("Paused")
        stored = await limit(client, "slowapi")
        assert stored is not None
        assert (stored["max_running"], stored["paused"]) == (4, True)

        # Deleted meanwhile: not created again unasked; saved again, it is.
        await slowapi.get_by_test_id("edit-limit").click()
        assert (await client.delete("/limits/slowapi")).status_code == 204
        await dialog.get_by_label("Max running").fill("6")
        await dialog.get_by_test_id("save-limit").click()
        await expect(dialog.get_by_test_id("limit-error")).to_contain_text(
            "Not saved: limit slowapi was deleted elsewhere"
        )
        assert await limit(client, "slowapi") is None
        await dialog.get_by_test_id("save-limit").click()
        await expect(dialog).to_have_count(0)
        stored = await limit(client, "slowapi")
        assert stored is not None
        assert (stored["max_running"], stored["paused"]) == (6, True), "as the dialog shows"
        # The server's refusals (409, then 404) are logged by the browser: expected here.
        board.problems[:] = [
            p for p in board.problems if "status of 409" not in p and "status of 404" not in p
        ]
        await board.assert_clean()


async def test_a_new_limit_does_not_replace_one_made_while_its_dialog_was_open(
    browser: Browser, server: RunningServer, keys: dict[str, str], client: httpx.AsyncClient
) -> None:
    async with dashboard(browser, server) as board:
        await board.sign_in(keys["admin"])
        dialog = await board.new_limit_dialog("gpu")
        await dialog.get_by_label("Max running").fill("4")
        made = await client.put("/limits/gpu", json={"paused": True})  # another operator
        assert made.status_code == 200, made.text
        await dialog.get_by_test_id("save-limit").click()
        await expect(dialog.get_by_test_id("limit-error")).to_contain_text(
            "Not saved: a limit named gpu was made elsewhere"
        )
        await expect(dialog.get_by_label("Paused"), "shown as it is now").to_be_checked()
        stored = await limit(client, "gpu")
        assert stored is not None
        assert (stored["max_running"], stored["paused"]) == (None, True), "not replaced"
        await dialog.get_by_label("Max running").fill("4")
        await dialog.get_by_test_id("save-limit").click()
        await expect(dialog).to_have_count(0)
        stored = await limit(client, "gpu")
        assert stored is not None
        assert (stored["max_running"], stored["paused"]) == (4, True)
        board.problems[:] = [p for p in board.problems if "status of 409" not in p]
        await board.assert_clean()


async def test_a_limit_named_dot_is_said_to_be_out_of_a_browsers_reach(
    browser: Browser, server: RunningServer, keys: dict[str, str], client: httpx.AsyncClient
) -> None:
    """A browser resolves a path segment `.` or `..`, escaped as `%2E` or not, before it
    sends a request (the URL standard), so the dashboard cannot name such a limit: it says
    so rather than send a request about another path. Clients that keep `%2E` can."""
    made = await client.put("/limits/%2E", json={"max_running": 1})  # httpx keeps the escape
    assert made.status_code == 200, made.text
    assert made.json()["name"] == "."
    async with dashboard(browser, server) as board:
        page = board.page
        await board.sign_in(keys["admin"])
        await board.nav("Limits").click()
        dot = row(page, ".")
        await expect(dot.get_by_test_id("limit-running")).to_have_text("0 / 1")
        await expect(dot.get_by_test_id("limit-unreachable")).to_contain_text(
            "Managed through the API only"
        )
        await expect(dot.get_by_role("button")).to_have_count(0)

        await page.get_by_test_id("new-limit").click()
        dialog = page.get_by_test_id("limit-dialog")
        for name in ("..", "."):
            await dialog.get_by_label("Name").fill(name)
            await dialog.get_by_test_id("save-limit").click()
            await expect(dialog.get_by_test_id("limit-error")).to_contain_text(
                f"Choose another name: the dashboard cannot manage a limit named “{name}”"
            )
            await expect(dialog.get_by_label("Name")).to_have_attribute("aria-invalid", "true")
        await dialog.get_by_role("button", name="Cancel").click()
        assert await limit(client, "%2E%2E") is None, "nothing was created"
        stored = await limit(client, "%2E")
        assert stored is not None
        assert (stored["max_running"], stored["paused"]) == (1, False), "nor changed"
        await board.assert_clean()


async def test_other_keys_see_limits_read_only(
    browser: Browser, server: RunningServer, keys: dict[str, str], client: httpx.AsyncClient
) -> None:
    made = await client.put("/limits/openai", json={"max_running": 4})
    assert made.status_code == 200, made.text
    for role in ("client", "worker"):
        async with dashboard(browser, server) as board:
            page = board.page
            await board.sign_in(keys[role])
            await board.nav("Limits").click()
            await expect(row(page, "openai").get_by_test_id("limit-running")).to_have_text("0 / 4")
            await expect(page.get_by_test_id("limits-read-only")).to_contain_text(
                f"you signed in with a {role} key"
            )
            await expect(page.get_by_test_id("new-limit")).to_have_count(0)
            await expect(page.get_by_test_id("pause-limit")).to_have_count(0)
            await expect(page.get_by_test_id("delete-limit")).to_have_count(0)
            await board.assert_clean()


@SIZES
async def test_a_held_back_job_says_which_limit_it_waits_for(
    browser: Browser,
    server: RunningServer,
    keys: dict[str, str],
    client: httpx.AsyncClient,
    viewport: ViewportSize,
) -> None:
    size = f"{viewport['width']}x{viewport['height']}"
    made = await client.put("/limits/openai", json={"max_running": 1})
    assert made.status_code == 200, made.text
    first = await create(client, "ai.chat", concurrency_key="openai")
    async with as_key(server, keys["worker"]) as http:
        await Worker(http).claim_one(first["id"], "ai.chat")

    async with dashboard(browser, server, viewport=viewport) as board:
        page = board.page
        await board.sign_in(keys["admin"])
        # The second job, from the New job dialog with a concurrency key.
        await board.nav("Jobs").click()
        await page.get_by_test_id("new-job").click()
        dialog = page.get_by_test_id("new-job-dialog")
        await dialog.get_by_label("Type").fill("ai.chat")
        await dialog.get_by_label("Concurrency key (optional)").fill("openai")
        await dialog.get_by_role("button", name="Create job").click()
        await expect(dialog).to_have_count(0)
        listed = await client.get("/jobs", params={"status": "QUEUED"})
        [queued] = listed.json()["data"]
        assert queued["concurrency_key"] == "openai", "the dialog sent the key"
        second = board.job_row(queued["id"])
        await second.click()

        note = page.get_by_test_id("waiting-note")
        await expect(note).to_contain_text("Waiting for limit openai: 1/1 running")
        await expect(page.get_by_test_id("concurrency-key")).to_have_text("openai")
        await board.screenshot(ARTIFACTS / f"job-waiting-{size}.png", full_page=True)

        # Paused elsewhere: the page looks again by itself while the job waits.
        paused = await client.put("/limits/openai", json={"max_running": 1, "paused": True})
        assert paused.status_code == 200, paused.text
        await expect(note).to_contain_text("Waiting for limit openai: paused")
        roomier = await client.put("/limits/openai", json={"max_running": 5})
        assert roomier.status_code == 200, roomier.text
        await expect(note, "room under the limit: nothing holds the job back").to_be_hidden()
        await expect(page.get_by_test_id("job-status")).to_have_text("Queued")

        # The running job waits for nothing.
        await board.go(f"#/jobs/{first['id']}")
        await expect(page.get_by_test_id("job-status")).to_have_text("Running")
        await expect(page.get_by_test_id("waiting-note")).to_be_hidden()
        await board.assert_clean()


@SIZES
async def test_an_instance_admin_picks_a_workspace_and_switches(
    browser: Browser,
    server: RunningServer,
    keys: dict[str, str],
    client: httpx.AsyncClient,
    viewport: ViewportSize,
) -> None:
    size = f"{viewport['width']}x{viewport['height']}"
    here = await create(client, "email.send", payload={"in": "acme"})
    async with httpx.AsyncClient(
        base_url=f"{server.url}/v1/workspaces/other",
        headers={"Authorization": f"Bearer {keys['other']}"},
        timeout=30,
    ) as other:
        there = await create(other, "report.build", payload={"in": "other"})
        assert (await other.put("/limits/gpu", json={"max_running": 3})).status_code == 200

    async with dashboard(browser, server, viewport=viewport) as board:
        page = board.page
        await board.sign_in(keys["instance_admin"])
        picker = page.get_by_test_id("workspace-picker")
        await expect(picker).to_be_visible()
        choices = picker.get_by_test_id("pick-workspace")
        await expect(choices).to_have_count(2)
        await expect(choices).to_have_text(["acme", "other"])
        await assert_fits(board, "the workspace picker")
        for choice in await choices.all():
            await assert_in_reach(board, choice, "a workspace to pick")
        await board.screenshot(ARTIFACTS / f"workspace-picker-{size}.png")
        await picker.locator('[data-slug="other"]').click()

        await expect(page.get_by_test_id("workspace")).to_have_text("other")
        await expect(page.get_by_test_id("role")).to_have_text("instance admin")
        await assert_fits(board, "an instance admin's overview")
        await assert_in_reach(board, page.get_by_test_id("switch-workspace"), "the switch")
        await assert_in_reach(board, page.get_by_test_id("sign-out"), "Sign out")
        await board.nav("Jobs").click()
        await expect(board.job_row(there["id"])).to_be_visible()
        await expect(page.get_by_test_id("job-row")).to_have_count(1)
        await board.nav("Limits").click()
        await expect(row(page, "gpu").get_by_test_id("limit-running")).to_have_text("0 / 3")
        await expect(page.get_by_test_id("new-limit"), "an instance admin manages").to_be_visible()

        # Switch: the workspace's name in the header goes back to the picker.
        await page.get_by_test_id("switch-workspace").click()
        await expect(picker.locator('[data-slug="other"]')).to_have_attribute(
            "aria-current", "true"
        )
        await picker.locator('[data-slug="acme"]').click()
        await expect(page.get_by_test_id("workspace")).to_have_text("acme")
        await board.go("#/jobs")
        await expect(board.job_row(here["id"])).to_be_visible()
        await expect(page.get_by_test_id("job-row")).to_have_count(1)

        # A reload keeps the workspace chosen in this tab.
        await page.reload()
        await expect(page.get_by_test_id("workspace")).to_have_text("acme")
        await expect(page.get_by_test_id("workspace-picker")).to_have_count(0)
        await board.screenshot(ARTIFACTS / f"instance-admin-{size}.png")

        await page.get_by_test_id("sign-out").click()
        await expect(page.get_by_role("heading", name="Sign in to the dashboard")).to_be_visible()
        await board.assert_clean()


async def test_an_instance_worker_key_is_told_it_cannot_open_the_dashboard(
    browser: Browser, server: RunningServer, keys: dict[str, str]
) -> None:
    async with dashboard(browser, server) as board:
        page = board.page
        await page.goto(f"{server.url}/")
        await page.get_by_label("API key").fill(keys["instance_worker"])
        await page.get_by_role("button", name="Sign in").click()
        await expect(page.get_by_test_id("sign-in-message")).to_contain_text(
            "instance worker key cannot open the dashboard"
        )
        session = await page.request.get(f"{server.url}/v1/session")
        assert session.status == 401, "the session it was given is ended"
        # The browser logs the refused GET /v1/workspaces: the one error expected here.
        board.problems[:] = [
            p for p in board.problems if not ("status of 403" in p and "/v1/workspaces" in p)
        ]
        await board.assert_clean()
