"""Readiness: whether this server can take work now, which needs the database to answer
*and* to take writes. A server whose disk is full or whose database turned read-only
answers reads, but every create would fail: a balancer must stop sending it work.

What "takes writes" means is the driver's to say (`Database.check_writable`: the outcome
of the last write, and probes of its own that it runs at most once a second, so that
balancers probing often and many at once cost next to nothing).
"""

from __future__ import annotations

import logging

from conveyor.domain.errors import StorageUnavailable, TransientDatabaseError, Unavailable
from conveyor.store.connection import Database

log = logging.getLogger("conveyor.api")

EXPECTED = (StorageUnavailable, Unavailable, TransientDatabaseError, OSError)
"""What keeps a server from being ready that is the database's condition, not a bug."""


class Readiness:
    def __init__(self, database: Database) -> None:
        self._database = database
        self._outcome: Exception | None = None

    async def check(self) -> Exception | None:
        """None when ready; else what stands in the way. A change is logged once."""
        try:
            await self._database.check_writable()
            outcome: Exception | None = None
        except Exception as error:
            outcome = error
        before, self._outcome = self._outcome, outcome
        if outcome is None:
            if before is not None:
                log.info("ready again: the database takes writes")
        elif before is None or reason(before) != reason(outcome):
            if isinstance(outcome, EXPECTED):
                log.warning("not ready: %s (%s)", reason(outcome), outcome)
            else:
                log.error("not ready: the readiness check failed", exc_info=outcome)
        return outcome


def reason(error: Exception) -> str:
    if isinstance(error, StorageUnavailable):
        return error.reason
    if isinstance(error, TransientDatabaseError):
        return "database busy"
    if isinstance(error, Unavailable | OSError):
        return "database unreachable"
    return "database error"
