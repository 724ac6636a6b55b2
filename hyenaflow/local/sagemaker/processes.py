"""The subprocesses the emulation starts (training scripts, inference servers): starting them,
and ending them, one at a time (StopTrainingJob, DeleteEndpoint) or all at once (the stack stops).

Each runs in its own session (`start_new_session=True`), so signalling its process group ends
the children it started too (DataLoader workers, torchrun ranks), and a Ctrl-C meant for
`hyenaflow local up` does not reach them before the stack has decided how to stop them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterable
from typing import Any

# A stopping stack gives its children this long to exit on SIGTERM before SIGKILL: `local up`
# must be gone within 3 s of Ctrl-C, and nothing a child could still save is worth more (a
# training job keeps what it checkpointed; an inference server holds no state).
STOP_GRACE_S = 1.0


class StackStopping(Exception):
    """The local stack is shutting down: no new training script or inference server starts."""


def terminate_process_groups(processes: Iterable[subprocess.Popen[Any] | None], timeout_s: float) -> None:
    """SIGTERM every process group at once, give them `timeout_s` together (a stack with several
    children stops in `timeout_s`, not in their sum), then SIGKILL whatever is left of each group
    (a leader that exited may leave workers behind) and reap the leaders."""
    running = [process for process in processes if process is not None and process.poll() is None]
    for process in running:
        _signal_group(process, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    for process in running:
        try:
            process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    for process in running:
        _signal_group(process, signal.SIGKILL)
    for process in running:
        try:
            process.wait(5)  # at once after SIGKILL, unless the kernel holds it (a hung disk)
        except subprocess.TimeoutExpired:
            pass


def terminate_process_group(process: subprocess.Popen[Any] | None, timeout_s: float) -> None:
    """SIGTERM the process group, SIGKILL what is left of it after `timeout_s`."""
    terminate_process_groups([process], timeout_s)


def _signal_group(process: subprocess.Popen[Any], signum: int) -> None:
    try:
        os.killpg(process.pid, signum)
    except ProcessLookupError:
        pass  # ended (and its group with it) since we looked


class ChildProcesses:
    """Every subprocess one server started and has not yet seen end, so that `stop_all()` ends
    each of them, including one starting at that very moment: a start either happens before
    `stop_all()` takes the list, or is refused with StackStopping."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: set[subprocess.Popen[Any]] = set()
        self._stopping = False

    def start(self, command: list[str], **popen_kwargs: Any) -> subprocess.Popen[Any]:
        """`subprocess.Popen(command, ...)` in a session of its own, recorded until it ends."""
        with self._lock:
            if self._stopping:
                raise StackStopping(f"the local stack is shutting down; not starting {' '.join(command[:2])}")
            process = subprocess.Popen(command, start_new_session=True, **popen_kwargs)
            self._running = {p for p in self._running if p.poll() is None} | {process}
        return process

    def stop_all(self, timeout_s: float = STOP_GRACE_S) -> None:
        """Refuse new starts, then end every recorded process group within `timeout_s`."""
        with self._lock:
            self._stopping = True
            running, self._running = list(self._running), set()
        terminate_process_groups(running, timeout_s)
