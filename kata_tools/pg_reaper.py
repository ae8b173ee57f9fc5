"""Stop an embedded PostgreSQL when its test run is done or gone. Standard library only.

    python -m kata_tools.pg_reaper OWNER_PID SLOT [PG_CTL]

watches OWNER_PID (the pytest process that started the server in SLOT/data). When the run asks
for it (it creates SLOT/STOP_FILE at its normal end) or dies without cleaning up (SIGKILL, a crash,
os._exit), it stops the server with a fast shutdown, so the cached cluster starts cleanly next
time. The run itself never waits for that. PG_CTL (Windows only) is the pg_ctl to stop it with.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

STOP_FILE = "kata-stop-now"
OWNER_FILE = "kata-owner.pid"
WINDOWS = sys.platform == "win32"


def pid_alive(pid: int) -> bool:
    if WINDOWS:
        # os.kill(pid, 0) would terminate the process on Windows: ask the kernel instead.
        import ctypes

        kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
        handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return False
        code = ctypes.c_ulong()
        kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
        kernel32.CloseHandle(handle)
        return code.value == 259  # STILL_ACTIVE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, owned by another user (the server runs as `pgserver` under root)
    return True


def postmaster_pid(slot: Path) -> int | None:
    try:
        return int((slot / "data" / "postmaster.pid").read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None


def postmaster_running(slot: Path) -> bool:
    pid = postmaster_pid(slot)
    return pid is not None and pid_alive(pid)


def wait_stopped(slot: Path, within: float) -> bool:
    deadline = time.monotonic() + within
    while postmaster_running(slot):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def stop_postgres_in(slot: Path, delete: bool = False, pg_ctl: str | None = None) -> None:
    """Stop the postmaster of SLOT/data (fast shutdown, then harder), optionally delete SLOT."""
    pid = postmaster_pid(slot)
    if pid is not None and pid_alive(pid):
        if WINDOWS:
            # No POSIX signals on Windows: pg_ctl signals the server through its own mechanism.
            if pg_ctl:
                subprocess.run(
                    [pg_ctl, "stop", "-D", str(slot / "data"), "-m", "fast", "-W"],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    check=False,
                )
        else:
            import signal

            for sig, wait in ((signal.SIGINT, 5.0), (signal.SIGQUIT, 2.0), (signal.SIGKILL, 2.0)):
                try:
                    os.kill(pid, sig)  # SIGINT: fast shutdown; SIGQUIT: immediate; then kill
                except OSError:
                    break
                if wait_stopped(slot, wait):
                    break
        if WINDOWS and not wait_stopped(slot, 7.0):
            subprocess.run(
                ["taskkill", "/F", "/T", "/PID", str(pid)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                check=False,
            )
    if delete:
        shutil.rmtree(slot, ignore_errors=True)


def owner_of(slot: Path) -> int | None:
    try:
        return int((slot / OWNER_FILE).read_text())
    except (OSError, ValueError):
        return None


def sweep(base: Path, young: float = 30.0) -> list[Path]:
    """Stop servers whose run and reaper both died (their owner is gone, they still run)."""
    swept = []
    for slot in base.glob("*/slot-*"):
        owner = owner_of(slot)
        if owner is not None and pid_alive(owner):
            continue
        pid_file = slot / "data" / "postmaster.pid"
        try:
            if time.time() - pid_file.stat().st_mtime < young:
                continue  # just started by a run that has not written its owner file yet
        except OSError:
            continue
        if postmaster_running(slot):
            stop_postgres_in(slot)
            swept.append(slot)
    return swept


def watch(owner: int, slot: Path, pg_ctl: str | None = None, interval: float = 0.05) -> None:
    while pid_alive(owner) and slot.exists() and not (slot / STOP_FILE).exists():
        time.sleep(interval)
    if slot.exists():
        stop_postgres_in(slot, pg_ctl=pg_ctl)


if __name__ == "__main__":
    watch(int(sys.argv[1]), Path(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else None)
