"""What the kata plugin's modules share: stash keys, limits, which items are specs, records."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from kata_tools import catalog, i18n, probes

RESULTS = pytest.StashKey[dict]()  # nodeid -> the spec's record (see record())
MODULES = pytest.StashKey[dict]()  # learner file -> its imported module
IMPORT_FAILED = pytest.StashKey[dict]()  # learner file -> its LearnerImportFailed, shown once
LEFTOVERS = pytest.StashKey[probes.Leftovers]()
EXIT = pytest.StashKey[int]()
STOPPED = pytest.StashKey[bool]()  # the spec's timeout fired (its timer may be gone by teardown)

MAX_LINES = 4  # a default-run failure message, line 3 included, is at most this long
REFIRE = 0.25  # seconds between interrupts once a spec timed out
REFIRES = 120  # then give up interrupting and let the watchdog end the run
STUCK_GRACE = 10.0  # seconds after a timeout before the watchdog ends a run stuck in C code
THREAD_GRACE = 1.0  # seconds a learner thread gets to finish after the last spec
END_GRACE = 12.0  # seconds after the session's end before the run is ended whatever holds it


def MSG(key: str, **fields) -> str:
    return i18n.tool("plugin")(key, **fields)


def is_spec(item: pytest.Item) -> bool:
    """A spec is a test in a kata folder (katas/NN_name/test_*.py or a copy of one)."""
    path = Path(item.path)
    return path.name.startswith("test_") and catalog.KATA_DIR.match(path.parent.name) is not None


def rules_of(item: pytest.Item) -> list[str]:
    return [rule for mark in item.iter_markers("rule") for rule in mark.args]


def record(item: pytest.Item, outcome: str, message: str, duration: float) -> dict:
    """One spec's record, as --kata-report writes it and `kata`, grading and the tests read it."""
    kata = catalog.kata_of(Path(item.path))
    doc = (getattr(getattr(item, "obj", None), "__doc__", None) or "").strip().splitlines()
    return {
        "nodeid": item.nodeid,
        "kata": kata.name if kata else None,
        "name": item.name,
        "rules": rules_of(item),
        "doc": doc[0] if doc else "",
        "outcome": outcome,
        "message": message,
        "duration": round(duration, 3),
    }


def write_report(config: pytest.Config, exitstatus: int) -> None:
    path = config.getoption("kata_report")
    if not path:
        return
    records = list(config.stash[RESULTS].values())
    Path(path).write_text(
        json.dumps({"created": time.time(), "exitstatus": int(exitstatus), "specs": records}, indent=2)
    )


def stop_child_processes(grace: float = 1.0) -> None:
    """End the processes the learner's code started through multiprocessing (the workers of a
    module-level ProcessPoolExecutor), before a run ends with os._exit.

    os._exit skips the interpreter's own shutdown of them, and an orphaned worker keeps the
    run's stdout open: a `pytest ... | tail` or a `kata` command that never returns (seen: 10
    minutes, until killed). The pool's manager thread is never reported as a learner's thread
    (timeouts.lingering skips it).
    """
    mp = sys.modules.get("multiprocessing")
    if mp is None:
        return
    children = mp.active_children()
    for child in children:
        child.terminate()
    deadline = time.monotonic() + grace
    for child in children:
        child.join(max(0.0, deadline - time.monotonic()))
        if child.is_alive():
            child.kill()
            child.join(0.5)
