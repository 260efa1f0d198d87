"""`conveyor workspace set NAME --weight N`, and the weight in `workspace show` and
`workspace list`, run as a user runs them, on both databases."""

from __future__ import annotations

from conveyor.domain.capacity import WEIGHT_MAX, WEIGHT_MIN
from conveyor.domain.workspaces import Workspace
from conveyor.service.workspaces import WorkspaceService
from conveyor.store import Store
from conveyor.store.urls import DatabaseURL
from tests.cli.helpers import conveyor


def rows(out: str) -> dict[str, list[str]]:
    """A table's rows by their first cell."""
    return {parts[0]: parts[1:] for line in out.splitlines() if (parts := line.split())}


async def test_the_weight_is_set_shown_and_listed(
    database_url: DatabaseURL, store: Store, workspace: Workspace
) -> None:
    url = ("--database-url", database_url.url)
    await WorkspaceService(store).create_workspace("other")
    ran = await conveyor("workspace", "show", "acme", *url)
    assert ran.code == 0, ran.output
    assert rows(ran.out)["weight"] == ["1", "workspace"]

    ran = await conveyor("workspace", "set", "acme", "--weight", "3", *url)
    assert ran.code == 0, ran.output
    assert rows(ran.out)["weight"] == ["3", "workspace"]
    assert rows(ran.out)["retention.failed_days"] == ["30", "instance"], "not named: kept"

    ran = await conveyor(
        "workspace", "set", "acme", "--weight", str(WEIGHT_MAX), "--failed-days", "9", *url
    )
    assert ran.code == 0, ran.output
    assert rows(ran.out)["weight"] == [str(WEIGHT_MAX), "workspace"]
    assert rows(ran.out)["retention.failed_days"] == ["9", "workspace"]

    ran = await conveyor("workspace", "list", *url)
    assert ran.code == 0, ran.output
    listed = rows(ran.out)
    assert listed["NAME"][:3] == ["ID", "WEIGHT", "CREATED"]
    assert listed["acme"][1] == str(WEIGHT_MAX)
    assert listed["other"][1] == "1"
    [acme] = [found for found in await store.workspaces.list_workspaces() if found.slug == "acme"]
    assert acme.weight == WEIGHT_MAX, "stored where claims read it"


async def test_a_weight_out_of_bounds_is_a_usage_error_and_changes_nothing(
    database_url: DatabaseURL, workspace: Workspace
) -> None:
    url = ("--database-url", database_url.url)
    for wrong in ("0", str(WEIGHT_MAX + 1), "-2", "2.5", "heavy"):
        ran = await conveyor(
            "workspace", "set", "acme", "--weight", wrong, "--failed-days", "9", *url
        )
        assert ran.code == 2, (wrong, ran.output)
        assert "--weight" in ran.err, ran.err
    ran = await conveyor("workspace", "show", "acme", *url)
    assert rows(ran.out)["weight"] == ["1", "workspace"]
    assert rows(ran.out)["retention.failed_days"] == ["30", "instance"]
    # The control: within the bounds, the same command goes through.
    ran = await conveyor("workspace", "set", "acme", "--weight", str(WEIGHT_MIN + 1), *url)
    assert ran.code == 0, ran.output
