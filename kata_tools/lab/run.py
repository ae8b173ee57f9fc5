"""The lab's command: measure the modes on a real server and database, print, draw, clean up.

Order of events: options are checked (a bad one: one line, exit 2) and the port is bound before
anything starts; then PostgreSQL (kata_tools.postgres.provision), then the server child; each
mode is prepared, warmed, calibrated (the same burst with T = 0: the server's own cost) and
measured, while other programs' share of the CPUs is sampled; the report and the SVG follow. Whatever happens, even
Ctrl-C or SIGTERM, the server and the database are stopped before the lab exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import cast

from kata_tools.lab.machine import Sampler, load_average
from kata_tools.lab.modes import MODES, MSG, Settings
from kata_tools.lab.options import Options, UsageError, invoke

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parents[2]


class LabError(Exception):
    """The lab could not run (no database, the server died): reported in one line, exit code 1."""


def listen(port: int) -> socket.socket:
    """Bind the server's socket here, before anything starts: a port in use is a usage error."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((HOST, port))
        sock.listen(2048)
    except OSError as e:
        sock.close()
        raise UsageError(MSG("port-in-use", port=port, host=HOST, reason=e.strerror)) from None
    sock.set_inheritable(True)
    return sock


# --- signals ----------------------------------------------------------------------------------


@contextlib.contextmanager
def sigterm_as_ctrl_c():
    """SIGTERM is handled like Ctrl-C, so it ends the run through the same clean-up."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, lambda *_: os.kill(os.getpid(), signal.SIGINT))
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def signals_held():
    """Clean-up must finish: Ctrl-C and SIGTERM wait until it has."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


# --- the server child -------------------------------------------------------------------------


class ServerProcess:
    """uvicorn serving kata_tools.lab.server in a child process, on the socket bound here."""

    def __init__(self, database_url: str, sock: socket.socket, loop: str, http: str):
        self.port = sock.getsockname()[1]
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - the server's log for its whole life; stop() closes it
        env = dict(os.environ, KATA_LAB_DATABASE_URL=database_url)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kata_tools.lab.server",
                "--fd",
                str(sock.fileno()),
                "--parent",
                str(os.getpid()),
                "--loop",
                loop,
                "--http",
                http,
            ],
            pass_fds=(sock.fileno(),),
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=self.log,
            env=env,
            start_new_session=True,  # Ctrl-C reaches the lab only; the lab stops the server
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def last_words(self) -> str:
        self.log.seek(0)
        lines = [line for line in self.log.read().decode(errors="replace").splitlines() if line.strip()]
        return lines[-1].strip() if lines else "no output"

    async def ready(self, timeout: float = 60.0) -> None:
        from kata_tools.lab.client import HTTPError, request

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise LabError(MSG("server-exited", code=self.proc.returncode, words=self.last_words()))
            try:
                if (await request(HOST, self.port, "GET", "/lab/health", timeout=1.0)).status == 200:
                    return
            except HTTPError:
                await asyncio.sleep(0.05)
        raise LabError(MSG("server-silent", timeout=f"{timeout:g}", words=self.last_words()))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()  # uvicorn shuts down: lifespan disposes the engines
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


# --- measuring --------------------------------------------------------------------------------


def check_room(database_url: str, settings: Settings, modes: list[str]) -> None:
    """The largest pool must fit in what PostgreSQL still accepts (max_connections)."""
    import psycopg2

    needed = max(MODES[m].capacity(settings) for m in modes)
    conn = psycopg2.connect(database_url)
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW max_connections")
            limit = int(cur.fetchone()[0])
            cur.execute("SHOW superuser_reserved_connections")
            reserved = int(cur.fetchone()[0])
            cur.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
            if not cur.fetchone()[0]:
                limit -= reserved
            cur.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
            )
            room = limit - cur.fetchone()[0]
    finally:
        conn.close()
    if needed > room:
        raise UsageError(MSG("no-room", needed=needed, room=room, limit=limit))


async def measure(server: ServerProcess, args: Options, progress) -> list:
    from kata_tools.lab.client import burst, request
    from kata_tools.lab.results import Machine, ModeResult

    s: Settings = args.settings
    sampler = Sampler()
    await server.ready()
    results = []
    for name in args.modes:
        mode = MODES[name]
        limit = mode.predicted(s) * 3 + 30  # waits longer than this are failures, not data
        reply = await request(
            HOST,
            server.port,
            "POST",
            f"/lab/prepare?mode={name}&pool={s.pool_size}&threads={s.threads}&timeout={limit:g}",
            timeout=120,
        )
        if reply.status != 200:
            raise LabError(MSG("prepare-failed", mode=name, error=reply.json().get("error", reply.body)))
        # A short burst first, as many at once as the mode can run: a running server's routes,
        # driver and worker threads are warm when the clock starts (anyio starts threads lazily).
        await burst(HOST, server.port, [f"/{name}/-1/0.02"] * min(mode.capacity(s), s.clients), timeout=limit)
        task = progress.start(name, s.clients)
        # Calibration: the same N requests with T = 0. What they take is the server's own work
        # (accept, parse, route, the driver's round trip, the reply), the part no rule predicts.
        calibration = await burst(HOST, server.port, [f"/{name}/-2/0"] * s.clients, timeout=limit)
        # burst() sets every Timing's `ended` (None only while the request is in flight)
        server_cost = max(cast(float, t.ended) for t in calibration) - min(t.sent for t in calibration)
        sampler.start()
        timings = await burst(
            HOST,
            server.port,
            [f"/{name}/{i}/{s.latency!r}" for i in range(s.clients)],
            on_reply=lambda _, task=task: progress.advance(task),
            timeout=limit,
        )
        machine = Machine(sampler.cpus, load_average(), sampler.share())
        records = (await request(HOST, server.port, "GET", "/lab/records", timeout=30)).json()
        result = ModeResult.build(mode, s, timings, [r for r in records if r["i"] >= 0])
        result.server_cost, result.machine = server_cost, machine
        progress.done(task, result)
        results.append(result)
    return results


def run_client(coro):
    """Run the lab's own side (the client that times the server) on uvloop where installed.

    The client is the measuring instrument, whatever engine the server is given: its own work per
    request (writing the request, reading the reply, on 100 connections at once) shares the two
    cores of a small machine with the server and PostgreSQL, so it is kept as light as can be.
    """
    try:
        import uvloop
    except ImportError:  # Windows, or not installed: the standard loop
        return asyncio.run(coro)
    return uvloop.run(coro)


class Progress:
    """A rich progress bar per mode in a terminal; a plain line per mode otherwise."""

    def __init__(self, console):
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as RichProgress

        self.console = console
        self.live = console.is_terminal
        self.bar = RichProgress(
            TextColumn("{task.description:<18}"),
            BarColumn(bar_width=30),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            disable=not self.live,
        )

    def __enter__(self):
        self.bar.__enter__()
        return self

    def __exit__(self, *exc):
        return self.bar.__exit__(*exc)

    def start(self, name: str, total: int):
        if not self.live:
            self.console.print("lab: " + MSG("mode-start", mode=name, n=total), highlight=False)
        return self.bar.add_task(name, total=total)

    def advance(self, task) -> None:
        self.bar.advance(task)

    def done(self, task, result) -> None:
        if not self.live:
            self.console.print(
                "lab: " + MSG("mode-done", mode=result.mode.name, seconds=result.measured), highlight=False
            )


# --- the command ------------------------------------------------------------------------------


def main(argv: list[str] | None = None, prog: str = "kata lab") -> int:
    def run(options: Options) -> int:
        sock = listen(options.port)  # a port in use is a usage error, before anything starts
        with sigterm_as_ctrl_c():
            try:
                return _run(options, sock, prog)
            except LabError as e:
                print(MSG("error", prog=prog, message=e), file=sys.stderr)
                return 1
            except KeyboardInterrupt:
                print(f"{prog}: " + MSG("interrupted"), file=sys.stderr)
                return 130

    return invoke(argv, prog, run)


def _run(args: Options, sock: socket.socket, prog: str) -> int:
    from rich.console import Console

    from kata_tools import postgres as database

    err, out = Console(stderr=True), Console()

    def say(message: str) -> None:
        err.print(f"lab: {message}", soft_wrap=True, highlight=False, markup=False)

    db = server = None
    try:
        say(MSG("starting-db"))
        try:
            db = database.provision()
        except database.DatabaseUnavailable as e:
            raise LabError(str(e)) from None
        say(MSG("database", version=db.version, description=db.description))
        check_room(db.admin_url, args.settings, args.modes)
        server = ServerProcess(db.admin_url, sock, args.loop, args.http)
        sock.close()  # the child holds its own copy of the listening socket
        say(MSG("server", host=HOST, port=server.port, pid=server.pid, loop=args.loop, http=args.http))
        with Progress(err) as progress:
            results = run_client(measure(server, args, progress))
    finally:
        with signals_held():
            if server is not None:
                server.stop()
            sock.close()
            if db is not None:
                db.close()
    report(out, args, results, db)
    return 1 if any(r.errors for r in results) else 0


def report(out, args: Options, results, db) -> None:
    from kata_tools.lab import svg, view

    out.print(view.table(results, args.loop, args.http))
    for r in results:
        if r.errors:
            out.print(
                "[red]"
                + MSG("failed-requests", mode=r.mode.name, count=len(r.errors), first=r.errors[0])
                + "[/]"
            )
    out.print(view.legend())
    t_shared = max(view.span(r) for r in results) if args.scale == "shared" else None
    for r in results:
        out.print(view.timeline(r, out.width, args.rows, t_shared))
    for line in view.verdicts(results):
        out.print(line, highlight=False)
    Path(args.output).write_text(svg.render(results, shared=args.scale == "shared"), encoding="utf-8")
    out.print(MSG("written", path=args.output), highlight=False)
    if args.json:
        Path(args.json).write_text(json.dumps(to_json(args, results, db), indent=1), encoding="utf-8")


def to_json(args: Options, results, db) -> dict:
    return {
        "settings": asdict(args.settings) | {"pool_size": args.settings.pool_size},
        "database": f"PostgreSQL {db.version}, {db.kind}",
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "loop": args.loop,
        "http": args.http,
        "modes": [r.to_json() for r in results],
    }
