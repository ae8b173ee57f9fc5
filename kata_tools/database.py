"""A real PostgreSQL for the database katas, with zero set-up, chosen once per test session.

In this order:
  1. KATA_DATABASE_URL or DATABASE_URL, if set: that server (it needs the CREATEDB privilege);
  2. a Docker engine that answers within 2 s: a throwaway PostgreSQL through testcontainers
     (the optional `docker` extra);
  3. otherwise an embedded PostgreSQL (the pgserver package) in a temporary folder, over a Unix
     socket, started on first use and stopped at the end of the run.

Every spec that asks for `seeded_db` gets its own database, copied from a template that holds the
blog schema and seed data (kata_blog/seed.py), and dropped afterwards: no spec sees another's writes.
Names carry the process id, so two runs on one server never collide.

Nothing here imports SQLAlchemy or a driver until a database spec actually runs, so the katas
without a database stay fast.
"""

from __future__ import annotations

import atexit
import itertools
import os
import queue
import signal
import sys
import tempfile
import threading
import time
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest

from kata_tools.pg_reaper import STOP_FILE, pid_alive, stop_postgres_in
from kata_tools.pytest_plugin import CALL_REPORT

PG_DIR_PREFIX = "kata-pg-"
PREPARED_AHEAD = 2  # database copies made ahead of the specs that will use them
OWNER_FILE = "kata-owner.pid"


class DatabaseUnavailable(Exception):
    """No PostgreSQL could be had; the message says what was tried and how to fix it."""


def sweep_orphans() -> list[Path]:
    """Stop embedded servers left by runs that were killed (their owner process is gone)."""
    swept = []
    for pgdata in Path(tempfile.gettempdir()).glob(PG_DIR_PREFIX + "*"):
        try:
            owner = int((pgdata / OWNER_FILE).read_text())
        except (OSError, ValueError):
            continue
        if not pid_alive(owner):
            stop_postgres_in(pgdata)
            swept.append(pgdata)
    return swept


def _docker_answers(timeout: float = 2.0) -> bool:
    """True only if a Docker engine answers a ping within `timeout` seconds; never hangs."""
    host = os.environ.get("DOCKER_HOST", "")
    if not host and not Path("/var/run/docker.sock").exists():
        return False  # no socket at all: answered in microseconds
    try:
        import docker  # installed with the optional `docker` extra
    except ImportError:
        return False
    answer = []

    def ping():
        try:
            answer.append(docker.from_env(timeout=timeout).ping())
        except Exception:
            answer.append(False)

    # An engine that accepts but never answers would hang the client: ping from a thread.
    thread = threading.Thread(target=ping, daemon=True)
    thread.start()
    thread.join(timeout + 0.5)
    return bool(answer and answer[0])


@dataclass
class Database:
    """A PostgreSQL server the session uses: where it is and how to make test databases on it."""

    kind: str  # "DATABASE_URL", "docker", "embedded"
    admin_url: str  # a postgresql:// URL (libpq form) of a database to run CREATE DATABASE from
    description: str = ""
    version: str = ""
    _stop: object = None
    _template: str | None = None

    def __post_init__(self):
        self._names = itertools.count(1)
        self._lock = threading.Lock()
        # Copies of the template made ahead, while the previous spec runs (see create_test_database).
        self._ready: queue.Queue = queue.Queue(maxsize=PREPARED_AHEAD)
        self._preparer: threading.Thread | None = None
        self._closing = threading.Event()

    # --- URLs ---------------------------------------------------------------------------------

    def url(self, database: str, driver: str | None = None):
        """A sqlalchemy URL of `database` on this server; driver "psycopg2" or "asyncpg"."""
        from sqlalchemy.engine import make_url

        url = make_url(self.admin_url).set(database=database)
        return url.set(drivername=f"postgresql+{driver}") if driver else url

    def _admin(self):
        import psycopg2

        conn = psycopg2.connect(self.admin_url)
        conn.autocommit = True
        return conn

    # --- databases ----------------------------------------------------------------------------

    def fetch_version(self) -> str:
        with self._admin() as conn, conn.cursor() as cur:
            cur.execute("SHOW server_version")
            self.version = cur.fetchone()[0].split()[0]
        conn.close()
        return self.version

    def template(self) -> str:
        """The seeded template database of this session, created on first use."""
        with self._lock:
            if self._template is None:
                name = f"kata_tpl_{os.getpid()}_{uuid.uuid4().hex[:8]}"
                self._execute(f'CREATE DATABASE "{name}"')
                from sqlalchemy import create_engine

                from kata_blog import seed

                engine = create_engine(self.url(name, "psycopg2"))
                try:
                    with engine.begin() as connection:
                        seed.install(connection)
                finally:
                    engine.dispose()  # CREATE DATABASE ... TEMPLATE needs it idle
                self._template = name
            return self._template

    def create_test_database(self) -> str:
        """A new copy of the seeded template, for one spec.

        Copying takes 0.1 s on a quiet machine and up to 0.7 s on a busy one; a background thread
        keeps PREPARED_AHEAD copies ready, so a spec rarely waits for its own.
        """
        self.warm_up()
        made = self._ready.get(timeout=120)
        if isinstance(made, Exception):
            raise made
        return made

    def warm_up(self) -> None:
        """Seed the template and start making copies of it ahead of the specs."""
        self.template()
        with self._lock:
            if self._preparer is None:
                self._preparer = threading.Thread(
                    target=self._prepare, name="kata-db-preparer", daemon=True
                )
                self._preparer.start()

    def _prepare(self) -> None:
        while not self._closing.is_set():
            name = f"kata_{os.getpid()}_{next(self._names)}"
            try:
                self._execute(f'CREATE DATABASE "{name}" TEMPLATE "{self._template}"')
            except Exception as e:
                if not self._closing.is_set():
                    self._ready.put(e)  # the spec waiting for it reports the error
                return
            self._ready.put(name)  # blocks while PREPARED_AHEAD copies are waiting

    def connections_to(self, name: str) -> int:
        with self._admin() as conn, conn.cursor() as cur:
            cur.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            count = cur.fetchone()[0]
        conn.close()
        return count

    def drop(self, name: str) -> None:
        self._execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def _execute(self, sql: str) -> None:
        _execute_all(self.admin_url, sql)

    def close(self) -> None:
        self._closing.set()
        unused = []
        while not self._ready.empty():  # frees the preparer if it waits to put a copy
            unused.append(self._ready.get_nowait())
        if self._preparer is not None and self.kind != "embedded":
            # Its last copy must be dropped too; an embedded server goes whole, so no waiting.
            self._preparer.join(timeout=10)
            while not self._ready.empty():
                unused.append(self._ready.get_nowait())
        if self.kind != "embedded":  # an embedded server is deleted whole
            for name in unused:
                if isinstance(name, str):
                    try:
                        self.drop(name)
                    except Exception:
                        pass
        if self._template and self.kind != "embedded":
            try:
                self.drop(self._template)
            except Exception:
                pass  # the server may already be gone; an embedded one is deleted anyway
            self._template = None
        if self._stop is not None:
            stop, self._stop = self._stop, None
            stop()


# --- provisioning -----------------------------------------------------------------------------


def _execute_all(url: str, *statements: str) -> None:
    import psycopg2

    conn = psycopg2.connect(url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            for sql in statements:
                cur.execute(sql)
    finally:
        conn.close()


def _from_environment() -> Database | None:
    for var in ("KATA_DATABASE_URL", "DATABASE_URL"):
        url = os.environ.get(var)
        if url:
            from sqlalchemy.engine import make_url

            parsed = make_url(url)
            # Admin work goes through psycopg2 (libpq form: postgresql://, no +driver).
            admin = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
            where = f"{parsed.host or 'local socket'}:{parsed.port or 5432}/{parsed.database}"
            return Database(kind=var, admin_url=admin, description=f"{var} server at {where}")
    return None


def _from_docker() -> Database | None:
    if not _docker_answers():
        return None
    try:
        from testcontainers.postgres import PostgresContainer
    except ImportError:
        return None
    container = PostgresContainer("postgres:16-alpine", driver=None)
    container.start()
    url = container.get_connection_url()
    return Database(
        kind="docker",
        admin_url=url,
        description=f"throwaway Docker container {container.image}",
        _stop=container.stop,
    )


def _spawn_reaper(pgdata: Path) -> None:
    """Start kata_tools.pg_reaper, which stops the server when this run ends or dies.

    posix_spawn in a new session, with no Popen object: it outlives this process on purpose,
    survives Ctrl-C sent to the run's process group, and Python never warns about it.
    """
    root = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
    devnull = [(os.POSIX_SPAWN_OPEN, fd, os.devnull, os.O_RDWR, 0) for fd in (0, 1, 2)]
    os.posix_spawn(
        sys.executable,
        [sys.executable, "-m", "kata_tools.pg_reaper", str(os.getpid()), str(pgdata)],
        env,
        file_actions=devnull,
        setsid=True,
    )


def _embedded() -> Database:
    sweep_orphans()
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (CI); pgserver then uses /tmp.
        warnings.simplefilter("ignore")
        import pgserver
    pgdata = Path(tempfile.mkdtemp(prefix=PG_DIR_PREFIX))
    pgdata.chmod(0o755)  # as root, pgserver runs postgres as its own user, which must enter it
    (pgdata / OWNER_FILE).write_text(str(os.getpid()))
    data = pgdata / "data"
    _spawn_reaper(pgdata)
    server = pgserver.get_server(data, cleanup_mode="stop")

    # A throwaway server: durability buys nothing and costs seconds (CREATE/DROP DATABASE and
    # shutdown fsync everything) on a busy disk.
    _execute_all(
        server.get_uri(),
        "ALTER SYSTEM SET fsync = off",
        "ALTER SYSTEM SET synchronous_commit = off",
        "ALTER SYSTEM SET full_page_writes = off",
        "SELECT pg_reload_conf()",
    )

    def stop():
        # pgserver would stop the server with a checkpoint at exit; the reaper does it faster.
        atexit.unregister(server._cleanup)
        (pgdata / STOP_FILE).touch()  # the reaper stops the server and deletes the folder

    return Database(
        kind="embedded",
        admin_url=server.get_uri(),
        description=f"embedded PostgreSQL (pgserver) in {pgdata}",
        _stop=stop,
    )


def provision() -> Database:
    """Choose and start the session's database (see the module docstring for the order)."""
    tried = []
    for source in (_from_environment, _from_docker, _embedded):
        try:
            db = source()
        except Exception as e:  # say what failed and go on to the next source
            tried.append(f"{source.__name__.strip('_')}: {type(e).__name__}: {e}")
            if source is _from_environment:
                break  # an explicit URL that fails is an error, not a reason to start another
            continue
        if db is None:
            continue
        try:
            db.fetch_version()
        except Exception as e:
            db.close()
            raise DatabaseUnavailable(
                f"cannot reach the {db.description}: {type(e).__name__}: {str(e).strip()}. "
                f"Check the URL, or unset KATA_DATABASE_URL/DATABASE_URL to use the embedded one."
            ) from None
        return db
    raise DatabaseUnavailable("no PostgreSQL could be started: " + "; ".join(tried))


# --- pytest integration -----------------------------------------------------------------------

_DB = pytest.StashKey[object]()

DB_FIXTURES = ("database", "seeded_db")


def wants_database(items) -> bool:
    return any(set(DB_FIXTURES) & set(getattr(item, "fixturenames", ())) for item in items)


_EARLY = pytest.StashKey[object]()  # a Future: the database starting while collection goes on


def _provision_or_reason(warm: bool = False) -> Database | DatabaseUnavailable:
    try:
        db = provision()
    except DatabaseUnavailable as e:
        return e
    if warm:
        try:
            db.warm_up()
        except Exception:
            pass  # the first spec that asks for a database copy meets the error and reports it
    return db


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> None:
    """Start the database in the background as soon as a spec file that uses it is found.

    Starting it takes about a second, importing a database kata's libraries about as long: done
    at once, the learner waits for the longer of the two instead of both. A wrong guess (the file
    is collected, its specs deselected) costs a server that stops at the end of the run.
    """
    config = parent.config
    if _EARLY in config.stash or _DB in config.stash or config.option.collectonly:
        return None
    if file_path.suffix == ".py" and file_path.name.startswith("test_"):
        try:
            uses_database = "seeded_db" in file_path.read_text(errors="ignore")
        except OSError:
            uses_database = False
        if uses_database:
            from concurrent.futures import ThreadPoolExecutor

            executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kata-db-start")
            config.stash[_EARLY] = executor.submit(_provision_or_reason, True)
            executor.shutdown(wait=False)
    return None


def start_for_session(config: pytest.Config) -> Database | DatabaseUnavailable:
    """Start the database once; remember it (or the reason it failed) on the config."""
    if _DB not in config.stash:
        early = config.stash.get(_EARLY, None)
        config.stash[_DB] = early.result() if early is not None else _provision_or_reason()
        if isinstance(config.stash[_DB], Database):
            _install_sigterm_handler()
    return config.stash[_DB]


def stop_for_session(config: pytest.Config) -> None:
    db = config.stash.get(_DB, None)
    if isinstance(db, Database):
        db.close()


def _install_sigterm_handler() -> None:
    """SIGTERM becomes KeyboardInterrupt, so pytest ends the session and stops the database."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):

        def on_sigterm(signum, frame):
            raise KeyboardInterrupt("SIGTERM")

        signal.signal(signal.SIGTERM, on_sigterm)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start the database right after collection when a selected spec needs one, and say which."""
    if session.config.option.collectonly or not wants_database(session.items):
        return
    db = start_for_session(session.config)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(header_line(db))


def pytest_unconfigure(config: pytest.Config) -> None:
    early = config.stash.get(_EARLY, None)
    if early is not None and _DB not in config.stash:
        config.stash[_DB] = early.result()  # started for specs that were then not run
    stop_for_session(config)


def header_line(db: Database | DatabaseUnavailable) -> str:
    if isinstance(db, DatabaseUnavailable):
        return f"database: unavailable: {db}"
    return f"database: PostgreSQL {db.version}, {db.description}"


@dataclass
class SeededDatabase:
    """A fresh copy of the seeded blog database for one spec."""

    name: str
    server: Database

    @property
    def sync_url(self):
        """sqlalchemy URL for psycopg2 (create_engine)."""
        return self.server.url(self.name, "psycopg2")

    @property
    def async_url(self):
        """sqlalchemy URL for asyncpg (create_async_engine)."""
        return self.server.url(self.name, "asyncpg")

    @property
    def plain_url(self) -> str:
        """The URL as a DATABASE_URL holds it: postgresql://..., password included."""
        return self.server.url(self.name).render_as_string(hide_password=False)

    def open_connections(self) -> int:
        return self.server.connections_to(self.name)


@pytest.fixture(scope="session")
def database(pytestconfig) -> Database:
    """The session's PostgreSQL server (started on first use)."""
    db = start_for_session(pytestconfig)
    if isinstance(db, DatabaseUnavailable):
        pytest.fail(f"No database for this spec: {db}", pytrace=False)
    return db


@pytest.fixture
def seeded_db(database, request) -> SeededDatabase:
    """A database of its own for this spec, with the blog schema and seed data; dropped after."""
    test_db = SeededDatabase(database.create_test_database(), database)
    yield test_db
    report = request.node.stash.get(CALL_REPORT, None)
    leftover = 0
    if report is not None and report.passed:
        # A closed connection's server process leaves pg_stat_activity a moment after the
        # client closed it: give it 2 s before calling it a leak.
        deadline = time.monotonic() + 2
        leftover = test_db.open_connections()
        while leftover and time.monotonic() < deadline:
            time.sleep(0.05)
            leftover = test_db.open_connections()
    database.drop(test_db.name)
    if leftover:
        pytest.fail(
            f"The spec passed, but {leftover} connection(s) to its database were still open "
            f"afterwards: dispose engines and close sessions when done (await engine.dispose()).",
            pytrace=False,
        )
