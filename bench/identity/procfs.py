"""Reading /proc for the benchmark: process trees, their memory, and CPU time.

Shared by the server wrapper (VmHWM at the end of a run) and the probes (RSS sampling, CPU
snapshots), so it lives apart from both.
"""

from __future__ import annotations

import os


def _ppid_map() -> dict[int, int]:
    """pid -> ppid for every process (no /proc/<pid>/task/*/children on this kernel)."""
    result: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and (fields := stat_fields(int(entry.name))) is not None:
            result[int(entry.name)] = int(fields[1])
    return result


def stat_fields(pid: int) -> list[bytes] | None:
    """/proc/<pid>/stat after the command name (state, ppid, ...), or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return None
    # comm may contain spaces and parentheses; fields after the last ')' are fixed.
    return stat[stat.rfind(b")") + 2 :].split()


def process_tree(root: int) -> list[int]:
    """The root pid and all its descendants."""
    children: dict[int, list[int]] = {}
    for pid, ppid in _ppid_map().items():
        children.setdefault(ppid, []).append(pid)
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def status_kib(pid: int, key: bytes) -> int:
    try:
        with open(f"/proc/{pid}/status", "rb") as handle:
            for line in handle:
                if line.startswith(key):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def tree_rss_bytes(root: int) -> int:
    """Sum of VmRSS over the process tree."""
    return sum(status_kib(pid, b"VmRSS:") for pid in process_tree(root)) * 1024


CLK_TCK = os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has been busy (all cores)."""
    with open("/proc/stat") as handle:
        fields = [int(v) for v in handle.readline().split()[1:]]
    return (sum(fields[:3]) + sum(fields[5:8])) / CLK_TCK
