"""The README's worked example, run as written: the server with in-process workers and
command jobs, the README's own shell lines for the CLI (through bash, `conveyor` being the
installed command), and a remote worker loading the README's own handler module with the
key file the README makes."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import signal
import stat
from pathlib import Path

from tests.cli.helpers import COMMAND
from tests.support.postgres import free_port
from tests.support.processes import REPO

README = REPO / "README.md"
README_URL = "http://127.0.0.1:8080"


def readme_handler_module() -> str:
    text = README.read_text()
    match = re.search(r"```python\n(# myjobs\.py\n.*?)```", text, re.DOTALL)
    assert match, "the README's myjobs.py example is gone"
    return match.group(1)


def readme_shell_lines(containing: str) -> list[str]:
    """The lines of the README's ```sh block that contains `containing`."""
    blocks = re.findall(r"```sh\n(.*?)```", README.read_text(), re.DOTALL)
    block = next((block for block in blocks if containing in block), None)
    assert block is not None, f"the README's sh block with {containing!r} is gone"
    return [line for line in block.splitlines() if line.strip()]


def as_script(*lines: str, url: str) -> str:
    """The README's lines for bash: `conveyor` is the installed command, and the server is
    the test's (on a free port, not 8080)."""
    prelude = f'set -euo pipefail\nconveyor() {{ {shlex.join(COMMAND)} "$@"; }}\n'
    return prelude + "\n".join(line.replace(README_URL, url) for line in lines) + "\n"


async def bash(script: str, *, cwd: Path, env: dict[str, str]) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        "bash",
        "-c",
        script,
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
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
    for name in ("CONVEYOR_API_KEY", "CONVEYOR_API_KEY_FILE", "CONVEYOR_WORKSPACE"):
        env.pop(name, None)
    server = await asyncio.create_subprocess_exec(
        *COMMAND,
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
                code, _ = await bash(
                    as_script("conveyor jobs list", url=url), cwd=tmp_path, env=env
                )
                if code == 0:
                    break
            await asyncio.sleep(0.1)

        alias, *worked_example = readme_shell_lines("alias conveyor=")
        assert alias == "alias conveyor=.venv/bin/conveyor"
        code, out = await bash(as_script(*worked_example, url=url), cwd=tmp_path, env=env)
        assert code == 0, out
        assert "building" in out, "the command job's output, in `jobs show`"
        assert '"exit_code": 0' in out
        assert "demo.sleep" in out
        assert "throughput" in out, "`conveyor status`"

        (tmp_path / "myjobs.py").write_text(readme_handler_module())
        make_key, run_worker, create_job = readme_shell_lines("--handlers myjobs:handlers")
        code, out = await bash(as_script(make_key, url=url), cwd=tmp_path, env=env)
        assert code == 0, out
        key_file = tmp_path / "worker.key"
        assert key_file.read_text().startswith("cvk_")
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert "--key-file worker.key" in run_worker
        worker = await asyncio.create_subprocess_exec(
            "bash",
            "-c",
            as_script(run_worker, url=url),
            cwd=tmp_path,
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,
        )
        code, out = await bash(as_script(create_job, url=url), cwd=tmp_path, env=env)
        assert code == 0, out
        email_job = re.search(r"created job (\S+)", out)
        assert email_job, out
        show = f"conveyor jobs show {email_job.group(1)} --json"
        code, out = await bash(as_script(show, url=url), cwd=tmp_path, env=env)
        shown = json.loads(out)
        assert shown["result"] == {"sent_to": "ada@example.com"}
        assert shown["worker_id"] != ""
        assert "in-process" not in shown["worker_id"], "run by the remote worker"
    finally:
        if worker is not None and worker.returncode is None:
            os.killpg(worker.pid, signal.SIGTERM)  # bash and the worker it started
            try:
                await asyncio.wait_for(worker.wait(), 20)
            except TimeoutError:
                os.killpg(worker.pid, signal.SIGKILL)
        if server.returncode is None:
            server.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(server.wait(), 20)
            except TimeoutError:
                server.kill()
