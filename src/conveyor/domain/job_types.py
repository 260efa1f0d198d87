"""What a job type may be: one rule for creating jobs, naming a type limit (`type:<type>`),
registering a handler and filtering lists and streams."""

from __future__ import annotations

import re
from typing import Final

_CHARACTERS: Final = "[a-z0-9_.:-]"
JOB_TYPE_MAX_LENGTH: Final = 100
JOB_TYPE_CHARACTERS: Final = rf"{_CHARACTERS}{{1,{JOB_TYPE_MAX_LENGTH}}}"
"""A job type, as a pattern: 1..100 of lowercase letters, digits, `_ . : -`."""
JOB_TYPE_PATTERN: Final = re.compile(rf"{JOB_TYPE_CHARACTERS}\Z")
JOB_TYPE_RULE: Final = f"must be 1..{JOB_TYPE_MAX_LENGTH} characters of {_CHARACTERS}"
"""What a refusal says."""
