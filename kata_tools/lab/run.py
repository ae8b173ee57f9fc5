"""The lab's command: measure the modes on a real server and database, print, draw, clean up.

Order of events: options are checked (a bad one: one line, exit 2) and the port is bound before
anything starts; then PostgreSQL (kata_tools.database.provision), then the server child; each
mode is prepared, warmed and measured; the report and the SVG follow. Whatever happens, even
Ctrl-C or SIGTERM, the server and the database are stopped before the lab exits.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
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

from kata_tools.lab.modes import MODES, Settings

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parents[2]


class UsageError(Exception):
    """A bad option: reported in one line, exit code 2."""


class LabError(Exception):
    """The lab could not run (no database, the server died): reported in one line, exit code 1."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse prints usage and exits; the lab says one line instead
        raise UsageError(message)


def parse(argv: list[str] | None, prog: str) -> argparse.Namespace:
    p = _Parser(
        prog=prog,
        description="Serve N concurrent requests that each wait T on PostgreSQL, in each mode, on "
        "a real uvicorn server; print the measured figures beside the rules' predictions and draw "
        "every request's timeline.",
        epilog="modes:\n" + "\n".join(f"  {m.name:<20} {m.blurb} ({m.rule})" for m in MODES.values()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("-n", "--clients", type=int, default=100, metavar="N",
                   help="requests sent at once (default 100)")
    p.add_argument("-t", "--latency", type=float, default=0.1, metavar="T",
                   help="seconds each request waits on the database, SELECT pg_sleep(T) (default 0.1)")
    p.add_argument("--pool-size", type=int, default=None, metavar="P",
                   help="pool of the `threads` and `async-pool` modes (default: N)")
    p.add_argument("--threads", type=int, default=40, metavar="K",
                   help="thread limit of the `threads` mode (default 40, anyio's default)")
    p.add_argument("--modes", default="all", metavar="LIST",
                   help=f"comma-separated, of: {', '.join(MODES)} (default all)")
    p.add_argument("-o", "--output", default="lab-timeline.svg", metavar="FILE",
                   help="where to write the SVG timeline (default lab-timeline.svg)")
    p.add_argument("--json", default=None, metavar="FILE",
                   help="also write every figure and lane as JSON")
    p.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    p.add_argument("--rows", type=int, default=25,
                   help="text rows per timeline panel in the terminal, two lanes a row (default 25)")
    args = p.parse_args(argv)

    if args.clients <= 0:
        raise UsageError(f"-n/--clients must be at least 1 (got {args.clients})")
    if not math.isfinite(args.latency) or args.latency < 0:
        raise UsageError(f"-t/--latency must be 0 or more seconds (got {args.latency:g})")
    for name in ("pool_size", "threads", "rows"):
        value = getattr(args, name)
        if value is not None and value <= 0:
            raise UsageError(f"--{name.replace('_', '-')} must be at least 1 (got {value})")
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be 0-65535 (got {args.port})")
    names = [m.strip() for m in args.modes.split(",") if m.strip()]
    if args.modes == "all":
        names = list(MODES)
    unknown = [m for m in names if m not in MODES]
    if unknown or not names:
        raise UsageError(f"unknown mode {', '.join(map(repr, unknown)) or repr(args.modes)}; "
                         f"the modes are: {', '.join(MODES)}")
    args.modes = list(dict.fromkeys(names))
    for option, path in (("-o/--output", args.output), ("--json", args.json)):
        if path is not None and not Path(path).resolve().parent.is_dir():
            raise UsageError(f"{option}: folder {Path(path).parent} does not exist")
    args.settings = Settings(args.clients, args.latency, args.pool_size, args.threads)
    return args


def listen(port: int) -> socket.socket:
    """Bind the server's socket here, before anything starts: a port in use is a usage error."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((HOST, port))
        sock.listen(2048)
    except OSError as e:
        sock.close()
        raise UsageError(f"port {port} on {HOST} is in use ({e.strerror})") from None
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

    def __init__(self, database_url: str, sock: socket.socket):
        self.port = sock.getsockname()[1]
        self.log = tempfile.TemporaryFile()
        env = dict(os.environ, KATA_LAB_DATABASE_URL=database_url)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kata_tools.lab.server",
             "--fd", str(sock.fileno()), "--parent", str(os.getpid())],
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
        lines = [l for l in self.log.read().decode(errors="replace").splitlines() if l.strip()]
        return lines[-1].strip() if lines else "no output"

    async def ready(self, timeout: float = 60.0) -> None:
        from kata_tools.lab.client import HTTPError, request

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise LabError(f"the server exited at start (code {self.proc.returncode}): "
                               f"{self.last_words()}")
            try:
                if (await request(HOST, self.port, "GET", "/lab/health", timeout=1.0)).status == 200:
                    return
            except HTTPError:
                await asyncio.sleep(0.05)
        raise LabError(f"the server did not answer within {timeout:g} s: {self.last_words()}")

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
        raise UsageError(
            f"the modes need {needed} connections at once, but PostgreSQL accepts only {room} more "
            f"(max_connections {limit}); lower --pool-size (or -n)"
        )


async def measure(server: ServerProcess, args, progress) -> list:
    from kata_tools.lab.client import burst, request
    from kata_tools.lab.results import ModeResult

    s: Settings = args.settings
    await server.ready()
    results = []
    for name in args.modes:
        mode = MODES[name]
        limit = mode.predicted(s) * 3 + 30  # waits longer than this are failures, not data
        reply = await request(
            HOST, server.port, "POST",
            f"/lab/prepare?mode={name}&pool={s.pool_size}&threads={s.threads}&timeout={limit:g}",
            timeout=120,
        )
        if reply.status != 200:
            raise LabError(f"preparing mode {name} failed: {reply.json().get('error', reply.body)}")
        # A short burst first, as many at once as the mode can run: a running server's routes,
        # driver and worker threads are warm when the clock starts (anyio starts threads lazily).
        await burst(HOST, server.port, [f"/{name}/-1?t=0.02"] * min(mode.capacity(s), s.clients),
                    timeout=limit)
        task = progress.start(name, s.clients)
        timings = await burst(
            HOST, server.port, [f"/{name}/{i}?t={s.latency!r}" for i in range(s.clients)],
            on_reply=lambda _: progress.advance(task), timeout=limit,
        )
        records = (await request(HOST, server.port, "GET", "/lab/records", timeout=30)).json()
        result = ModeResult.build(mode, s, timings, [r for r in records if r["i"] >= 0])
        progress.done(task, result)
        results.append(result)
    return results


class Progress:
    """A rich progress bar per mode in a terminal; a plain line per mode otherwise."""

    def __init__(self, console):
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as RichProgress

        self.console = console
        self.live = console.is_terminal
        self.bar = RichProgress(
            TextColumn("{task.description:<20}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), console=console, disable=not self.live,
        )

    def __enter__(self):
        self.bar.__enter__()
        return self

    def __exit__(self, *exc):
        return self.bar.__exit__(*exc)

    def start(self, name: str, total: int):
        if not self.live:
            self.console.print(f"lab: mode {name}: {total} requests at once ...", highlight=False)
        return self.bar.add_task(name, total=total)

    def advance(self, task) -> None:
        self.bar.advance(task)

    def done(self, task, result) -> None:
        if not self.live:
            self.console.print(f"lab: mode {result.mode.name}: done in {result.measured:.3f} s",
                               highlight=False)


# --- the command ------------------------------------------------------------------------------


def main(argv: list[str] | None = None, prog: str = "kata lab") -> int:
    try:
        args = parse(argv, prog)
        sock = listen(args.port)
    except UsageError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    except SystemExit as e:  # --help
        return e.code if isinstance(e.code, int) else 0
    with sigterm_as_ctrl_c():
        try:
            return _run(args, sock, prog)
        except UsageError as e:
            print(f"{prog}: error: {e}", file=sys.stderr)
            return 2
        except LabError as e:
            print(f"{prog}: error: {e}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print(f"{prog}: interrupted; the server and the database are stopped", file=sys.stderr)
            return 130


def _run(args, sock: socket.socket, prog: str) -> int:
    from rich.console import Console

    from kata_tools import postgres as database

    err, out = Console(stderr=True), Console()

    def say(message: str) -> None:
        err.print(f"lab: {message}", soft_wrap=True, highlight=False, markup=False)

    db = server = None
    try:
        say("starting PostgreSQL ...")
        try:
            db = database.provision()
        except database.DatabaseUnavailable as e:
            raise LabError(str(e)) from None
        say(f"database: PostgreSQL {db.version}, {db.description}")
        check_room(db.admin_url, args.settings, args.modes)
        server = ServerProcess(db.admin_url, sock)
        sock.close()  # the child holds its own copy of the listening socket
        say(f"server: uvicorn on http://{HOST}:{server.port} (pid {server.pid})")
        with Progress(err) as progress:
            results = asyncio.run(measure(server, args, progress))
    finally:
        with signals_held():
            if server is not None:
                server.stop()
            sock.close()
            if db is not None:
                db.close()
    report(out, args, results, db)
    return 1 if any(r.errors for r in results) else 0


def report(out, args, results, db) -> None:
    from kata_tools.lab import svg, view

    out.print(view.table(results))
    for r in results:
        if r.errors:
            out.print(f"[red]{r.mode.name}: {len(r.errors)} request(s) failed; first: {r.errors[0]}[/]")
    out.print(view.legend())
    for r in results:
        out.print(view.timeline(r, out.width, args.rows))
    bars = [r for r in results if r.bar is not None and r.ratio is not None]
    if bars:
        out.print("Quality bars (measured / predicted): " + "; ".join(
            f"{r.mode.name} {r.ratio:.2f} {r.bar} {'met' if r.bar_met else 'MISSED'}" for r in bars
        ), highlight=False)
    Path(args.output).write_text(svg.render(results), encoding="utf-8")
    out.print(f"Timeline written to {args.output}", highlight=False)
    if args.json:
        data = {
            "settings": asdict(args.settings) | {"pool_size": args.settings.pool_size},
            "database": f"PostgreSQL {db.version}, {db.kind}",
            "python": sys.version.split()[0],
            "cpus": os.cpu_count(),
            "modes": [r.to_json() for r in results],
        }
        Path(args.json).write_text(json.dumps(data, indent=1), encoding="utf-8")
