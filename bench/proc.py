"""CPU time and memory of a whole process tree, read from /proc (gunicorn forks its workers)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

_TICKS_PER_S = os.sysconf("SC_CLK_TCK")
_PROC = Path("/proc")


@dataclass(frozen=True)
class Stat:
    """The fields of /proc/<pid>/stat that we use."""

    pid: int
    ppid: int
    cpu_ticks: int  # utime + stime + cutime + cstime: itself and its reaped children


def read_stat(pid: int) -> Stat | None:
    """Read one process's stat line; None when it has gone."""
    try:
        line = (_PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name is in parentheses and may hold spaces: split after the last ')'.
    fields = line.rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(value) for value in fields[11:15])
    return Stat(pid, int(fields[1]), utime + stime + cutime + cstime)


def tree_pids(root: int) -> list[int]:
    """The root and every descendant alive now, root first."""
    children: dict[int, list[int]] = {}
    for entry in _PROC.iterdir():
        if entry.name.isdigit() and (stat := read_stat(int(entry.name))):
            children.setdefault(stat.ppid, []).append(stat.pid)
    pids, queue = [], [root]
    while queue:
        pid = queue.pop(0)
        pids.append(pid)
        queue.extend(sorted(children.get(pid, [])))
    return pids


def tree_cpu_seconds(root: int) -> float:
    """User plus system CPU seconds used so far by the tree under `root`."""
    stats = (read_stat(pid) for pid in tree_pids(root))
    return sum(stat.cpu_ticks for stat in stats if stat) / _TICKS_PER_S


def rss_bytes(pid: int) -> int:
    """Resident memory of one process (VmRSS); 0 when it has gone."""
    try:
        status = (_PROC / str(pid) / "status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return 0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def tree_rss_bytes(root: int) -> int:
    """Resident memory of the whole tree (shared pages counted in each process, as ps does)."""
    return sum(rss_bytes(pid) for pid in tree_pids(root))
