"""The worker SDK: register handlers by job type and run them, in the server's process or
remotely over HTTP.

    from conveyor.worker import Handlers, JobContext

    handlers = Handlers()

    @handlers.job("email.send")
    async def send_email(job: JobContext) -> dict:
        await job.progress(50)
        return {"sent": True}

Run them with `conveyor worker --url … --key … --handlers module:handlers`, or inside the
server with `conveyor serve --workers 4 --handlers module:handlers`.
"""

from conveyor.worker.backend import BackendUnavailable, LeaseGone, WorkerBackend
from conveyor.worker.context import JobContext, StepHandle, SyncJobContext
from conveyor.worker.handlers import Fail, Handlers, load_handlers
from conveyor.worker.options import WorkerOptions
from conveyor.worker.runner import Worker

__all__ = [
    "BackendUnavailable",
    "Fail",
    "Handlers",
    "JobContext",
    "LeaseGone",
    "StepHandle",
    "SyncJobContext",
    "Worker",
    "WorkerBackend",
    "WorkerOptions",
    "load_handlers",
]
