"""The database of the database katas: chosen once, clean per spec, never left running."""

import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from kata_tools import database

from conftest import ROOT

# These tests start whole pytest runs, each with its own embedded PostgreSQL.
pytestmark = pytest.mark.timeout(120)


def postgres_processes_for(folder: Path) -> int:
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    return sum(1 for line in out.splitlines() if str(folder) in line and "postgres" in line)


def embedded_folders_of(pid: int) -> set[Path]:
    """The embedded servers' folders that the run with this pid owns."""
    owned = set()
    for folder in Path(tempfile.gettempdir()).glob(database.PG_DIR_PREFIX + "*"):
        try:
            if int((folder / database.OWNER_FILE).read_text()) == pid:
                owned.add(folder)
        except (OSError, ValueError):
            pass
    return owned


def stopped_and_deleted(folders, within: float = 20.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not any(f.exists() or postgres_processes_for(f) for f in folders):
            return True
        time.sleep(0.2)
    return False


SPEC = textwrap.dedent(
    """
    import time
    from sqlalchemy import create_engine, text

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
        time.sleep(float(__import__("os").environ.get("SLEEP", "0")))
    """
)


@pytest.fixture
def spec_file(tmp_path):
    path = tmp_path / "test_db_spec.py"
    path.write_text(SPEC)
    return path


def pytest_run(spec_file, *args, env=None, **kwargs):
    run_env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "KATA_DATABASE_URL")}
    run_env.update(env or {})
    cmd = [sys.executable, "-m", "pytest", str(spec_file), "-q", "-p", "no:randomly",
           "-c", str(ROOT / "pyproject.toml"), "--rootdir", str(spec_file.parent),
           # The spec lies outside the project: load the plugins the root conftest would load.
           "-p", "kata_tools.pytest_plugin", "-p", "kata_tools.database", *args]
    return subprocess.Popen(cmd, cwd=ROOT, env=run_env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, **kwargs)


def test_each_spec_gets_fresh_seed_data_on_the_embedded_server_and_it_stops_after(spec_file):
    proc = pytest_run(spec_file, "-k", "writes or fresh")
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    assert "database: PostgreSQL 16" in out and "embedded PostgreSQL (pgserver) in " in out, out
    folder = Path(out.split("embedded PostgreSQL (pgserver) in ", 1)[1].split()[0])
    # The run does not wait for the deletion: its reaper stops the server and deletes the folder.
    assert stopped_and_deleted([folder]), "the embedded server was left behind"


def test_database_url_is_used_when_set(spec_file, database):
    proc = pytest_run(spec_file, "-k", "writes or fresh", env={"DATABASE_URL": database.admin_url})
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    assert "DATABASE_URL server" in out, out
    assert "pgserver" not in out.split("database:", 1)[1].splitlines()[0]


def test_an_unreachable_database_url_fails_database_specs_with_a_clear_message(spec_file):
    bad = "postgresql://nobody:secret@127.0.0.1:9/nowhere"
    proc = pytest_run(spec_file, "-k", "fresh", env={"DATABASE_URL": bad})
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1, out
    assert "database: unavailable: cannot reach the DATABASE_URL server at 127.0.0.1:9/nowhere" in out
    assert "secret" not in out, "never print the password"


def test_docker_absent_is_detected_at_once():
    start = time.perf_counter()
    answered = database._docker_answers()
    assert time.perf_counter() - start < 2.6
    if not Path("/var/run/docker.sock").exists() and not os.environ.get("DOCKER_HOST"):
        assert answered is False


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_a_killed_run_leaves_no_postgres_behind(spec_file, sig):
    proc = pytest_run(spec_file, "-k", "sleeps", "-o", "timeout=60", env={"SLEEP": "30"})
    deadline = time.monotonic() + 30
    while not embedded_folders_of(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    folders = embedded_folders_of(proc.pid)
    assert folders, "the run never started its embedded server"
    time.sleep(1.0)  # let it reach the sleeping spec
    proc.send_signal(sig)
    proc.communicate(timeout=60)
    assert stopped_and_deleted(folders), "a postgres process or its folder is still there"


def test_a_server_orphaned_by_a_dead_run_is_swept_by_the_next_run(tmp_path):
    # Fake an orphan: a folder whose owner pid is dead and whose postmaster is a sleeping process.
    orphan = Path(tempfile.mkdtemp(prefix=database.PG_DIR_PREFIX))
    (orphan / "data").mkdir()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    (orphan / "data" / "postmaster.pid").write_text(f"{sleeper.pid}\n")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (orphan / database.OWNER_FILE).write_text(str(dead.pid))

    swept = database.sweep_orphans()

    assert orphan in swept and not orphan.exists()
    assert sleeper.wait(timeout=10) == -signal.SIGQUIT
