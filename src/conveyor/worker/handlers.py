"""Job handlers, registered by job type.

    handlers = Handlers()

    @handlers.job("email.send")
    async def send_email(job: JobContext) -> dict:
        await job.progress(50, "rendered")
        return {"sent": True}

    @handlers.job("report.build", timeout=600)
    def build_report(job: SyncJobContext) -> dict:   # plain functions run on a thread
        job.progress(10)
        ...

Raise `Fail("why", retryable=False)` to fail for good; any other exception fails the
attempt, which is retried while the job has attempts left.

`timeout` (seconds) is the handler's default for jobs created without `timeout_seconds`
(a job's own wins). Past it, an async handler is cancelled; a plain function cannot be
stopped, so its job is failed at once and what it returns later is ignored (its thread
stays taken, and counts against the worker's slots, until it returns). Either way the
attempt fails as timed out, and is retried while the job has attempts left.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from conveyor.domain.job_types import JOB_TYPE_PATTERN, JOB_TYPE_RULE
from conveyor.domain.jobs import TIMEOUT_LIMIT_SECONDS

if TYPE_CHECKING:
    pass

F = TypeVar("F", bound=Callable[..., Any])


class Fail(Exception):
    """Raised by a handler to fail its job with a message; `retryable=False` fails it for
    good even when attempts are left."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable


@dataclass(frozen=True, slots=True)
class Handler:
    job_type: str
    function: Callable[..., Any]
    timeout: float | None = None
    """Seconds one attempt may run when its job sets no timeout of its own."""
    is_async: bool = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "is_async", inspect.iscoroutinefunction(self.function))


class Handlers:
    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}

    def job(self, job_type: str, *, timeout: float | None = None) -> Callable[[F], F]:
        """Register the decorated function as the handler of `job_type`; `timeout`, in
        seconds, bounds each attempt of a job that sets no timeout of its own."""

        def register(function: F) -> F:
            self.add(job_type, function, timeout=timeout)
            return function

        return register

    def add(
        self, job_type: str, function: Callable[..., Any], *, timeout: float | None = None
    ) -> None:
        if not JOB_TYPE_PATTERN.match(job_type):
            raise ValueError(f"job type {job_type!r} {JOB_TYPE_RULE}")
        if job_type in self._handlers:
            raise ValueError(f"a handler for {job_type!r} is already registered")
        if timeout is not None and not 0 < timeout <= TIMEOUT_LIMIT_SECONDS:
            raise ValueError(f"the timeout of {job_type!r} must be more than 0 and at most 7 days")
        self._handlers[job_type] = Handler(job_type, function, timeout)

    def merge(self, other: Handlers) -> None:
        for handler in other:
            self.add(handler.job_type, handler.function, timeout=handler.timeout)

    def get(self, job_type: str) -> Handler | None:
        return self._handlers.get(job_type)

    @property
    def types(self) -> list[str]:
        return sorted(self._handlers)

    def __iter__(self) -> Iterator[Handler]:
        return iter(self._handlers.values())

    def __len__(self) -> int:
        return len(self._handlers)


def load_handlers(reference: str) -> Handlers:
    """`package.module:name`, naming a `Handlers` object (or a function returning one)."""
    module_name, _, attribute = reference.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"--handlers takes module:object, not {reference!r}")
    module = importlib.import_module(module_name)
    found = getattr(module, attribute, None)
    if callable(found) and not isinstance(found, Handlers):
        found = found()
    if not isinstance(found, Handlers):
        raise ValueError(f"{reference} is not a conveyor.worker.Handlers object")
    return found
