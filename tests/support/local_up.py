"""`hyenaflow local up` as a user runs it: a process in its own terminal session, whose printed
`export` lines and example commands are what the user copies.

    with LocalUp.start(tmp_path / "local") as stack:
        stack.exports                   # {"AWS_ENDPOINT_URL": ..., ...} parsed from its stdout
        stack.example_commands("aws ")  # the `aws ...` lines it printed, as argument lists
        stack.run(["aws", "sagemaker", "list-training-jobs"])  # with exactly those exports
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from hyenaflow.cli import READY_LINE
from hyenaflow.local.pipeline import REPO_ROOT
from tests.support.polling import wait_for

# The venv's console scripts (`hyenaflow`, `aws`): a user has them on PATH once the venv is active.
VENV_BIN = Path(sys.executable).parent
STARTUP_DEADLINE_S = 120.0


def _user_environment() -> dict[str, str]:
    """This process's environment without AWS settings: only what `local up` prints may point
    the clients at the stack (a stray AWS_PROFILE or region must not make a test pass)."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    env["PATH"] = os.pathsep.join([str(VENV_BIN), env.get("PATH", "")])
    env["PYTHONUNBUFFERED"] = "1"
    # A config file or credentials file of this machine must not leak in either.
    env["AWS_CONFIG_FILE"] = os.devnull
    env["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    return env


class LocalUp:
    """A running `hyenaflow local up` subprocess and what it printed."""

    def __init__(self, process: subprocess.Popen[str], workdir: Path) -> None:
        self.process = process
        self.workdir = workdir
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, name="local-up-stdout", daemon=True)
        self._reader.start()

    @classmethod
    def start(cls, workdir: Path, environment: dict[str, str] | None = None) -> LocalUp:
        """Start `hyenaflow local up --port 0` in a new session (as a terminal runs a foreground
        job: Ctrl-C reaches its process group), and wait until it has printed its instructions."""
        process = subprocess.Popen(
            [str(VENV_BIN / "hyenaflow"), "local", "up", "--port", "0", "--workdir", str(workdir)],
            cwd=REPO_ROOT,  # the printed `aws s3 cp data/...` is relative to the repository
            env={**_user_environment(), **(environment or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        stack = cls(process, workdir)
        try:
            wait_for(
                lambda: (
                    any(line.startswith(READY_LINE) for line in stack.lines) or process.poll() is not None
                ),
                "`hyenaflow local up` to print its instructions",
                STARTUP_DEADLINE_S,
            )
        except BaseException:
            stack.stop(signal.SIGKILL)
            raise
        assert process.poll() is None, "local up exited:\n" + stack.output
        return stack

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    @property
    def exports(self) -> dict[str, str]:
        """The `export NAME=VALUE` lines it printed, as a shell would set them."""
        exports: dict[str, str] = {}
        for line in self.lines:
            if line.startswith("export "):
                (assignment,) = shlex.split(line[len("export ") :], comments=True)
                name, _, value = assignment.partition("=")
                exports[name] = value
        return exports

    def example_commands(self, prefix: str) -> list[list[str]]:
        """The example command lines it printed that start with `prefix`, split as a shell would."""
        return [shlex.split(line, comments=True) for line in self.lines if line.startswith(prefix)]

    def client_environment(self) -> dict[str, str]:
        """A fresh shell after pasting the printed exports."""
        return {**_user_environment(), **self.exports}

    def run(
        self, command: list[str], cwd: Path = REPO_ROOT, timeout_s: float = 120.0
    ) -> subprocess.CompletedProcess[str]:
        """Run a client command (aws, hyenaflow ...) with the printed exports (by default in the
        repository, where the printed `data/...` paths point)."""
        return subprocess.run(
            command,
            cwd=cwd,
            env=self.client_environment(),
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )

    def stop(self, stop_signal: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, stop_signal)
            except ProcessLookupError:
                pass
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self._reader.join(10)

    def __enter__(self) -> LocalUp:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
