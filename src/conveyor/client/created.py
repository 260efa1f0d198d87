"""What a call that creates a job answers: the job, and whether this call made it.

A create (or a schedule's trigger) with an idempotency key seen before does not make a
second job: the server answers the job the first call made, with 200 instead of 201. The
SDK answers both as the job's JSON; `CreatedJob.created` keeps the difference, which the
status code alone carries."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx


class CreatedJob(dict[str, Any]):
    """A job as the API answers it (a dict, so code that reads it as one is unchanged), and
    `created`: True when this call made it, False when its idempotency key had been used
    before and this is the job that earlier call made."""

    __slots__ = ("created",)

    def __init__(self, job: Mapping[str, Any], *, created: bool) -> None:
        super().__init__(job)
        self.created = created

    def __repr__(self) -> str:
        return f"CreatedJob({dict.__repr__(self)}, created={self.created})"


def created_job(response: httpx.Response) -> CreatedJob:
    """A create's answer: 201, a job made now; 200, the one its idempotency key made
    before."""
    return CreatedJob(response.json(), created=response.status_code == httpx.codes.CREATED)


def created_jobs(answer: Mapping[str, Any]) -> list[CreatedJob]:
    """A batch create's answer (`data`, and `created` for each job in the same order)."""
    return [
        CreatedJob(job, created=bool(made))
        for job, made in zip(answer["data"], answer["created"], strict=True)
    ]
