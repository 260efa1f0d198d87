"""The `conveyor` command (`conveyor.cli.main:main`): run the server and workers,
administer the database, and drive jobs over HTTP. Each command group lives in its own
module; this one only puts them together."""

from __future__ import annotations

import click

from conveyor.cli.jobs import jobs
from conveyor.cli.keys import key
from conveyor.cli.limits import limits
from conveyor.cli.prune import prune
from conveyor.cli.schedules import schedules
from conveyor.cli.server import migrate, serve
from conveyor.cli.status import status
from conveyor.cli.worker import worker
from conveyor.cli.workspaces import workspace


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="conveyor")
def main() -> None:
    """Conveyor: a durable, concurrency-safe job runner."""


for command in (serve, migrate, workspace, key, jobs, schedules, limits, status, worker, prune):
    main.add_command(command)


if __name__ == "__main__":
    main()
