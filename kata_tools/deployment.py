"""Worker processes of one deployment, as kata 13 runs them: W processes, each with its own engine
of the same pool settings, each asking its pool for `demand` connections at once and holding what
it got until the spec has counted.

Why a parent that forks: a fresh interpreter that imports SQLAlchemy costs about 0.25 s of CPU,
and kata 13 starts 11 workers per run. So one process per test session (the "zygote") imports
SQLAlchemy and the driver once, then forks each run's workers from itself: they start in a few
milliseconds, single-threaded parent, no engine or connection made before the fork. Where there
is no fork (Windows), the zygote starts each worker as a fresh interpreter instead: slower, the
same behaviour. The zygote leads a process group of its own, so killing the group ends every
worker with it, even one stuck in a connect.

The two sides speak JSON lines. Spec -> zygote: a run {"url", "settings", "workers", "demand",
"wait"}, then {"release": true}. Zygote -> spec: {"reports": [...]} once every worker holds what
it got (each report {"got", "errors", "timeouts"} or {"crash": "<the error>"}), then
{"released": n}. Run as a script, this file is the zygote (it imports nothing of kata_tools).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeout


class WorkersTooSlow(Exception):
    """The workers did not all report within the time allowed."""


class WorkerCrashed(Exception):
    """A worker could not do its job (its error, one line)."""


def take_and_hold(url: str, settings: dict, demand: int, wait: float, report, release) -> None:
    """One worker: `demand` threads each take a connection from one engine and keep it; write the
    report as one JSON line to `report`, then hold everything until `release` reaches EOF."""
    from sqlalchemy import create_engine, exc, text

    engine = create_engine(url, **{**settings, "pool_timeout": wait})
    held, errors, crashes, timeouts, lock = [], [], [], [0], threading.Lock()

    def take():
        try:
            conn = engine.connect()
            conn.execute(text("SELECT 1"))
        except exc.TimeoutError:  # beyond the pool's limit: it waited `wait` s and gave up
            with lock:
                timeouts[0] += 1
        except exc.OperationalError as e:  # the server refused the connection
            with lock:
                message = str(e).strip()
                message = message.split("FATAL:")[-1].strip() if "FATAL:" in message else message
                errors.append(type(e).__name__ + ": " + message.splitlines()[0][:160])
        except Exception as e:  # a setting the pool cannot work with (a string for a number...)
            with lock:
                crashes.append(_one_line(e))
        else:
            with lock:
                held.append(conn)

    threads = [threading.Thread(target=take) for _ in range(demand)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result = (
        {"crash": crashes[0]} if crashes else {"got": len(held), "errors": errors, "timeouts": timeouts[0]}
    )
    report.write(json.dumps(result) + "\n")
    report.flush()
    release.read()  # EOF: the spec has counted
    for conn in held:
        conn.close()
    engine.dispose()


def _one_line(error: BaseException) -> str:
    import traceback

    return traceback.format_exception_only(type(error), error)[-1].strip()


# Runs this file as __main__ with nothing of the caller's folder on sys.path, so that no module
# beside it can stand in for a standard one.
BOOT = "import runpy, sys; sys.argv = sys.argv[1:]; del sys.path[0]; runpy.run_path(sys.argv[0], run_name='__main__')"


def _fork_worker(run: dict, earlier: list):
    """A worker forked from the zygote: (pid, its report stream, the write end of its release).
    `earlier`: the streams the zygote holds for this run's other workers."""
    report_r, report_w = os.pipe()
    release_r, release_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the worker: never return into the zygote's loop
        code = 0
        try:
            # Only its own two pipe ends: a copy of another worker's release end would keep
            # that worker from ever seeing EOF, and a copy of the zygote's stdout would keep
            # the spec from seeing the zygote end.
            for _, stream, release in earlier:
                os.close(stream.fileno())
                os.close(release.fileno())
            os.close(report_r)
            os.close(release_w)
            devnull = os.open(os.devnull, os.O_RDWR)
            os.dup2(devnull, 0)
            os.dup2(devnull, 1)
            with os.fdopen(report_w, "w") as report, os.fdopen(release_r) as release:
                try:
                    take_and_hold(run["url"], run["settings"], run["demand"], run["wait"], report, release)
                except BaseException as e:  # the spec shows it as the worker's crash
                    report.write(json.dumps({"crash": _one_line(e)}) + "\n")
                    report.flush()
        except BaseException:  # even the report failed: exit all the same
            code = 1
        finally:
            os._exit(code)
    os.close(report_w)
    os.close(release_r)
    return pid, os.fdopen(report_r), os.fdopen(release_w, "w")


def _spawn_worker(run: dict, earlier: list):
    """Where there is no fork (Windows): the same worker in a fresh interpreter."""
    job = json.dumps(
        {"url": run["url"], "settings": run["settings"], "demand": run["demand"], "wait": run["wait"]}
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", BOOT, __file__, "--worker", job],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,  # its stderr is the zygote's (a file: see Deployment)
        text=True,
    )
    return proc, proc.stdout, proc.stdin


def _report(stream) -> dict:
    line = stream.readline()
    return json.loads(line) if line else {"crash": "no output"}  # killed before it could say


def _wait(proc) -> None:
    """Until the worker has exited (its streams are the zygote's to close)."""
    if isinstance(proc, subprocess.Popen):
        proc.wait()
    else:
        os.waitpid(proc, 0)


def zygote() -> None:
    """The zygote's loop: one run, then its release, until stdin closes."""
    # Imported once here, so that each forked worker has them already.
    import psycopg2.extras  # noqa: F401 - the dialect uses it on connect
    import sqlalchemy.dialects.postgresql.psycopg2  # noqa: F401

    start = _fork_worker if hasattr(os, "fork") else _spawn_worker
    for line in sys.stdin:
        run = json.loads(line)
        workers: list = []
        for _ in range(run["workers"]):
            workers.append(start(run, workers))
        reports = [_report(stream) for _, stream, _ in workers]
        print(json.dumps({"reports": reports}), flush=True)
        sys.stdin.readline()  # {"release": true}, or EOF
        for *_, release in workers:
            release.close()
        for proc, stream, _ in workers:
            _wait(proc)
            stream.close()
        print(json.dumps({"released": len(workers)}), flush=True)


class Deployment:
    """The spec's side: one zygote for the session, started at once so that it imports while the
    spec does other work; `run()` then `release()` per run; `close()` at the end."""

    def __init__(self):
        self.errors = tempfile.TemporaryFile("w+")  # noqa: SIM115 - as long as the zygote lives
        self.proc = subprocess.Popen(
            [sys.executable, "-c", BOOT, __file__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            # A file, not a pipe: nobody reads it between runs, and a full pipe would stop every
            # worker that warns. Read only for a zygote's last words.
            stderr=self.errors,
            text=True,
            start_new_session=True,  # its own process group: see close()
        )
        self.reader = ThreadPoolExecutor(1)

    def _ask(self, message: dict, timeout: float) -> dict:
        try:
            self.proc.stdin.write(json.dumps(message) + "\n")
            self.proc.stdin.flush()
            line = self.reader.submit(self.proc.stdout.readline).result(timeout=timeout)
        except FuturesTimeout:
            self.close()
            raise WorkersTooSlow from None
        except OSError:  # the zygote is gone
            line = ""
        if not line:  # the zygote ended: its last words
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
            self.errors.seek(0)
            problem = self.errors.read().strip().splitlines()[-1:]
            self.close()
            raise WorkerCrashed(problem[0][:200] if problem else "no output")
        return json.loads(line)

    def run(
        self, url: str, settings: dict, workers: int, demand: int, wait: float, timeout: float
    ) -> list[dict]:
        """Start the workers; return their reports once each holds what it got."""
        run = {"url": url, "settings": settings, "workers": workers, "demand": demand, "wait": wait}
        reports = self._ask(run, timeout)["reports"]
        for report in reports:
            if "crash" in report:
                self.release()
                raise WorkerCrashed(report["crash"])
        return reports

    def release(self, timeout: float = 30) -> None:
        """Let every worker close its connections and exit; return once they have."""
        self._ask({"release": True}, timeout)

    def close(self) -> None:
        """End the zygote and every worker in its process group, whatever state they are in."""
        try:
            self.proc.stdin.close()  # a zygote between runs holds nothing: no need to wait for it
        except OSError:
            pass
        if hasattr(os, "killpg"):  # POSIX: forked workers are in the zygote's group
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        else:  # Windows: spawned workers end when their stdin closes with the zygote
            self.proc.kill()
        self.proc.wait()
        self.reader.shutdown(wait=False)
        for stream in (self.proc.stdin, self.proc.stdout, self.errors):
            try:
                stream.close()
            except OSError:
                pass


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        job = json.loads(sys.argv[2])
        try:
            take_and_hold(job["url"], job["settings"], job["demand"], job["wait"], sys.stdout, sys.stdin)
        except BaseException as e:  # as a forked worker says it
            print(json.dumps({"crash": _one_line(e)}), flush=True)
    else:
        zygote()
