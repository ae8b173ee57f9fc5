"""A Python that has imported the course's libraries once and forks one pytest run per request.

Why (benchmarks/FEEDBACK.md): before its first spec, a database kata's run spends about a second
importing FastAPI, SQLAlchemy, pydantic, asyncpg, httpx and uvicorn, on every run, though they never
change. `kata watch` re-runs one kata on every save: this process imports them once, and each run is
a fork of it that calls `pytest.main()` with the arguments, environment and working directory of
`python -m pytest`. The learner's files, the specs and the kata plugin are imported in the child,
fresh each run, never here: an edit is always seen.

Linux only. Forking after these imports is safe there; macOS system libraries are not fork-safe
(CPython's multiprocessing uses spawn on macOS for that reason) and Windows has no fork. Elsewhere,
and whenever this process is not ready, refuses or has died, a run is a plain subprocess.

Protocol, JSON lines on this process's stdin and stdout:

    server -> parent   {"ready": true}                       once, after the imports
    parent -> server   {"args": [...], "cwd": "...", "env": {...}, "output": "/a/file"}
    server -> parent   {"pid": N}, and when the run ends {"exit": code}  (or {"refused": why})

The server ends when its stdin closes: the watch session ended, or died.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

# What the specs of the database katas import, and the plugins every run loads (their modules
# hold no state until a session starts). A module missing here is imported, and its absence
# reported, by the run itself.
PRELOAD = (
    "pytest",
    "fastapi",
    "sqlalchemy.ext.asyncio",
    "sqlalchemy.orm",
    "asyncpg",
    # The dialects a spec's first create_engine / create_async_engine imports (0.1 s in each run).
    "sqlalchemy.dialects.postgresql.asyncpg",
    "sqlalchemy.dialects.postgresql.psycopg2",
    "psycopg2.extras",
    # The given blog app (models, schemas, seed, the notes' database module): code the learner
    # reads, never edits (their files are in katas/), and builds nothing at import. 0.1-0.2 s.
    "kata_blog.models",
    "kata_blog.schemas",
    "kata_blog.seed",
    "kata_blog.database",
    "httpx",
    "uvicorn",
    "psycopg2",
    "pytest_asyncio.plugin",
    "pytest_timeout",
    "kata_tools.pytest_plugin",
    "kata_tools.postgres.plugin",
    "kata_tools.fast_feedback",
    "kata_tools.serving",
)
SUPPORTED = sys.platform.startswith("linux")
# pytest rewrites the asserts of plugin packages (pytest-asyncio, pytest-timeout, anyio) only when
# it imports them itself, and warns when they were imported before it, an error under the course's
# filterwarnings. Their asserts are not the specs' (those are imported fresh in each run): ignored.
REWRITE_WARNING = "Module already imported so cannot be rewritten"


def serve() -> None:
    for name in PRELOAD:
        with contextlib.suppress(Exception):
            importlib.import_module(name)
    _preload_pytest_plugins()
    # What the imports left as garbage goes now; the rest is frozen, so a child's collections
    # never walk (nor copy-on-write) the libraries' objects: 50 ms of each run's collection.
    gc.collect()
    gc.freeze()
    channel = os.dup(1)  # the protocol's own descriptor: a child's fd 1 becomes its output file

    def send(message: dict) -> None:
        os.write(channel, (json.dumps(message) + "\n").encode())

    send({"ready": True})
    for line in sys.stdin:
        request = json.loads(line)
        if threading.active_count() != 1:  # never fork a process with threads
            send({"refused": f"{threading.active_count()} threads"})
            continue
        pid = os.fork()
        if pid == 0:
            os.close(channel)
            _child(request)  # never returns
        send({"pid": pid})
        _, status = os.waitpid(pid, 0)
        send({"exit": os.waitstatus_to_exitcode(status)})


def _preload_pytest_plugins() -> None:
    """pytest's own plugins, imported by every pytest.main() (unittest alone costs 60 ms)."""
    with contextlib.suppress(Exception):
        from _pytest.config import default_plugins

        for name in default_plugins:
            with contextlib.suppress(Exception):
                importlib.import_module(f"_pytest.{name}")


def _child(request: dict) -> None:
    code = 3  # pytest's INTERNAL_ERROR, if even the set-up below fails
    try:
        fd = os.open(request["output"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.environ.clear()
        os.environ.update(request["env"])
        sys.pycache_prefix = request["env"].get("PYTHONPYCACHEPREFIX")  # read only at start-up
        os.chdir(request["cwd"])
        sys.path[0] = request["cwd"]  # as `python -m pytest` run there has it
        sys.argv = [sys.argv[0], *request["args"]]
        import pytest

        quiet = ["-W", f"ignore:{REWRITE_WARNING}:pytest.PytestAssertRewriteWarning"]
        code = int(pytest.main([*request["args"], *quiet]))
    except BaseException:  # the child must end here, whatever happened
        import traceback

        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        with contextlib.suppress(Exception):
            from kata_tools.plugin.shared import stop_child_processes

            stop_child_processes()  # as the fast exit of a plain run does (kata_tools.fast_feedback)
        os._exit(code)


class _Lines:
    """JSON lines read from a pipe, each with a deadline."""

    def __init__(self, fd: int):
        self.fd, self.buffer = fd, b""

    def next(self, timeout: float | None) -> dict | None:
        """The next message; None at end of file; TimeoutError past `timeout` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self.buffer:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not select.select([self.fd], [], [], left)[0]:
                raise TimeoutError
            chunk = os.read(self.fd, 65536)
            if not chunk:
                return None
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return json.loads(line)


class Preloaded:
    """The parent's side: start the server, hand it runs (`popen`), close it."""

    def __init__(self, root: Path, env: dict[str, str]):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kata_tools.preloaded"],
            cwd=root,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C in the terminal goes to the watch, which stops the run
        )
        assert self.proc.stdout is not None
        self.lines = _Lines(self.proc.stdout.fileno())
        self.state = "starting"  # then "ready" or "gone"

    def ready(self, wait: float) -> bool:
        if self.state == "starting":
            try:
                message = self.lines.next(wait)
            except TimeoutError:
                return False
            self.state = "ready" if message == {"ready": True} else "gone"
        return self.state == "ready"

    def popen(self, cmd: list[str], cwd: Path, env: dict[str, str], output: Path) -> ForkedRun | None:
        """A run of `cmd` (python -m pytest ...) as a fork, or None: run it as a subprocess."""
        if cmd[1:3] != ["-m", "pytest"] or not self.ready(wait=10.0):
            return None
        request = {"args": cmd[3:], "cwd": str(cwd), "env": env, "output": str(output)}
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write((json.dumps(request) + "\n").encode())
            self.proc.stdin.flush()
            message = self.lines.next(timeout=10.0)
        except (OSError, TimeoutError):
            message = None
        if not message or "pid" not in message:
            self.close()  # refused, or gone: every later run is a plain subprocess
            return None
        return ForkedRun(self, cmd, message["pid"], output)

    def close(self) -> None:
        self.state = "gone"
        with contextlib.suppress(OSError):
            if self.proc.stdin:
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()


class ForkedRun:
    """What kata_tools.runner needs of a subprocess.Popen, for a run forked by the server."""

    def __init__(self, server: Preloaded, cmd: list[str], pid: int, output: Path):
        self.server, self.args, self.pid, self.output = server, cmd, pid, output
        self.returncode: int | None = None

    def communicate(self, timeout: float | None = None) -> tuple[bytes, None]:
        if self.returncode is None:
            try:
                message = self.server.lines.next(timeout)
            except TimeoutError:
                raise subprocess.TimeoutExpired(self.args, timeout or 0) from None
            if message is None:  # the server died with the run
                self.server.close()
                self.returncode = -signal.SIGKILL
            else:
                self.returncode = int(message.get("exit", 1))
        try:
            return self.output.read_bytes(), None
        except OSError:
            return b"", None

    def _signal(self, sig: int) -> None:
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(self.pid, sig)

    def terminate(self) -> None:
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)


if __name__ == "__main__":
    serve()
