"""A pristine tree per kata, the learner's files copied in safely, and one bounded pytest process.

- `make_tree` copies the course's grading parts (katas/ specs, kata_tools/, kata_blog/, the
  root conftest.py, pyproject.toml, grading.toml) from the grading course: never solutions/,
  tests/, .git or caches.
- `copy_learner_files` takes, from the learner's checkout, only the files the kata's kata.toml
  declares, each opened without following a symlink at any step of its path, a regular file no
  larger than MAX_LEARNER_FILE. Anything else of the checkout is never read.
- `run_kata` runs pytest on that one kata folder in its own process group with a time limit:
  plugin autoload off (PYTEST_DISABLE_PLUGIN_AUTOLOAD=1) and the plugins the specs need loaded
  by name, `--import-mode=importlib` (no kata folder on sys.path), Python's -E (no PYTHON*
  variables) and -s (no user site), bytecode only in a private folder. The command and the
  environment are kata_tools/runner.py's (the one inner pytest run), hardened here; the process
  handling differs: its own process group killed as a whole, output read with a cap, and the
  results from a pipe
  (kata_tools/grading/probe.py) and pytest's own JUnit file.
"""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from kata_tools import runner

TREE_DIRS = ("katas", "kata_tools", "kata_blog")
TREE_FILES = ("conftest.py", "pyproject.toml", "grading.toml")
SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", ".kata")
MAX_LEARNER_FILE = 1_000_000  # bytes
OUTPUT_HEAD = 256_000  # bytes of console output kept from the start of a kata's run ...
OUTPUT_TAIL = 64_000  # ... and from its end
PIPE_CAP = 8_000_000  # bytes read from the result pipe at most
PLUGINS = ("pytest_asyncio.plugin", "pytest_timeout", "kata_tools.grading.probe")
CLEAN_ENV = (
    "KATA_SOLUTIONS",
    "KATA_SOURCE",
    "KATA_ROOT_CHOSEN",
    "KATA_GRADE_FD",
    "PYTEST_ADDOPTS",
    "PYTEST_PLUGINS",
    "PYTEST_CURRENT_TEST",
    "GITHUB_STEP_SUMMARY",
    "PWD",  # the folder `kata grade` was started in (the course, perhaps the full one); the
    "OLDPWD",  # child's own folder is the tree
)


def make_tree(course: Path, dest: Path) -> Path:
    """A copy of the course's grading parts at `dest` (the specs as the course has them)."""
    dest.mkdir(parents=True)
    for name in TREE_DIRS:
        if (course / name).is_dir():
            shutil.copytree(course / name, dest / name, ignore=SKIP, symlinks=True)
    for name in TREE_FILES:
        if (course / name).is_file():
            shutil.copy2(course / name, dest / name)
    return dest


class UnsafeFile(Exception):
    """A declared learner file that is not taken: missing, a symlink, not a regular file, too large."""


def read_learner_file(checkout: Path, rel: str) -> bytes:
    """The bytes of checkout/rel, never through a symlink, never outside `checkout`."""
    parts = Path(rel).parts
    if not parts or Path(rel).is_absolute() or ".." in parts:
        raise UnsafeFile(f"{rel}: not a plain relative path")
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    dir_flags = flags | getattr(os, "O_DIRECTORY", 0)
    try:
        fd = os.open(checkout, dir_flags)
    except OSError as e:
        raise UnsafeFile(f"{checkout}: cannot open ({e.strerror})") from None
    try:
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            try:
                info = os.stat(part, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                raise UnsafeFile(f"{rel} is missing") from None
            if stat.S_ISLNK(info.st_mode):
                raise UnsafeFile(f"{rel} is a symbolic link; not followed (submit the file itself)")
            if last and not stat.S_ISREG(info.st_mode):
                raise UnsafeFile(f"{rel} is not a regular file")
            if not last and not stat.S_ISDIR(info.st_mode):
                raise UnsafeFile(f"{rel}: {part} is not a folder")
            if last and info.st_size > MAX_LEARNER_FILE:
                raise UnsafeFile(f"{rel} is larger than {MAX_LEARNER_FILE // 1000} kB")
            nxt = os.open(part, flags if last else dir_flags, dir_fd=fd)
            os.close(fd)
            fd = nxt
        data = os.read(fd, MAX_LEARNER_FILE + 1)
        if len(data) > MAX_LEARNER_FILE:
            raise UnsafeFile(f"{rel} is larger than {MAX_LEARNER_FILE // 1000} kB")
        return data
    except OSError as e:  # e.g. ELOOP: a symlink swapped in between the check and the open
        raise UnsafeFile(f"{rel}: cannot read ({e.strerror})") from None
    finally:
        os.close(fd)


def copy_learner_files(checkout: Path, tree: Path, kata: str, files) -> dict[str, bytes]:
    """Put the declared learner files of `kata` from `checkout` into `tree`; returns what was put."""
    taken = {}
    problems = []
    for rel in files:
        try:
            data = read_learner_file(checkout, f"katas/{kata}/{rel}")
        except UnsafeFile as e:
            problems.append(str(e))
            continue
        target = tree / "katas" / kata / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_symlink() or target.exists():
            target.unlink()
        target.write_bytes(data)
        taken[rel] = data
    if problems:
        raise UnsafeFile("; ".join(problems))
    return taken


@dataclass
class KataRun:
    kata: str
    returncode: int | None  # None: killed at the time limit
    timed_out: bool
    seconds: float
    messages: list[dict] = field(default_factory=list)  # from the probe's pipe
    junit: Path | None = None
    output: str = ""


class _Capped:
    """Keeps the first `head` and the last `tail` bytes of a stream; counts the rest."""

    def __init__(self, head: int, tail: int):
        self.head, self.tail = bytearray(), bytearray()
        self.head_cap, self.tail_cap = head, tail
        self.dropped = 0

    def feed(self, chunk: bytes) -> None:
        room = self.head_cap - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if chunk:
            self.tail += chunk
            if len(self.tail) > self.tail_cap:
                cut = len(self.tail) - self.tail_cap
                self.dropped += cut
                del self.tail[:cut]

    def text(self) -> str:
        middle = f"\n[... {self.dropped} bytes of output left out ...]\n" if self.dropped else ""
        return (
            bytes(self.head).decode("utf-8", "replace") + middle + bytes(self.tail).decode("utf-8", "replace")
        )


def _drain(stream, sink: _Capped) -> None:
    try:
        while chunk := stream.read(65536):
            sink.feed(chunk)
    except (OSError, ValueError):
        pass


def _read_pipe(fd: int, out: list[bytes]) -> None:
    total = 0
    try:
        while chunk := os.read(fd, 65536):
            if total < PIPE_CAP:
                out.append(chunk[: PIPE_CAP - total])
            total += len(chunk)
    except OSError:
        pass
    finally:
        os.close(fd)


def _parse_messages(raw: bytes) -> list[dict]:
    import json

    messages = []
    for line in raw.split(b"\n"):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            messages.append({"type": "garbage"})
            continue
        messages.append(obj if isinstance(obj, dict) else {"type": "garbage"})
    return messages


def child_env(private: Path) -> dict:
    """runner.inner_env (no progress written) without PYTHON*/pytest/CI variables, autoload off."""
    env = {
        k: v
        for k, v in runner.inner_env(progress=False).items()
        if k not in CLEAN_ENV and not k.startswith("PYTHON")
    }
    env.update(
        PYTEST_DISABLE_PLUGIN_AUTOLOAD="1",
        # The interpreter ends the slow way here: a learner's exit handler then runs inside
        # the graded process, where the cross-check of the two records catches what it forged
        # (kata_tools.fast_feedback would skip it, and the attempt would go unreported).
        KATA_FAST_EXIT="0",
        PYTHONIOENCODING="utf-8",  # read only by the kata's own subprocesses: -E ignores it here
        HOME=os.environ.get("HOME", str(private)),
        TMPDIR=str(private / "tmp"),
    )
    return env


def command(kata: str, tree: Path, junit: Path, pycache: Path) -> list[str]:
    """runner.command's pytest run of one kata, hardened (see the module docstring)."""
    base = runner.command(runner.targets([kata]), pycache.parent / "kata-report.json")
    assert base[:3] == [sys.executable, "-m", "pytest"]
    cmd = [sys.executable, "-E", "-s", "-B", "-X", f"pycache_prefix={pycache}", *base[1:]]
    cmd += ["--import-mode=importlib", "--rootdir", str(tree), "-c", str(tree / "pyproject.toml")]
    cmd += ["--junitxml", str(junit), "-o", f"junit_suite_name={kata}", "-o", "junit_logging=no"]
    for plugin in PLUGINS:
        cmd += ["-p", plugin]
    return cmd


def run_kata(tree: Path, kata: str, time_limit: float, private: Path) -> KataRun:
    """One pytest process over katas/<kata> of `tree`, killed (with its group) after `time_limit`."""
    private.mkdir(parents=True, exist_ok=True)
    (private / "tmp").mkdir(exist_ok=True)
    junit = private / "junit.xml"
    read_end, write_end = os.pipe()
    env = child_env(private)
    env["KATA_GRADE_FD"] = str(write_end)
    started = time.monotonic()
    try:
        proc = subprocess.Popen(
            command(kata, tree, junit, private / "pycache"),
            cwd=tree,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            pass_fds=(write_end,),
            start_new_session=True,
        )
    finally:
        os.close(write_end)
    assert proc.stdout is not None  # stdout=subprocess.PIPE
    sink = _Capped(OUTPUT_HEAD, OUTPUT_TAIL)
    chunks: list[bytes] = []
    readers = [
        threading.Thread(target=_drain, args=(proc.stdout, sink), daemon=True),
        threading.Thread(target=_read_pipe, args=(read_end, chunks), daemon=True),
    ]
    for t in readers:
        t.start()
    timed_out = False
    try:
        proc.wait(timeout=time_limit)
    except subprocess.TimeoutExpired:
        timed_out = True
    _kill_group(proc.pid)
    if timed_out:
        proc.wait()
    for t in readers:
        t.join(timeout=5)  # a detached grandchild holding a pipe open must not stall grading
    if not readers[0].is_alive():
        proc.stdout.close()
    return KataRun(
        kata=kata,
        returncode=None if timed_out else proc.returncode,
        timed_out=timed_out,
        seconds=round(time.monotonic() - started, 2),
        messages=_parse_messages(b"".join(chunks)),
        junit=junit if junit.is_file() else None,
        output=sink.text(),
    )


def _kill_group(pid: int) -> None:
    """Stop whatever the kata's process group left running (threads, servers, children)."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
