"""Every page of the dashboard fits a phone (390 by 844 px), a tablet and a desktop: the
document never scrolls sideways, the header's controls (Sign out above all) are on screen
and clickable, tables stack or scroll inside their card with their buttons in reach, and
event payloads wrap across the width of the log, not a few characters a line."""

from __future__ import annotations

import httpx
import pytest
from playwright.async_api import Browser, Locator, ViewportSize, expect

from tests.support.server import RunningServer
from tests.web.conftest import ARTIFACTS
from tests.web.support import Dashboard, Worker, as_key, create, dashboard

# Layout does not depend on the database: one backend is enough.
pytestmark = pytest.mark.parametrize("backend", ["sqlite"])

PHONE: ViewportSize = {"width": 390, "height": 844}
TABLET: ViewportSize = {"width": 768, "height": 1024}
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
LONG_ERROR = (
    "KeyError: 'to' while rendering template invoices/monthly-summary.html for customer "
    "acme-industries-international (attempt 3 of 3)\nTraceback (most recent call last): …"
)


LONG_LIMIT = "customer:acme-industries-international/eu-west-1/model-gpt-large"


async def make_work(server: RunningServer, keys: dict[str, str], admin: httpx.AsyncClient) -> str:
    """A running job with steps, output, progress and a custom event with a long payload;
    a failed job with a long error; a held job; three workers; limits, one with a long name
    and a rate. Answers the running job's id."""
    for name, limit in (
        (LONG_LIMIT, {"max_running": 8, "rate": {"count": 120, "per_seconds": 60}}),
        ("type:email.digest", {"paused": True}),
    ):
        made = await admin.put(f"/limits/{name}", json=limit)
        assert made.status_code == 200, made.text
    async with as_key(server, keys["worker"]) as http:
        worker = Worker(http, "worker-eu-west-1-a7f3c9")
        job = await create(
            admin,
            "report.build.quarterly",
            payload={
                "customer": "acme-industries-international",
                "period": "2026-Q3",
                "formats": ["pdf", "csv", "xlsx"],
                "recipients": ["finance@example.com", "controlling@example.com"],
            },
            agent_task_id="task-8f2e4c1a-quarterly-close",
        )
        lease = await worker.claim_one(job["id"], "report.build.quarterly")
        await worker.step(
            job["id"], lease, "load the ledger", output="42,118 rows from ledger_2026_q3\n" * 3
        )
        await worker.step(job["id"], lease, "draft summary", kind="AI_ACTION", tokens=(5120, 880))
        for percent in (10, 20, 35):
            await worker.progress(job["id"], lease, percent, "rendering charts for every region")
        await worker.event(
            job["id"],
            lease,
            "ai.tool_called",
            {
                "tool": "warehouse.sql_query",
                "query": "SELECT region, sum(amount) FROM ledger WHERE quarter = '2026-Q3' "
                "GROUP BY region ORDER BY 2 DESC",
                "rows": 1280,
            },
        )
        broken = await create(admin, "email.send", payload={"to": "a@example.com"})
        broken_lease = await worker.claim_one(broken["id"], "email.send")
        await worker.fail(broken["id"], broken_lease, LONG_ERROR)
        await create(admin, "email.send", hold=True)
        await create(admin, "email.digest", concurrency_key=LONG_LIMIT)  # held back: paused
        for name in ("worker-b", "worker-c"):
            await Worker(http, name).claim(types=["nothing.here"])
    return str(job["id"])


# The document's width against the viewport's, and the elements that stick out (the
# innermost few), to say what to fix.
OVERFLOW = """
() => {
  const width = document.documentElement.clientWidth;
  const out = [...document.querySelectorAll('body *')].filter((node) => {
    const box = node.getBoundingClientRect();
    return box.width && box.right > width + 0.5;
  });
  const innermost = out.filter((node) => !out.some((o) => o !== node && node.contains(o)));
  return {
    scroll: document.documentElement.scrollWidth, width,
    culprits: innermost.slice(0, 5).map((n) => `${n.tagName.toLowerCase()}.${n.className}`),
  };
}
"""


async def assert_fits(board: Dashboard, where: str) -> None:
    found = await board.page.evaluate(OVERFLOW)
    assert found["scroll"] <= found["width"], f"{where}: the page scrolls sideways: {found}"


# Brings an element into view as a person would, scrolling up or down; any sideways
# scrolling that takes (of the page, or of a box inside it) means it was out of reach.
REACH = """
(element) => {
  element.scrollIntoView({block: 'center', inline: 'nearest'});
  const box = element.getBoundingClientRect();
  const sideways = [];
  for (let node = element.parentElement; node; node = node.parentElement) {
    if (node.scrollLeft) sideways.push(`${node.tagName.toLowerCase()}.${node.className}`);
  }
  if (window.scrollX) sideways.push('the page');
  const hit = document.elementFromPoint(box.left + box.width / 2, box.top + box.height / 2);
  const label = element.labels && element.labels[0];
  return {
    left: box.left, right: box.right, viewport: document.documentElement.clientWidth, sideways,
    covered: !hit || !(element.contains(hit) || (label && label.contains(hit))),
  };
}
"""


async def assert_in_reach(board: Dashboard, control: Locator, what: str) -> None:
    """Visible, inside the viewport's width without scrolling sideways, not covered by
    anything, and it would take a click."""
    await expect(control, what).to_be_visible()
    reach = await control.evaluate(REACH)
    assert not reach["sideways"], f"{what} is reached only by scrolling sideways: {reach}"
    assert reach["left"] >= 0, f"{what} is off screen: {reach}"
    assert reach["right"] <= reach["viewport"], f"{what} is off screen: {reach}"
    assert not reach["covered"], f"{what} is covered by another element: {reach}"
    await control.click(trial=True)


async def assert_header(board: Dashboard, where: str) -> None:
    await assert_in_reach(board, board.page.get_by_test_id("sign-out"), f"{where}: Sign out")
    for name in ("Overview", "Jobs", "Schedules", "Limits", "API keys", "Settings"):
        await assert_in_reach(board, board.nav(name), f"{where}: the {name} link")


@pytest.mark.parametrize("viewport", [PHONE, TABLET, DESKTOP], ids=["phone", "tablet", "desktop"])
async def test_every_page_fits_the_screen(
    browser: Browser,
    server: RunningServer,
    keys: dict[str, str],
    client: httpx.AsyncClient,
    viewport: ViewportSize,
) -> None:
    running_id = await make_work(server, keys, client)
    size = f"{viewport['width']}x{viewport['height']}"
    shots = ARTIFACTS / "layout"

    async with dashboard(browser, server, viewport=viewport) as board:
        page = board.page
        await page.goto(f"{server.url}/")
        await expect(page.get_by_role("heading", name="Sign in to the dashboard")).to_be_visible()
        await assert_fits(board, "sign-in")
        await assert_in_reach(board, page.get_by_role("button", name="Sign in"), "Sign in")
        await board.screenshot(shots / f"sign-in-{size}.png")
        await board.sign_in(keys["admin"])

        # Overview
        await expect(page.get_by_test_id("workers-table")).to_contain_text("worker-b")
        await assert_fits(board, "overview")
        await assert_header(board, "overview")
        await assert_in_reach(board, page.get_by_test_id("count-FAILED"), "the Failed card")
        await board.screenshot(shots / f"overview-{size}.png", full_page=True)

        # Jobs, then filtered to failures (with the error column)
        await board.go("#/jobs")
        await expect(page.get_by_test_id("job-row")).to_have_count(4)
        await assert_fits(board, "jobs")
        await assert_header(board, "jobs")
        for row in await page.get_by_test_id("job-row").all():
            await assert_in_reach(board, row.locator(".job-link"), "a job's link")
        await assert_in_reach(board, page.get_by_test_id("new-job"), "New job")
        await assert_in_reach(board, page.get_by_label("Rows per page"), "Rows per page")
        await board.screenshot(shots / f"jobs-{size}.png", full_page=True)
        await page.get_by_test_id("filter-FAILED").click()
        await expect(page.get_by_test_id("job-row")).to_have_count(1)
        await expect(page.get_by_test_id("row-error")).to_be_visible()
        await assert_fits(board, "failed jobs")
        await board.screenshot(shots / f"jobs-failed-{size}.png", full_page=True)

        # New-job dialog
        await page.get_by_role("button", name="Clear filters").click()
        await page.get_by_test_id("new-job").click()
        dialog = page.get_by_test_id("new-job-dialog")
        await expect(dialog).to_be_visible()
        await assert_fits(board, "new-job dialog")
        for label in (
            "Type",
            "Priority",
            "Payload (JSON)",
            "Max attempts",
            "Concurrency key (optional)",
            "Hold it",
        ):
            await assert_in_reach(board, dialog.get_by_label(label), f"the dialog's {label}")
        await assert_in_reach(
            board, dialog.get_by_role("button", name="Create job"), "the dialog's Create job"
        )
        await board.screenshot(shots / f"new-job-{size}.png")
        await dialog.get_by_role("button", name="Cancel").click()
        await expect(dialog).to_have_count(0)

        # One job: steps, events, payload
        await board.go(f"#/jobs/{running_id}")
        await expect(page.get_by_test_id("step")).to_have_count(2)
        tool_call = page.locator('[data-testid="event"][data-type="ai.tool_called"]')
        await expect(tool_call).to_be_visible()
        await assert_fits(board, "job")
        await assert_header(board, "job")
        await assert_in_reach(board, page.get_by_test_id("cancel"), "Cancel job")
        await assert_in_reach(board, page.get_by_test_id("show-progress"), "the progress toggle")
        await assert_in_reach(board, page.get_by_test_id("event-type-filter"), "the type filter")
        detail = tool_call.locator(".event-detail")
        log = page.get_by_test_id("event-log")
        detail_box, log_box = await detail.bounding_box(), await log.bounding_box()
        assert detail_box is not None
        assert log_box is not None
        assert detail_box["width"] >= max(200, log_box["width"] * 0.45), (
            f"the payload wraps in a column {detail_box['width']:.0f} px wide "
            f"in a log {log_box['width']:.0f} px wide"
        )
        await board.screenshot(shots / f"job-{size}.png", full_page=True)

        # A failed job: the error
        await board.go("#/jobs?status=FAILED")
        await page.get_by_test_id("job-row").first.click()
        await expect(page.get_by_test_id("job-error")).to_contain_text("KeyError")
        await assert_fits(board, "failed job")
        await board.screenshot(shots / f"job-failed-{size}.png", full_page=True)

        # Limits: every button of every row in reach, and the dialog
        await board.nav("Limits").click()
        await expect(page.get_by_test_id("limit-row")).to_have_count(2)
        await assert_fits(board, "limits")
        await assert_header(board, "limits")
        for action in ("edit-limit", "pause-limit", "resume-limit", "delete-limit"):
            for button in await page.get_by_test_id(action).all():
                await assert_in_reach(board, button, f"a limit's {action}")
        await assert_in_reach(board, page.get_by_test_id("new-limit"), "New limit")
        await board.screenshot(shots / f"limits-{size}.png", full_page=True)
        await page.get_by_test_id("new-limit").click()
        dialog = page.get_by_test_id("limit-dialog")
        await assert_fits(board, "limit dialog")
        for label in ("Name", "Max running", "Rate: starts", "per seconds", "Paused"):
            await assert_in_reach(board, dialog.get_by_label(label), f"the limit dialog's {label}")
        await assert_in_reach(board, dialog.get_by_test_id("save-limit"), "Create limit")
        await dialog.get_by_role("button", name="Cancel").click()
        await expect(dialog).to_have_count(0)

        # A held-back job: why it waits
        await board.go("#/jobs?status=QUEUED")
        await page.get_by_test_id("job-row").first.click()
        await expect(page.get_by_test_id("waiting-note")).to_contain_text(
            "Waiting for limit type:email.digest: paused"
        )
        await assert_fits(board, "a job held back by a limit")

        # Keys: every Revoke in reach
        await board.nav("API keys").click()
        await expect(page.get_by_test_id("key-row")).to_have_count(3)
        await assert_fits(board, "keys")
        await assert_header(board, "keys")
        revokes = page.get_by_test_id("revoke-key")
        await expect(revokes).to_have_count(3)
        for button in await revokes.all():
            await assert_in_reach(board, button, "a Revoke button")
        await assert_in_reach(board, page.get_by_test_id("create-key"), "Create key")
        await board.screenshot(shots / f"keys-{size}.png", full_page=True)
        await page.get_by_test_id("create-key").click()
        await expect(page.get_by_test_id("issued-key")).to_be_visible()
        await assert_fits(board, "keys with a new token")
        await assert_in_reach(board, page.get_by_test_id("copy-token"), "Copy key")
        await board.screenshot(shots / f"keys-token-{size}.png", full_page=True)

        # Settings: each retention's controls and Save in reach
        await board.nav("Settings").click()
        await expect(page.get_by_test_id("retention-row")).to_have_count(3)
        await assert_fits(board, "settings")
        await assert_header(board, "settings")
        for mode in await page.get_by_test_id("retention-mode").all():
            await assert_in_reach(board, mode, "a retention's choice")
        await assert_in_reach(board, page.get_by_test_id("save-retention"), "Save retention")
        await board.screenshot(shots / f"settings-{size}.png", full_page=True)

        # Sign out works from the phone's header.
        await page.get_by_test_id("sign-out").click()
        await expect(page.get_by_role("heading", name="Sign in to the dashboard")).to_be_visible()
        await board.assert_clean()


# Names as long as the server takes them, with nowhere a browser would break a line.
LONG_KEY_NAME = ("integrationkeyforthebillingservice" * 6)[:200]
LONG_TYPE = ("reportbuildquarterly" * 5)[:100]
LONG_LIMIT_NAME = ("customeracmeindustriesinternational" * 6)[:200]
LONG_SCHEDULE = ("nightlyreportforeveryregion" * 4)[:100]
WIDE_DESKTOP: ViewportSize = {"width": 1400, "height": 900}


async def assert_on_screen(board: Dashboard, element: Locator, what: str) -> None:
    """Inside the viewport's width: for what the page's width does not count (a toast is
    fixed to the window, so running past it widens nothing but is cut off)."""
    box = await element.bounding_box()
    width = await board.page.evaluate("document.documentElement.clientWidth")
    assert box is not None
    assert box["x"] >= 0, f"{what} runs off screen to the left: {box}"
    assert box["x"] + box["width"] <= width, f"{what} runs off screen to the right: {box}"


@pytest.mark.parametrize("viewport", [PHONE, WIDE_DESKTOP], ids=["phone", "desktop"])
async def test_long_names_never_widen_the_page(
    browser: Browser,
    server: RunningServer,
    keys: dict[str, str],
    client: httpx.AsyncClient,
    viewport: ViewportSize,
) -> None:
    made = await client.post("/keys", json={"role": "client", "name": LONG_KEY_NAME})
    assert made.status_code == 201, made.text
    job = await create(client, LONG_TYPE)
    made = await client.put(f"/limits/{LONG_LIMIT_NAME}", json={"max_running": 2})
    assert made.status_code == 200, made.text
    made = await client.post(
        "/schedules", json={"name": LONG_SCHEDULE, "cron": "@daily", "job": {"type": LONG_TYPE}}
    )
    assert made.status_code == 201, made.text
    size = f"{viewport['width']}x{viewport['height']}"
    shots = ARTIFACTS / "layout"

    async with dashboard(browser, server, viewport=viewport) as board:
        page = board.page
        await board.sign_in(keys["admin"])
        types = page.get_by_test_id("types-table")
        await expect(types).to_contain_text(LONG_TYPE)
        await assert_fits(board, "the overview, a long job type in Jobs by type")
        card = page.locator("section.card", has=types)
        await assert_on_screen(board, card, "the Jobs by type card")
        await assert_on_screen(board, types.get_by_role("link", name=LONG_TYPE), "the long type")
        await board.screenshot(shots / f"long-names-overview-{size}.png", full_page=True)

        await board.go("#/jobs")
        await expect(board.job_row(job["id"])).to_be_visible()
        await assert_fits(board, "jobs, a long job type")
        await assert_in_reach(board, board.job_row(job["id"]).locator(".job-link"), "its link")
        await board.go(f"#/jobs/{job['id']}")
        await expect(page.get_by_test_id("cancel")).to_be_visible()
        await assert_fits(board, "a job of a long type")

        await board.nav("API keys").click()
        long_key = page.get_by_test_id("key-row").filter(has_text=LONG_KEY_NAME)
        await expect(long_key).to_be_visible()
        await assert_fits(board, "keys, a long key name")
        await assert_in_reach(board, long_key.get_by_test_id("revoke-key"), "its Revoke")
        await assert_in_reach(board, long_key.get_by_test_id("key-state"), "its state")
        await board.screenshot(shots / f"long-names-keys-{size}.png", full_page=True)

        await board.nav("Limits").click()
        long_limit = page.locator(f'[data-testid="limit-row"][data-name="{LONG_LIMIT_NAME}"]')
        await expect(long_limit).to_be_visible()
        await assert_fits(board, "limits, a long limit name")
        await assert_in_reach(board, long_limit.get_by_test_id("pause-limit"), "its Pause")
        await long_limit.get_by_test_id("pause-limit").click()
        toast = page.get_by_test_id("toast").filter(has_text="paused")
        await expect(toast).to_be_visible()
        await assert_on_screen(board, toast, "the toast naming a long limit")
        await assert_fits(board, "limits with the toast")
        await board.screenshot(shots / f"long-names-limits-{size}.png")
        await toast.get_by_role("button", name="Dismiss").click()

        await board.nav("Schedules").click()
        long_schedule = page.locator(f'[data-testid="schedule-row"][data-name="{LONG_SCHEDULE}"]')
        await expect(long_schedule).to_be_visible()
        await assert_fits(board, "schedules, a long name and job type")
        await assert_in_reach(board, long_schedule.get_by_test_id("delete"), "its Delete")
        await long_schedule.locator(".schedule-link").click()
        await expect(page.get_by_role("heading", name=LONG_SCHEDULE)).to_be_visible()
        await assert_fits(board, "a schedule with a long name")
        await board.screenshot(shots / f"long-names-schedule-{size}.png", full_page=True)
        await board.assert_clean()
