"""Spare copies of the seeded template, made by a warm server between runs, taken at once by a run.

Why: in `kata watch` a re-run is a fork that reaches its first spec about 0.1 s after it starts,
sooner than it can make a copy of its own (CREATE DATABASE ... FILE_COPY first waits for a
checkpoint: 0.1-0.25 s right after a run wrote to the server). So the process that keeps the
server warm (`warm_server()`: kata watch, kata dev check) also keeps SPARES copies ready, and a
run's copy makers take one before they make one.

Taking is a rename (ALTER DATABASE ... RENAME TO the run's own copy name): atomic, so two runs
never get the same spare, and the copy is then the run's like any it made (dropped after its
spec, swept by the next run if the run died). Spares are named kata_<keeper pid>_s<k>, so a
keeper that died leaves spares the next run's sweep drops (copies.COPY_NAME).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import threading
from collections.abc import Callable
from typing import Any

ENV = "KATA_DATABASE_SPARES"  # the name prefix of the spares a run may take
SPARES = 4  # enough for the first specs of a run; its own makers follow (7.5 MB each)
PAUSE = 0.3  # seconds between two looks at how many spares are left


def prefix_for(pid: int) -> str:
    return f"kata_{pid}_s"


def _names(cur, prefix: str) -> list[str]:
    cur.execute(
        "SELECT datname FROM pg_database WHERE left(datname, %s) = %s ORDER BY datname",
        (len(prefix), prefix),
    )
    return [row[0] for row in cur.fetchall()]


def take(conn: Any, prefix: str, name: str) -> bool:
    """Rename one spare to `name` (an autocommit admin connection); False when none is left."""
    import psycopg2

    with conn.cursor() as cur:
        for spare in _names(cur, prefix):
            try:
                cur.execute(f'ALTER DATABASE "{spare}" RENAME TO "{name}"')
                return True
            except psycopg2.Error:
                continue  # another run took it a moment ago
    return False


def closed(conn: Any) -> Any:
    """Close `conn` if open; None, to assign back (`conn = closed(conn)`; copies.py uses it too)."""
    if conn is not None:
        with contextlib.suppress(Exception):
            conn.close()
    return None


class Keeper:
    """A thread that keeps SPARES copies of a template ready until close().

    `admin()` opens an autocommit admin connection, `copy(conn, name)` makes one copy of the
    seeded template (copies.Database's own, passed in: this module needs nothing else of it).
    """

    def __init__(self, admin: Callable[[], Any], copy: Callable[[Any, str], None]):
        self._admin, self._copy = admin, copy
        self.prefix = prefix_for(os.getpid())
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._keep, name="kata-db-spares", daemon=True)
        self._thread.start()

    def _keep(self) -> None:
        conn = None
        numbers = itertools.count(1)
        while not self._stop.is_set():
            try:
                conn = conn or self._admin()
                with conn.cursor() as cur:
                    missing = SPARES - len(_names(cur, self.prefix))
                for _ in range(missing):
                    if self._stop.is_set():
                        break
                    self._copy(conn, f"{self.prefix}{next(numbers)}")
            except Exception:  # a restarted server, a full disk: runs make their own copies
                conn = closed(conn)
            self._stop.wait(PAUSE)
        closed(conn)

    def close(self) -> None:
        """Stop making spares and drop those left (best effort: the next run sweeps the rest)."""
        self._stop.set()
        self._thread.join(timeout=10)
        conn = None
        try:
            conn = self._admin()
            with conn.cursor() as cur:
                for name in _names(cur, self.prefix):
                    cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        except Exception:
            pass
        closed(conn)
