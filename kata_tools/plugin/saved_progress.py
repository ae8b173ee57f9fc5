"""The learner's progress: this run's spec results merged into .kata/results.json (`kata list`).

PYTEST_DONT_REWRITE: registered through kata_tools.pytest_plugin's pytest_plugins.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from kata_tools import catalog, i18n
from kata_tools.loader import use_solutions
from kata_tools.plugin.shared import RESULTS, is_spec

_DESELECTED = pytest.StashKey[set]()


def pytest_deselected(items: list[pytest.Item]) -> None:
    if items:
        kept = items[0].config.stash.setdefault(_DESELECTED, set())
        kept.update(Path(item.path).parent.name for item in items)


def save_progress(session: pytest.Session) -> None:
    """Merge this run's spec results into .kata/results.json, when it ran the learner's katas/.

    Runs against solutions/ or --kata-source, and runs with KATA_NO_PROGRESS=1, leave it alone.
    A kata counts as completely run when all its spec files were collected, nothing of it was
    deselected or picked by `file::test`, and every collected spec has a result. A corrupt file
    is replaced (one warning line); a folder that cannot be written says so once.
    """
    config = session.config
    if (
        use_solutions(config)
        or config.getoption("kata_source")
        or os.environ.get("KATA_SOURCE")
        or os.environ.get("KATA_NO_PROGRESS")
    ):
        return
    try:
        results = config.stash[RESULTS]
        katas_dir = catalog.KATAS.resolve()
        items: dict[str, list[pytest.Item]] = {}
        for item in getattr(session, "items", None) or []:
            path = Path(item.path).resolve()
            if is_spec(item) and path.parent.parent == katas_dir:
                items.setdefault(path.parent.name, []).append(item)
        if not items:
            return
        picked = {Path(arg.split("::")[0]).resolve().parent.name for arg in config.args if "::" in arg}
        deselected = config.stash.get(_DESELECTED, set())
        runs = {}
        for kata, kata_items in items.items():
            specs = {i.nodeid: results[i.nodeid] for i in kata_items if i.nodeid in results}
            files = {Path(i.path).resolve() for i in kata_items}
            on_disk = {p.resolve() for p in (catalog.KATAS / kata).glob("test_*.py")}
            complete = (
                files == on_disk
                and len(specs) == len(kata_items)
                and kata not in deselected
                and kata not in picked
            )
            if specs:
                runs[kata] = {"complete": complete, "specs": specs}
        if runs:
            from kata_tools import progress  # only now: keeps the plugin's import cost tiny

            lines = progress.merge_run(catalog.ROOT, runs, lang=i18n.current())
            _say(config, lines)
    except Exception:  # progress is a convenience: it must never fail a learner's test run
        pass


def _say(config: pytest.Config, lines) -> None:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    for line in lines or []:
        if reporter is not None:
            reporter.write_line(line, yellow=True)
        else:
            sys.stderr.write(line + "\n")
