"""Processes and ports the local stack started: whether they have ended, and which are free."""

from __future__ import annotations

import os
import socket


def process_gone(pid: int) -> bool:
    """True once `pid` has exited. A killed child stays a zombie until reaped; /proc tells a
    zombie from a running process."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(")")[-1].split()[0] == "Z"


def descendants(pid: int) -> set[int]:
    """Every live process below `pid` (children, grandchildren ...), from /proc. Taken while the
    parent runs: once it exits, its orphans are re-parented and no longer trace back to it."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                parents[int(entry)] = int(stat.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # ended while we looked
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def listening_ports(pids: set[int]) -> set[int]:
    """TCP ports on which any of `pids` holds a listening socket (/proc/<pid>/fd + /proc/net/tcp*)."""
    inodes: set[str] = set()
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    ports: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as lines:
            next(lines)
            for line in lines:
                fields = line.split()
                local_address, state, inode = fields[1], fields[3], fields[9]
                if state == "0A" and inode in inodes:  # 0A: TCP_LISTEN
                    ports.add(int(local_address.rsplit(":", 1)[1], 16))
    return ports


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a new server could listen on `port` now (SO_REUSEADDR, as servers set it, so
    connections left in TIME_WAIT do not count; a socket still listening does)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
            probe.listen()
        except OSError:
            return False
    return True
