"""Stop an embedded PostgreSQL when its test run is done or gone. Standard library only.

    python -m kata_tools.pg_reaper OWNER_PID FOLDER

watches OWNER_PID (the pytest process that started the server in FOLDER). When the run asks for
it (it creates FOLDER/STOP_FILE at its normal end) or dies without cleaning up (SIGKILL, a crash,
os._exit), it stops the server and deletes FOLDER. The run itself never waits for that: on a
busy disk, deleting a cluster's thousand files takes seconds a learner should not wait for.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import time
from pathlib import Path


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, owned by another user (the server runs as `pgserver` under root)
    return True


def stop_postgres_in(folder: Path) -> None:
    """Stop the embedded postmaster of this folder (SIGQUIT: immediate shutdown), then delete it."""
    pid_file = folder / "data" / "postmaster.pid"
    try:
        pid = int(pid_file.read_text().splitlines()[0])
        os.kill(pid, signal.SIGQUIT)
    except (OSError, ValueError, IndexError):
        pid = None
    deadline = time.monotonic() + 5
    while pid and pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)  # its backends exit with it; wait so nothing outlives the folder
    if pid and pid_alive(pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    shutil.rmtree(folder, ignore_errors=True)


STOP_FILE = "kata-stop-now"


def watch(owner: int, folder: Path, interval: float = 0.1) -> None:
    while pid_alive(owner) and folder.exists() and not (folder / STOP_FILE).exists():
        time.sleep(interval)
    if folder.exists():
        stop_postgres_in(folder)


if __name__ == "__main__":
    watch(int(sys.argv[1]), Path(sys.argv[2]))
