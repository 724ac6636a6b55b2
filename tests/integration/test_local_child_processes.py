"""The subprocesses of the SageMaker emulation end together when the stack stops: SIGTERM, a grace
period shared by all of them, then SIGKILL for whatever is left of each process group, workers
included."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from hyenaflow.local.sagemaker.processes import ChildProcesses, StackStopping
from tests.support.polling import wait_for
from tests.support.processes import process_gone

# Ignores SIGTERM and starts a worker that ignores it too (a stubborn training script).
STUBBORN = textwrap.dedent(
    """
    import signal, subprocess, sys, time
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    worker = subprocess.Popen([sys.executable, "-c", "import signal, time; "
        "signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"])
    print(worker.pid, flush=True)
    time.sleep(600)
    """
)


def _start(children: ChildProcesses, script: str) -> subprocess.Popen[str]:
    return children.start([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)


def test_stop_all_ends_children_that_ignore_sigterm_and_their_workers_then_refuses_new_starts() -> None:
    children = ChildProcesses()
    stubborn = [_start(children, STUBBORN) for _ in range(2)]
    workers = [int(process.stdout.readline()) for process in stubborn]
    polite = _start(children, "import time; time.sleep(600)")

    children.stop_all(timeout_s=0.5)

    # every leader and every worker they started is gone
    for pid in [p.pid for p in [*stubborn, polite]] + workers:
        wait_for(lambda pid=pid: process_gone(pid), f"process {pid} to end", 10)
    # and nothing starts any more (a deployment that was about to start its server)
    with pytest.raises(StackStopping):
        _start(children, "print('too late')")
