"""The README's worked example, run as written: the server with in-process workers and
command jobs, the CLI, and a remote worker loading the README's own handler module."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
from pathlib import Path

from tests.support.postgres import free_port
from tests.support.processes import REPO

README = REPO / "README.md"


def readme_handler_module() -> str:
    text = README.read_text()
    match = re.search(r"```python\n(# myjobs\.py\n.*?)```", text, re.DOTALL)
    assert match, "the README's myjobs.py example is gone"
    return match.group(1)


async def run(*args: str, cwd: Path, env: dict[str, str]) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        *args, cwd=cwd, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, output.decode()


async def test_the_worked_example_runs_as_the_readme_says(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "CONVEYOR_URL": url,
        "CONVEYOR_LOG_FORMAT": "text",
        "CONVEYOR_SQLITE_SYNCHRONOUS": "NORMAL",
        "COLUMNS": "200",
    }
    env.pop("CONVEYOR_API_KEY", None)
    conveyor = (sys.executable, "-m", "conveyor.cli.main")
    server = await asyncio.create_subprocess_exec(
        *conveyor,
        "serve",
        "--port",
        str(port),
        "--migrate",
        "--workers",
        "4",
        "--handlers",
        "conveyor.worker.examples:handlers",
        "--allow-command-jobs",
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    worker: asyncio.subprocess.Process | None = None
    try:
        for _ in range(100):
            if (tmp_path / "conveyor-admin.key").exists():
                code, _ = await run(*conveyor, "jobs", "list", cwd=tmp_path, env=env)
                if code == 0:
                    break
            await asyncio.sleep(0.1)
        code, out = await run(
            *conveyor,
            "jobs",
            "create",
            "--type",
            "command",
            "--payload",
            '{"argv": ["sh", "-c", "echo building; sleep 1; echo done"]}',
            "--json",
            cwd=tmp_path,
            env=env,
        )
        assert code == 0, out
        command_job = json.loads(out)["id"]
        code, out = await run(
            *conveyor,
            "jobs",
            "create",
            "--type",
            "demo.sleep",
            "--payload",
            '{"seconds": 1}',
            "--json",
            cwd=tmp_path,
            env=env,
        )
        sleep_job = json.loads(out)["id"]
        code, out = await run(*conveyor, "jobs", "watch", sleep_job, cwd=tmp_path, env=env)
        assert code == 0, out
        assert "COMPLETED" in out
        code, out = await run(*conveyor, "jobs", "watch", command_job, cwd=tmp_path, env=env)
        assert code == 0, out
        code, out = await run(*conveyor, "jobs", "show", command_job, cwd=tmp_path, env=env)
        assert '"exit_code": 0' in out
        assert "building" in out

        (tmp_path / "myjobs.py").write_text(readme_handler_module())
        code, out = await run(
            *conveyor,
            "key",
            "create",
            "--workspace",
            "default",
            "--role",
            "worker",
            cwd=tmp_path,
            env=env,
        )
        assert code == 0, out
        worker_key = out.strip().splitlines()[-1]
        worker = await asyncio.create_subprocess_exec(
            *conveyor,
            "worker",
            "--url",
            url,
            "--key",
            worker_key,
            "--handlers",
            "myjobs:handlers",
            "--concurrency",
            "8",
            cwd=tmp_path,
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        code, out = await run(
            *conveyor,
            "jobs",
            "create",
            "--type",
            "email.send",
            "--payload",
            '{"to": "ada@example.com"}',
            "--json",
            cwd=tmp_path,
            env=env,
        )
        email_job = json.loads(out)["id"]
        code, out = await run(*conveyor, "jobs", "watch", email_job, cwd=tmp_path, env=env)
        assert code == 0, out
        code, out = await run(*conveyor, "jobs", "show", email_job, "--json", cwd=tmp_path, env=env)
        shown = json.loads(out)
        assert shown["result"] == {"sent_to": "ada@example.com"}
        assert shown["worker_id"] != ""
        assert "in-process" not in shown["worker_id"], "run by the remote worker"
        code, out = await run(*conveyor, "status", cwd=tmp_path, env=env)
        assert code == 0, out
    finally:
        for process in (worker, server):
            if process is not None and process.returncode is None:
                process.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(process.wait(), 20)
                except TimeoutError:
                    process.kill()
