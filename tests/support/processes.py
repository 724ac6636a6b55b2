"""Whether a process the local stack started has ended."""

from __future__ import annotations

import os


def process_gone(pid: int) -> bool:
    """True once `pid` has exited. A killed child stays a zombie until reaped; /proc tells a
    zombie from a running process."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(")")[-1].split()[0] == "Z"
