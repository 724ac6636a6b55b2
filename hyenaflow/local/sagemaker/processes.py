"""Ending the subprocesses the emulation starts (training scripts, inference servers).

Each runs in its own session (`start_new_session=True`), so signalling its process group ends
the children it started too (DataLoader workers, torchrun ranks).
"""

from __future__ import annotations

import os
import signal
import subprocess


def terminate_process_group(process: subprocess.Popen[bytes] | None, timeout_s: float) -> None:
    """SIGTERM the process group, SIGKILL it if it has not ended within `timeout_s`."""
    if process is None or process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)
    except ProcessLookupError:
        pass
