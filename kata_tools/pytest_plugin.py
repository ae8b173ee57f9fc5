"""The kata frame inside pytest: which code the specs run against, rule tags, teaching failures.

- `--solutions` (or KATA_SOLUTIONS=1) runs the same specs against solutions/ instead of katas/.
- `--kata-source DIR` runs them against DIR/NN_name/ (the project's own tests use it for mistakes).
- every spec must carry `@pytest.mark.rule("ID")` with an id of katas/rules.toml.
- a failing spec shows its teaching message, not a stack of frames (`--tb=long` brings those back).
- `--kata-report FILE` writes one JSON record per spec (kata, rules, outcome, message).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from kata_tools import catalog
from kata_tools.loader import (
    LearnerNameMissing,
    display,
    import_file,
    module_name,
    source_root,
    use_solutions,
)
from kata_tools.spec_report import CALL_REPORT  # the contract with the database plugin

_RESULTS = pytest.StashKey[dict]()
_MODULES = pytest.StashKey[dict]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kata", "katas")
    group.addoption(
        "--solutions",
        action="store_true",
        default=False,
        help="run the specs against the reference solutions/ instead of your katas/ "
        "(same as KATA_SOLUTIONS=1)",
    )
    group.addoption(
        "--kata-source",
        metavar="DIR",
        default=None,
        help="run the specs against DIR/NN_name/ files (same as KATA_SOURCE=DIR)",
    )
    group.addoption(
        "--kata-report",
        metavar="FILE",
        default=None,
        help="write a JSON record per spec: kata, rules, outcome, message",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_RESULTS] = {}
    config.stash[_MODULES] = {}
    if use_solutions(config) and not (catalog.ROOT / "solutions").is_dir():
        from kata_tools import i18n  # a student release (`kata release`) ships no solutions/

        raise pytest.UsageError(i18n.tool("grading")("release-no-solutions"))


def pytest_report_header(config: pytest.Config) -> str:
    source = config.getoption("kata_source") or os.environ.get("KATA_SOURCE")
    if source:
        return f"katas: specs run against {source}"
    if use_solutions(config):
        return "katas: specs run against the reference solutions/ (--solutions)"
    return "katas: specs run against your files in katas/"


def is_spec(item: pytest.Item) -> bool:
    """A spec is a test in a kata folder (katas/NN_name/test_*.py or a copy of one)."""
    path = Path(item.path)
    return path.name.startswith("test_") and catalog.KATA_DIR.match(path.parent.name) is not None


def rules_of(item: pytest.Item) -> list[str]:
    return [rule for mark in item.iter_markers("rule") for rule in mark.args]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    known = catalog.rules()
    for item in items:
        if not is_spec(item):
            continue
        ids = rules_of(item)
        if not ids:
            raise pytest.UsageError(
                f"{item.nodeid}: every spec needs @pytest.mark.rule('ID') naming the rule it encodes"
            )
        unknown = [r for r in ids if r not in known]
        if unknown:
            raise pytest.UsageError(
                f"{item.nodeid}: unknown rule id(s) {', '.join(unknown)}; "
                f"the rules are listed in katas/rules.toml"
            )


@pytest.fixture
def kata_module(request: pytest.FixtureRequest):
    """Import a file of this kata: the learner's (katas/), or the reference one (--solutions).

        mod = kata_module("event_loop.py")            # cached for the session
        mod = kata_module("app.py", fresh=True)       # a new module object, executed again

    A missing file, a syntax error or a crash at import fails the spec with the file and line.
    """
    spec_path = Path(request.path)
    kata = spec_path.parent.name
    root = source_root(request.config, spec_path)
    cache = request.config.stash[_MODULES]

    def load(relpath: str, fresh: bool = False):
        path = (root / kata / relpath).resolve()
        key = str(path)
        if fresh or key not in cache:
            cache[key] = import_file(path, module_name(kata, relpath))
        return cache[key]

    return load


# --- teaching failure output -------------------------------------------------------------------


def _learner_frame(excinfo: pytest.ExceptionInfo) -> str | None:
    """file:line of the deepest frame that is not a spec or a library (the learner's own line)."""
    for entry in reversed(excinfo.traceback):
        path = Path(str(entry.path))
        kata = catalog.kata_of(path)
        if kata and not path.name.startswith("test_"):
            return f"{display(path)}:{entry.lineno + 1}"
    return None


def _assertion_message(text: str) -> str:
    # pytest renders `assert x, msg` as "msg\nassert <introspection>"; the spec's msg teaches.
    head, sep, _ = text.partition("\nassert ")
    return head.strip() if sep or not text.startswith("assert ") else ""


def teaching_message(item: pytest.Item, excinfo: pytest.ExceptionInfo) -> str | None:
    """A one-paragraph failure for a spec, or None to keep pytest's own report."""
    rules = ", ".join(rules_of(item))
    where = f"\n  spec: {item.nodeid}   rule: {rules}"
    exc = excinfo.value
    if isinstance(exc, pytest.fail.Exception):
        msg = str(exc)
        if msg.startswith("Timeout"):
            timeout = msg.split(">")[-1].split("s")[0] if ">" in msg else "?"
            stuck = _learner_frame(excinfo)
            at = f" It was running {stuck} when stopped." if stuck else ""
            return (
                f"Timed out: the spec did not finish within {timeout} s. Your code is stuck: an "
                f"endless loop, an await that never completes, or a wait for a thread or "
                f"connection that is never given back.{at} Rule {rules}: see the kata's README."
                + where
            )
        return msg + where
    if isinstance(exc, NotImplementedError):
        line = _learner_frame(excinfo) or "your kata file"
        return (
            f"Not written yet: {line} still raises NotImplementedError (a TODO). "
            f"Replace the TODO with code that follows rule {rules}." + where
        )
    if isinstance(exc, LearnerNameMissing):
        return str(exc) + where
    if isinstance(exc, AssertionError):
        message = _assertion_message(str(exc))
        if message:
            return message + where
        return None
    line = _learner_frame(excinfo)
    if line:
        return (
            f"{type(exc).__name__}: {exc}\n  raised at {line}\n  Rule {rules}: read the kata's "
            f"README for what this code must do." + where
        )
    return None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if report.when == "call":
        item.stash[CALL_REPORT] = report  # the database fixture's teardown reads it
    if not is_spec(item):
        return report
    if report.failed and call.excinfo is not None:
        message = teaching_message(item, call.excinfo)
        if message and item.config.option.tbstyle == "auto":
            report.longrepr = message
        _record(item, report, message or str(call.excinfo.value))
    elif report.when == "call" or report.skipped:
        _record(item, report, "")
    return report


def _record(item: pytest.Item, report: pytest.TestReport, message: str) -> None:
    results = item.config.stash[_RESULTS]
    if item.nodeid in results and results[item.nodeid]["outcome"] != "passed":
        return  # keep the first failure (a teardown error after a failed call adds nothing)
    if report.failed:
        outcome = "failed" if report.when == "call" else "error"
    else:
        outcome = report.outcome
    kata = catalog.kata_of(Path(item.path))
    results[item.nodeid] = {
        "nodeid": item.nodeid,
        "kata": kata.name if kata else None,
        "name": item.name,
        "rules": rules_of(item),
        "doc": (getattr(item.obj, "__doc__", None) or "").strip().splitlines()[0:1],
        "outcome": outcome,
        "message": message,
        "duration": round(report.duration, 3),
    }


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _save_progress(session)
    path = session.config.getoption("kata_report")
    if not path:
        return
    records = list(session.config.stash[_RESULTS].values())
    for r in records:
        r["doc"] = r["doc"][0] if r["doc"] else ""
    Path(path).write_text(
        json.dumps(
            {"created": time.time(), "exitstatus": int(exitstatus), "specs": records}, indent=2
        )
    )


# --- the learner's progress (.kata/results.json, read by `kata list`) ---------------------------

_DESELECTED = pytest.StashKey[set]()


def pytest_deselected(items: list[pytest.Item]) -> None:
    if items:
        kept = items[0].config.stash.setdefault(_DESELECTED, set())
        kept.update(Path(item.path).parent.name for item in items)


def _save_progress(session: pytest.Session) -> None:
    """Merge this run's spec results into .kata/results.json, when it ran the learner's katas/.

    Runs against solutions/ or --kata-source, and runs with KATA_NO_PROGRESS=1, leave it alone.
    A kata counts as completely run when all its spec files were collected, nothing of it was
    deselected or picked by `file::test`, and every collected spec has a result.
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
        results = config.stash[_RESULTS]
        katas_dir = catalog.KATAS.resolve()
        items: dict[str, list[pytest.Item]] = {}
        for item in getattr(session, "items", None) or []:
            path = Path(item.path).resolve()
            if is_spec(item) and path.parent.parent == katas_dir:
                items.setdefault(path.parent.name, []).append(item)
        if not items:
            return
        picked = {
            Path(arg.split("::")[0]).resolve().parent.name for arg in config.args if "::" in arg
        }
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

            progress.merge_run(catalog.ROOT, runs)
    except Exception:  # progress is a convenience: it must never fail a learner's test run
        pass

