"""CPU accounting for the runs: the whole machine's busy time, and a process tree's."""

from __future__ import annotations

import os
from pathlib import Path

from stack import Proc, cpu_seconds


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent not idle, from /proc/stat."""
    parts = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = parts[3] + (parts[4] if len(parts) > 4 else 0)
    # guest time is already inside user time
    return (sum(parts[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(proc: Proc) -> float:
    """CPU of a process and its live descendants, plus what the children it reaped used (the
    RQ worker forks a work horse per job, gone by the time the run is read)."""
    pids = proc.family()
    reaped = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        reaped += int(fields[13]) + int(fields[14])  # cutime, cstime
    return cpu_seconds(pids) + reaped / os.sysconf("SC_CLK_TCK")
