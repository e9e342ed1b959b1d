"""`python -m stack.reaper CMD ...`: run CMD, and end everything it forked when told or orphaned.

PR_SET_PDEATHSIG (which stack.process sets on every child) is not inherited across fork, so a
process's own forks — RQ's scheduler and work horse — would outlive a SIGKILLed parent (the
benchmark, say). This wrapper is a child subreaper: orphans of CMD's tree are re-parented to
it, so on SIGTERM (its starter stopping it, or the kernel because the starter died) it can find
and end the whole tree, CMD first.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from types import FrameType

from stack.procfs import descendants

_PR_SET_CHILD_SUBREAPER = 36


def _kill_tree(sig: int) -> None:
    for pid in descendants(os.getpid()):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def main(argv: list[str]) -> int:
    """Run the command; stop its whole tree on SIGTERM/SIGINT or when it exits."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1)
    child = subprocess.Popen(argv)
    stopping: list[int] = []

    def stop(signum: int, frame: FrameType | None) -> None:
        stopping.append(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while child.poll() is None and not stopping:
        time.sleep(0.05)
    _kill_tree(signal.SIGTERM)  # the command first, then whatever it left
    deadline = time.monotonic() + 10
    while descendants(os.getpid()) and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
        time.sleep(0.05)
    _kill_tree(signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        while True:
            os.wait()
    return 128 + stopping[0] if stopping else int(child.returncode or 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
