"""The database's pytest plugin: when to start the server, the `database` and `seeded_db` fixtures.

- A kata whose kata.toml says `database = true` gets its server started in a background thread
  as soon as one of its spec files is collected (kata.needs_database is the only test), so
  starting it overlaps collection and the imports. Any other test that asks for the `database`
  or `seeded_db` fixture starts it on first use.
- The line `database: PostgreSQL 18.x, embedded ...` (or why there is none) follows the
  collected-items line.
- `seeded_db` gives each spec its own fresh copy of the seeded blog database, dropped afterwards
  in the background; a spec that passed but left connections open fails with one line. How the
  teardown learns that the spec passed: kata_tools.spec_report (the contract with the kata plugin).
- A database problem (no copy, the server gone) fails the spec with one line that says so.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

import pytest

from kata_tools import catalog, i18n
from kata_tools.postgres.provisioning import Database, DatabaseProblem, DatabaseUnavailable, provision
from kata_tools.spec_report import call_report

DB_FIXTURES = ("database", "seeded_db")


def say(key: str, **fields) -> str:
    """The text `key` of kata_tools/messages/plugin.toml, in the learner's language."""
    return i18n.tool("plugin")(key, **fields)


LEAK_WAIT = 2.0  # a closed connection's backend leaves pg_stat_activity a moment after the client

_DB = pytest.StashKey[object]()
_EARLY = pytest.StashKey[Future]()  # the database starting while collection goes on


def wants_database(items) -> bool:
    return any(set(DB_FIXTURES) & set(getattr(item, "fixturenames", ())) for item in items)


_STARTING: list[int] = []  # starts under way in this process (for the Ctrl-C line)


def _provision_or_reason(warm: bool = False) -> Database | DatabaseUnavailable:
    _quiet_what_a_start_leaves()
    _STARTING.append(1)
    try:
        result = _provision(warm)
    except KeyboardInterrupt:
        raise  # stays counted: pytest_keyboard_interrupt says it in one line
    _STARTING.pop()
    return result


def _provision(warm: bool) -> Database | DatabaseUnavailable:
    try:
        db = provision()
    except DatabaseUnavailable as e:
        return e
    except Exception as e:  # a server problem: one line, never a traceback
        return DatabaseUnavailable(" ".join(str(e).split()) or type(e).__name__)
    if warm:
        try:
            db.warm_up()
        except Exception:
            pass  # the first spec that asks for a copy meets the error and reports it
    return db


def _in_background(fn, *args) -> Future:
    """Run fn in a daemon thread: Ctrl-C never waits for it (a pool's worker would be joined)."""
    future: Future = Future()

    def run() -> None:
        try:
            future.set_result(fn(*args))
        except BaseException as e:
            future.set_exception(e)

    threading.Thread(target=run, name="kata-db-start", daemon=True).start()
    return future


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> None:
    """Start the database in the background when a spec file of a database kata is collected."""
    config = parent.config
    if _EARLY in config.stash or _DB in config.stash or config.option.collectonly:
        return None
    if file_path.suffix == ".py" and file_path.name.startswith("test_"):
        kata = catalog.kata_of(file_path)
        if kata is not None and kata.needs_database:
            config.stash[_EARLY] = _in_background(_provision_or_reason, True)
    return None


def start_for_session(config: pytest.Config) -> Database | DatabaseUnavailable:
    """Start the database once; remember it (or the reason it failed) on the config."""
    if _DB not in config.stash:
        early = config.stash.get(_EARLY, None)
        config.stash[_DB] = early.result() if early is not None else _provision_or_reason()
        if isinstance(config.stash[_DB], Database):
            _install_sigterm_handler()
    db = config.stash[_DB]
    assert isinstance(db, (Database, DatabaseUnavailable))
    return db


def stop_for_session(config: pytest.Config) -> None:
    db = config.stash.get(_DB, None)
    if isinstance(db, Database):
        db.close()


def _install_sigterm_handler() -> None:
    """SIGTERM becomes KeyboardInterrupt, so pytest ends the session and stops the database.

    POSIX only in effect: on Windows a terminated process gets no signal; the reaper, which
    watches this process, stops the server then.
    """
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGTERM"):
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


@pytest.hookimpl(tryfirst=True)
def pytest_keyboard_interrupt(excinfo) -> None:
    """Ctrl-C while the database starts: one line (never initdb's log); its reaper stops it."""
    if _STARTING and _CONFIG:
        reporter = _CONFIG[-1].pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:  # written through pytest: its capture would swallow a print
            reporter.write_line(say("db-start-interrupted"))
        _drop_what_the_abandoned_start_leaves()


_ABANDONED: list[int] = []  # a start left to its daemon thread by Ctrl-C (at most one entry)


def _drop_what_the_abandoned_start_leaves() -> None:
    """The start thread goes on after Ctrl-C (a daemon; its reaper stops the server). A file it was
    reading then (pgserver scans /proc through psutil) may be freed unclosed, and pytest reported
    that ResourceWarning with a 60-line traceback under the one line above. It is not the
    learner's: from now on such warnings are dropped; any other unraisable error goes on as before."""
    _quiet_what_a_start_leaves()
    if not _ABANDONED:
        _ABANDONED.append(1)


def _left_by_a_start(unraisable) -> bool:
    """A ResourceWarning the start caused: any, once a start was abandoned; before that, a /proc
    file that pgserver's process scan (psutil) had open when Ctrl-C hit the start."""
    if not isinstance(unraisable.exc_value, ResourceWarning):
        return False
    return bool(_ABANDONED) or (
        bool(_STARTING) and str(getattr(unraisable.object, "name", None)).startswith("/proc/")
    )


def _quiet_what_a_start_leaves() -> None:
    """One hook in front of pytest's, for what a start leaves unclosed (_left_by_a_start).

    Installed when a start begins, not on Ctrl-C: a Ctrl-C can land inside psutil's read of /proc
    in this very thread, and the file is then freed before pytest_keyboard_interrupt runs (seen
    under load, 2026-12-03). Everything else goes to pytest as before."""
    previous = sys.unraisablehook
    if getattr(previous, "kata_start_leftovers", False):
        return

    def hook(unraisable) -> None:
        if not _left_by_a_start(unraisable):
            previous(unraisable)

    hook.kata_start_leftovers = True  # type: ignore[attr-defined]
    sys.unraisablehook = hook


_CONFIG: list[pytest.Config] = []


def pytest_configure(config: pytest.Config) -> None:
    _CONFIG.append(config)


def pytest_unconfigure(config: pytest.Config) -> None:
    early = config.stash.get(_EARLY, None)
    if early is not None and _DB not in config.stash:
        if not early.done():
            return  # interrupted while starting: the reaper stops the server when we are gone
        config.stash[_DB] = early.result()  # started for specs that were then not run
    stop_for_session(config)


def header_line(db: Database | DatabaseUnavailable) -> str:
    if isinstance(db, DatabaseUnavailable):
        return say("db-unavailable", reason=db)
    return say("db-header", version=db.version, description=db.description)


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


def _database_problem(what: str, e: BaseException) -> None:
    pytest.fail(say("db-problem", what=say(what), error=e), pytrace=False)


@pytest.fixture(scope="session")
def database(pytestconfig) -> Database:
    """The session's PostgreSQL server (started on first use)."""
    db = start_for_session(pytestconfig)
    if isinstance(db, DatabaseUnavailable):
        pytest.fail(say("db-none-for-spec", reason=db), pytrace=False)
    return db


@pytest.fixture
def seeded_db(database: Database, request):
    """A database of its own for this spec, with the blog schema and seed data; dropped after."""
    problem: Exception | None = None
    try:
        test_db = SeededDatabase(database.create_test_database(), database)
    except DatabaseProblem as e:
        problem = e
    if problem is not None:  # outside the except block: no "During handling of..." chain
        _database_problem("db-problem-no-copy", problem)
    yield test_db
    report = call_report(request.node)
    passed = report is not None and report.passed
    try:
        leftover = test_db.open_connections()
        deadline, pause = time.monotonic() + LEAK_WAIT, 0.005
        while leftover and passed and time.monotonic() < deadline:
            # A closed connection's server process leaves within milliseconds: look again soon,
            # then less often (a spec that closed 50 at once waited 0.05 s here for each look).
            time.sleep(pause)
            pause = min(pause * 2, 0.05)
            leftover = test_db.open_connections()
        if leftover:
            database.drop(test_db.name)  # now, WITH (FORCE): the next spec needs those slots
    except Exception as e:
        problem = e
    if problem is not None:
        database.drop_later(test_db.name)
        _database_problem("db-problem-check", problem)
    if not leftover:
        database.drop_later(test_db.name)  # in the background: the next spec does not wait
    if leftover and passed:
        pytest.fail(say("db-connections-left", leftover=leftover), pytrace=False)
