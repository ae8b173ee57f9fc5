"""A server the run uses (`Database`): its URLs, the seeded template, and one copy per spec.

Copies: a background thread keeps PREPARED_AHEAD copies of the template ready (CREATE DATABASE
... TEMPLATE, 0.05-0.7 s each), another drops used ones, so a spec waits for neither. A copy that
fails is retried; one that cannot be had within COPY_WAIT seconds fails its spec with one line
saying it is a database problem, never with a timeout that blames the learner's code.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import queue
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kata_tools import i18n
from kata_tools.postgres import spares
from kata_tools.postgres.spares import closed as _closed

PREPARED_AHEAD = 3  # database copies made ahead of the specs that will use them
COPIERS = 2  # threads making them: on a loaded machine one copy took longer than a failing spec
COPY_WAIT = 6.0  # seconds a spec waits for its copy (the spec timeout is 10 s)
COPY_ATTEMPTS = (0.1, 0.4, 1.0)  # pauses between the attempts at one copy
TEMPLATE_LOST = "kata_tpl"  # never used: _reseed_template runs only with a given template
COPY_NAME = re.compile(r"^kata_(\d+)_s?\d+$")  # a run's copies, and a keeper's spares


class DatabaseUnavailable(Exception):
    """No PostgreSQL could be had; the message says what was tried and how to fix it."""


class DatabaseProblem(Exception):
    """A database copy or drop failed for a reason that is not the learner's code (one line)."""


def _say(key: str, **fields) -> str:
    return i18n.tool("plugin")(key, **fields)


def execute_all(url: str, *statements: str) -> None:
    import psycopg2

    conn = psycopg2.connect(url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            for sql in statements:
                cur.execute(sql)
    finally:
        conn.close()


def _as_user(url: str, user: str | None, database: str | None = None) -> str:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if user:
        parsed = parsed.set(username=user, password=None)
    if database:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


def seed_template(admin_url: str, name: str, owner: str | None = None) -> None:
    """Create the template `name` with the blog schema and seed data, its objects owned by `owner`.

    Built under a temporary name and renamed when complete, so a copy is never taken of a
    half-seeded template. Seeded over the admin connection (the superuser's reserved slots, so a
    learner who took every other connection cannot stop it) with SET ROLE `owner`.
    """
    from sqlalchemy import create_engine, text

    from kata_blog import seed

    building = f"{name}_{os.getpid()}_building"
    execute_all(
        admin_url,
        f'DROP DATABASE IF EXISTS "{building}"',
        f'CREATE DATABASE "{building}"' + (f' OWNER "{owner}"' if owner else ""),
    )
    engine = create_engine(
        _as_user(admin_url, None, building).replace("postgresql://", "postgresql+psycopg2://", 1)
    )
    try:
        with engine.begin() as connection:
            if owner:
                connection.execute(text(f'SET ROLE "{owner}"'))
            seed.install(connection)
    finally:
        engine.dispose()  # CREATE DATABASE ... TEMPLATE needs it idle
    execute_all(admin_url, f'ALTER DATABASE "{building}" RENAME TO "{name}"')


def one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


@dataclass
class Database:
    """A PostgreSQL server the session uses: where it is and how to make test databases on it."""

    kind: str  # "KATA_DATABASE_URL", "DATABASE_URL", "docker", "embedded"
    admin_url: str  # a postgresql:// URL (libpq form) of a database to run CREATE DATABASE from
    description: str = ""
    version: str = ""
    learner_role: str | None = None  # the specs connect as this role (None: as the admin user)
    given_template: str | None = None  # a seeded template that outlives this run: never dropped
    spares: str | None = None  # the name prefix of a warm server's spare copies (spares.py)
    _stop: Callable[[], None] | None = None
    _template: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self._names = itertools.count(1)
        self._lock = threading.Lock()
        self._ready: queue.Queue = queue.Queue(maxsize=PREPARED_AHEAD)
        self._to_drop: queue.Queue = queue.Queue()
        self._threads: list[threading.Thread] = []
        self._closing = threading.Event()
        self._template = self.given_template
        self._keeper: spares.Keeper | None = None
        self._checker: Any = None  # the admin connection of connections_to
        self._check_lock = threading.Lock()

    @property
    def leaves_cleanup_to_next_run(self) -> bool:
        """True when leftovers are swept by the next run (a cluster or server of our own)."""
        return self.kind == "embedded" or self.given_template is not None

    @property
    def env(self) -> dict[str, str]:
        """What a child pytest run needs to use this server and its seeded template as they are."""
        env = {
            "KATA_DATABASE_URL": self.admin_url,
            "KATA_DATABASE_TEMPLATE": self.template(),
            "KATA_DATABASE_DESCRIPTION": self.description,
        }
        if self.learner_role:
            env["KATA_DATABASE_ROLE"] = self.learner_role
        if self._keeper is not None:
            env[spares.ENV] = self._keeper.prefix
        return env

    # --- URLs ---------------------------------------------------------------------------------

    def url(self, database: str, driver: str | None = None):
        """A sqlalchemy URL of `database` on this server, as the specs' role; driver "psycopg2" or "asyncpg"."""
        from sqlalchemy.engine import make_url

        url = make_url(self.admin_url).set(database=database)
        if self.learner_role:
            url = url.set(username=self.learner_role, password=None)
        return url.set(drivername=f"postgresql+{driver}") if driver else url

    def _admin(self):
        import psycopg2

        conn = psycopg2.connect(self.admin_url, connect_timeout=10)
        conn.autocommit = True
        return conn

    def fetch_version(self) -> str:
        conn = self._admin()
        try:
            with conn.cursor() as cur:
                cur.execute("SHOW server_version")
                self.version = cur.fetchone()[0].split()[0]
        finally:
            conn.close()
        return self.version

    # --- the template and its copies ----------------------------------------------------------

    def template(self) -> str:
        """The seeded template of this session, created on first use unless one was given."""
        with self._lock:
            if self._template is None:
                name = f"kata_tpl_{os.getpid()}_{uuid.uuid4().hex[:8]}"
                try:
                    seed_template(self.admin_url, name, owner=self.learner_role)
                except Exception as e:
                    raise DatabaseProblem(_say("db-seeding-failed", error=one_line(e))) from None
                self._template = name
            return self._template

    def warm_up(self) -> None:
        """Seed the template (if needed) and start making copies of it ahead of the specs."""
        self.template()
        with self._lock:
            if not self._threads:
                makers = [(self._prepare, f"kata-db-copies-{n}") for n in range(COPIERS)]
                for target, name in (*makers, (self._drop_used, "kata-db-drops")):
                    thread = threading.Thread(target=target, name=name, daemon=True)
                    thread.start()
                    self._threads.append(thread)

    def keep_spares(self) -> None:
        """Keep copies ready for the runs this server is handed to (a warm server: spares.py)."""
        self.template()
        with self._lock:
            if self._keeper is None:
                self._keeper = spares.Keeper(self._admin, self._copy)

    def create_test_database(self) -> str:
        """A fresh copy of the seeded template for one spec, or DatabaseProblem (one line)."""
        self.warm_up()
        try:
            made = self._ready.get(timeout=COPY_WAIT)
        except queue.Empty:
            raise DatabaseProblem(
                _say("db-copy-timeout", seconds=COPY_WAIT, description=self.description)
            ) from None
        if isinstance(made, Exception):
            raise made
        return made

    def _copy(self, conn, name: str) -> None:
        # FILE_COPY copies the template's files: 0.2-0.7 s on a loaded machine against 0.2-1.7 s
        # for PostgreSQL 15+'s default WAL_LOG, which writes every page to the WAL too.
        strategy = " STRATEGY FILE_COPY" if _major(self.version) >= 15 else ""
        owner = f' OWNER "{self.learner_role}"' if self.learner_role else ""
        with conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self._template}"{owner}{strategy}')
        # A new database's first session builds its catalog cache file (pg_internal.init, 10-20 ms;
        # a template's cannot be copied: a server start deletes them all). Opened here, not by the
        # spec; only a head start, so a copy is good without it. psycopg2 alone: no SQLAlchemy here.
        import psycopg2

        with contextlib.suppress(psycopg2.Error):
            psycopg2.connect(self.admin_url, dbname=name, connect_timeout=10).close()

    def _prepare(self) -> None:
        conn = None
        while not self._closing.is_set():
            name = f"kata_{os.getpid()}_{next(self._names)}"
            error: BaseException | None = None
            for pause in (*COPY_ATTEMPTS, None):
                try:
                    conn = conn or self._admin()
                    if not (self.spares and spares.take(conn, self.spares, name)):
                        self._copy(conn, name)
                    error = None
                    break
                except Exception as e:  # a full disk, a restarted server, a busy template
                    error = e
                    conn = _closed(conn)
                    if "being accessed by other users" in str(e):
                        self._free_template()
                    elif "does not exist" in str(e) and self._template == self.given_template:
                        self._reseed_template()
                    if pause is None or self._closing.is_set():
                        break
                    time.sleep(pause)
            item: object = (
                name if error is None else DatabaseProblem(_say("db-copy-failed", error=one_line(error)))
            )
            while not self._closing.is_set():
                try:
                    self._ready.put(item, timeout=0.2)  # waits while PREPARED_AHEAD are ready
                    break
                except queue.Full:
                    continue
            if error is not None:
                time.sleep(1.0)  # a broken server: do not spin; the next spec gets one line too
        _closed(conn)

    def _free_template(self) -> None:
        """Someone holds the template open (it cannot be copied then): end those sessions."""
        try:
            execute_all(
                self.admin_url,
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                f"WHERE datname = '{self._template}' AND pid <> pg_backend_pid()",
            )
        except Exception:
            pass

    def _reseed_template(self) -> None:
        """The given template is gone (a spec dropped it): seed it again, once per run."""
        if getattr(self, "_reseeded", False):
            return
        self._reseeded = True
        try:
            seed_template(self.admin_url, self._template or TEMPLATE_LOST, owner=self.learner_role)
        except Exception:
            pass  # the copy's own error is reported

    def _drop_used(self) -> None:
        conn = None
        if self.leaves_cleanup_to_next_run:
            self._to_drop_leftovers()
        while True:
            name = self._to_drop.get()
            if name is None:
                break
            for pause in (*COPY_ATTEMPTS, None):
                try:
                    conn = conn or self._admin()
                    with conn.cursor() as cur:
                        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                    break
                except Exception:
                    conn = _closed(conn)
                    if pause is None or self._closing.is_set():
                        break  # left for the next run's sweep
                    time.sleep(pause)
        _closed(conn)

    def _to_drop_leftovers(self) -> None:
        """Queue the copies that runs now gone left on this server."""
        from kata_tools.pg_reaper import pid_alive

        try:
            conn = self._admin()
            try:
                with conn.cursor() as cur:
                    cur.execute("SELECT datname FROM pg_database WHERE datname ~ %s", (COPY_NAME.pattern,))
                    names = [row[0] for row in cur.fetchall()]
            finally:
                conn.close()
        except Exception:
            return
        for name in names:
            match = COPY_NAME.match(name)
            if match and int(match.group(1)) != os.getpid() and not pid_alive(int(match.group(1))):
                self._to_drop.put(name)

    def connections_to(self, name: str) -> int:
        """Sessions open on `name`: after every spec, on one kept admin connection (a new one: 3-7 ms)."""
        with self._check_lock:
            try:
                return self._count_sessions(name)
            except Exception:
                self._checker = _closed(self._checker)  # a restarted server: a new connection
                return self._count_sessions(name)

    def _count_sessions(self, name: str) -> int:
        self._checker = self._checker or self._admin()
        with self._checker.cursor() as cur:  # autocommit: pg_stat_activity as it is now
            cur.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            return cur.fetchone()[0]

    def drop_later(self, name: str) -> None:
        """Drop a spec's database in the background (WITH FORCE ends connections it leaked)."""
        self._to_drop.put(name)

    def drop(self, name: str) -> None:
        execute_all(self.admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        """Stop making copies; clean up (or leave it to the next run) and stop the server."""
        self._closing.set()
        with self._check_lock:
            self._checker = _closed(self._checker)
        if self._keeper is not None:
            keeper, self._keeper = self._keeper, None
            keeper.close()
        unused = []
        while not self._ready.empty():
            unused.append(self._ready.get_nowait())
        if not self.leaves_cleanup_to_next_run:
            # Someone's own server: leave nothing behind on it.
            for thread in self._threads[:COPIERS]:
                thread.join(timeout=10)
            while not self._ready.empty():
                unused.append(self._ready.get_nowait())
            for name in unused:
                if isinstance(name, str):
                    self._to_drop.put(name)
            if self._template and self._template != self.given_template:
                self._to_drop.put(self._template)
            self._to_drop.put(None)
            for thread in self._threads[COPIERS:]:
                thread.join(timeout=20)
            if not self._threads and self._template and self._template != self.given_template:
                try:
                    self.drop(self._template)
                except Exception:
                    pass
        self._template = self.given_template
        if self._stop is not None:
            stop, self._stop = self._stop, None
            stop()


def _major(version: str) -> int:
    try:
        return int(version.split(".")[0])
    except ValueError:
        return 0
