"""The dashboard checks what the server's rules check, with the same patterns: a form says
what is wrong before it asks, and never refuses what the server would take."""

from __future__ import annotations

from pathlib import Path

import conveyor.web
from conveyor.domain.capacity import WEIGHT_MAX, WEIGHT_MIN
from conveyor.domain.job_types import JOB_TYPE_MAX_LENGTH, JOB_TYPE_REGEX
from conveyor.domain.schedules import SCHEDULE_NAME_PATTERN

SCRIPTS = Path(conveyor.web.__file__).parent / "static" / "js"


def test_the_dashboard_checks_job_types_by_the_servers_rule() -> None:
    rules = (SCRIPTS / "format.js").read_text()
    assert f"export const JOB_TYPE = /{JOB_TYPE_REGEX}/;" in rules
    assert f"'must be 1 to {JOB_TYPE_MAX_LENGTH} characters of a-z, 0-9, _ . : -'" in rules
    for script in SCRIPTS.rglob("*.js"):
        if script.name != "format.js":
            text = script.read_text()
            again = f"{script.name} spells the job type rule again: import it from format.js"
            assert "a-z0-9_.:-" not in text, again
            assert "_ . : -" not in text, again


def test_the_dashboard_checks_schedule_names_by_the_servers_rule() -> None:
    rule = SCHEDULE_NAME_PATTERN.pattern.removesuffix(r"\Z")
    schedules = (SCRIPTS / "views" / "schedules.js").read_text()
    assert f"const NAME_PATTERN = /^{rule}$/;" in schedules


def test_the_dashboard_says_the_servers_weight_range() -> None:
    settings = (SCRIPTS / "views" / "settings.js").read_text()
    assert f"const WEIGHT_MIN = {WEIGHT_MIN};" in settings
    assert f"const WEIGHT_MAX = {WEIGHT_MAX};" in settings
