"""What a job type may be: one rule for creating jobs, naming a type limit (`type:<type>`),
registering a handler and filtering lists and streams."""

from __future__ import annotations

import re
from typing import Final

_CHARACTERS: Final = "[a-z0-9_.:-]"
JOB_TYPE_MAX_LENGTH: Final = 100
_ONE_TYPE: Final = rf"{_CHARACTERS}{{1,{JOB_TYPE_MAX_LENGTH}}}"
JOB_TYPE_REGEX: Final = rf"^{_ONE_TYPE}$"
"""A job type, as the API's schemas check it: 1..100 of lowercase letters, digits,
`_ . : -`."""
JOB_TYPE_PATTERN: Final = re.compile(rf"{_ONE_TYPE}\Z")
"""The same, for Python (`$` would let a trailing line break through)."""
JOB_TYPE_RULE: Final = f"must be 1..{JOB_TYPE_MAX_LENGTH} characters of {_CHARACTERS}"
"""What a refusal says."""
