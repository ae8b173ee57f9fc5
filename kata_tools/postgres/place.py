"""Where the cached clusters go when KATA_PG_DIR is not set (server.base_dir checks the folder)."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

MEMORY_DIR = Path("/dev/shm")  # Linux's memory-backed folder
MEMORY_FREE = 2**30  # bytes free it needs for the clusters (about 75 MB each) and their copies


def default_dir() -> str:
    """/dev/shm on Linux if it has room, else the temporary folder (TMPDIR, when set, is kept).

    Why memory: every spec gets a copy of the template (some 320 files) that is dropped after it.
    On ext4 without a journal, as on these VMs, the kernel skips every inode freed in the last
    minutes when it makes a file: after a few runs one copy took 350 ms instead of 60, and the
    specs waited for their copies. On /dev/shm a copy takes 12-14 ms. A reboot empties it, and the
    next run builds its cluster again (initdb, 1-2 s), as after /tmp was cleared.
    """
    if sys.platform.startswith("linux") and not os.environ.get("TMPDIR"):
        try:
            if os.access(MEMORY_DIR, os.W_OK | os.X_OK) and shutil.disk_usage(MEMORY_DIR).free >= MEMORY_FREE:
                return str(MEMORY_DIR)
        except OSError:
            pass  # a minimal container
    return tempfile.gettempdir()
