"""Which process is submitting a job's batches, and whether it still runs.

A part is uploaded and started by one kernel; while it does, the part has no provider batch id
yet. When that kernel dies mid-submit (kill -9, a crash, a closed laptop that rebooted), nothing
will ever give the part an id, so another look at the job must be able to tell that the submitter
is gone, and call the part failed rather than wait for it forever. A process is named by its
host, the machine's boot, its pid and its start time (so a pid reused after a reboot, or by a
later process, is not taken for it).
"""

from __future__ import annotations

import os
import socket
from typing import Any

__all__ = ["is_gone", "this_process"]


def this_process() -> dict[str, Any]:
    """This process, as a job's record names its submitter."""
    pid = os.getpid()
    return {"host": socket.gethostname(), "boot": _boot_id(), "pid": pid,
            "started": _start_time(pid)}


def is_gone(submitter: Any) -> bool:
    """Whether the process `submitter` names has stopped (a record without one, from before
    submitters were recorded, counts as stopped: it cannot be submitting now). A process of
    another host or boot of this one counts as stopped too."""
    if not isinstance(submitter, dict) or not isinstance(submitter.get("pid"), int):
        return True
    if submitter.get("host") != socket.gethostname() or submitter.get("boot") != _boot_id():
        return True
    pid = submitter["pid"]
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # another user's process: it runs
        pass
    started = _start_time(pid)
    if started is None:
        return False  # no /proc to tell a reused pid from its first process: it runs
    return started != submitter.get("started") or _is_zombie(pid)


def _boot_id() -> str | None:
    try:
        with open("/proc/sys/kernel/random/boot_id") as handle:
            return handle.read().strip()
    except OSError:
        return None


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (which may hold spaces)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rpartition(")")[2].split()
    except OSError:
        return None


def _start_time(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[19]) if fields and len(fields) > 19 else None


def _is_zombie(pid: int) -> bool:
    fields = _stat_fields(pid)
    return bool(fields) and fields[0] in ("Z", "X")
