"""What else the machine is doing while the lab measures: other programs' share of the CPUs.

A lab figure on a busy machine says more about the machine than about the rule, so each mode's
verdict reads this and says "busy" instead of MISSED. On Linux the lab reads /proc: the CPU time
of every process that is not the lab's (the lab, its server child, and PostgreSQL's processes)
over the mode's burst, as a share of all CPUs. Elsewhere (macOS, Windows) only the load average
is known, where the platform has one; with neither, no verdict is called "busy".
"""

from __future__ import annotations

import os
import time
from pathlib import Path

PROC = Path("/proc")
OURS = {"postgres", "postmaster"}  # the lab's database: its backends run the lab's queries
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def load_average() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):  # Windows has no load average
        return None


def _processes() -> dict[int, tuple[int, str, float]]:
    """pid -> (parent pid, name, CPU seconds so far), from /proc."""
    out = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue  # ended while we looked
        name = raw[raw.find("(") + 1 : raw.rfind(")")]
        fields = raw[raw.rfind(")") + 2 :].split()
        # fields[1] is ppid; [11], [12] utime, stime (stat fields 14 and 15), in clock ticks
        out[int(entry.name)] = (int(fields[1]), name, (int(fields[11]) + int(fields[12])) / _TICK)
    return out


def _others(procs: dict[int, tuple[int, str, float]], lab: int) -> float:
    """CPU seconds of the processes that are not the lab's."""
    ours = {lab}
    grew = True
    while grew:  # the lab's descendants: the server child, the reaper
        grew = False
        for pid, (ppid, _, _) in procs.items():
            if ppid in ours and pid not in ours:
                ours.add(pid)
                grew = True
    return sum(cpu for pid, (_, name, cpu) in procs.items() if pid not in ours and name not in OURS)


class Sampler:
    """start() before a burst, share() after it: other programs' share of the machine's CPUs."""

    def __init__(self) -> None:
        self.enabled = PROC.joinpath("self", "stat").exists()
        self.cpus = os.cpu_count() or 1
        self._begin: tuple[float, float] | None = None

    def start(self) -> None:
        if self.enabled:
            self._begin = (time.monotonic(), _others(_processes(), os.getpid()))

    def share(self) -> float | None:
        if not self.enabled or self._begin is None:
            return None
        t0, cpu0 = self._begin
        wall = time.monotonic() - t0
        if wall <= 0:
            return None
        used = _others(_processes(), os.getpid()) - cpu0
        return round(max(0.0, min(1.0, used / (wall * self.cpus))), 3)
