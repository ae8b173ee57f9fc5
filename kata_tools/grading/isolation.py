"""Whether the code being graded could read the reference solutions: checked before grading.

Learner code runs as the grader's user, with the grader's Python. The tree it runs in is a copy
without solutions/ (sandbox.make_tree), but the interpreter, its site-packages and an editable
install point back at where they live: with a venv inside the full course,
`runpy.run_path(Path(sys.executable).parents[2] / "solutions/01_event_loop/event_loop.py")` in a
learner file hands over the answer. So `solutions_reachable` asks a grading child's own Python
(same interpreter, same flags, same environment, in the tree) where it points: its executable,
prefixes, sys.path, setuptools' editable finders, the file:// URLs of installed distributions,
VIRTUAL_ENV and HOME; then it looks, in each of those folders and every folder above them, and
next to the grading course itself, for a solutions/ folder holding a kata. `kata grade --from`
refuses to grade when it finds one (docs/grading.md, "Grade from a copy without the answers"),
unless told `--allow-solutions`; the report lists the folders either way.

This finds the ways in that come with the interpreter and the course. It cannot stop code that
searches the disk: on a machine that holds the full course anywhere readable, learner code can
find it. Marks that count come from a machine, container or runner without it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from kata_tools import catalog

CHILD = r"""
import json, os, sys
from urllib.parse import unquote, urlparse
paths = [sys.executable, sys.prefix, sys.base_prefix, sys.exec_prefix, *sys.path]
for name, module in list(sys.modules.items()):
    if name.startswith("__editable__"):
        for key in ("MAPPING", "NAMESPACES"):
            for value in dict(getattr(module, key, None) or {}).values():
                paths += value if isinstance(value, list) else [value]
try:
    from importlib import metadata
    for dist in metadata.distributions():
        url = json.loads(dist.read_text("direct_url.json") or "{}").get("url", "")
        if url.startswith("file:"):
            paths.append(unquote(urlparse(url).path))
except Exception:
    pass
paths += [os.environ.get(k, "") for k in ("VIRTUAL_ENV", "HOME")]
print(json.dumps([p for p in paths if isinstance(p, str) and p]))
"""


def child_paths(tree: Path, env: dict) -> list[str]:
    """The folders a grading child's Python points at (see the module docstring)."""
    try:
        proc = subprocess.run(
            [sys.executable, "-E", "-s", "-c", CHILD],
            cwd=tree,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
        )
        found = json.loads(proc.stdout or "[]")
    except (OSError, ValueError, subprocess.SubprocessError):
        found = []
    paths = [p for p in found if isinstance(p, str)] if isinstance(found, list) else []
    return [sys.executable, sys.prefix, *paths]  # the same interpreter, if the child said nothing


def _holds_a_kata(folder: Path) -> bool:
    try:
        return folder.is_dir() and any(
            catalog.KATA_DIR.match(p.name) and p.is_dir() for p in folder.iterdir()
        )
    except OSError:
        return False


def solutions_reachable(course: Path, tree: Path, env: dict) -> list[str]:
    """The solutions/ folders (with a kata in them) that code graded in `tree` could find."""
    seen: set[Path] = set()
    found: list[str] = []
    for raw in [str(course), *child_paths(tree, env)]:
        if not Path(raw).is_absolute():  # e.g. an import hook's name in sys.path
            continue
        try:
            starts = {Path(raw).absolute(), Path(raw).resolve()}
        except (OSError, RuntimeError, ValueError):
            continue
        for start in starts:
            for folder in (start, *start.parents):
                if folder in seen:
                    continue
                seen.add(folder)
                candidate = folder / "solutions"
                if _holds_a_kata(candidate):
                    where = str(candidate.resolve())
                    if where not in found:
                        found.append(where)
    return found
