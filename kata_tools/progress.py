"""Where a learner stands: the last result of every spec, and how many hints they have seen.

Two small JSON files under `.kata/` at the project root (gitignored; delete the folder to start
over, nothing else depends on it):

- `.kata/results.json`: the last outcome of every spec run against the learner's own `katas/`.
  The pytest plugin merges into it after every run, so `pytest katas/01_event_loop` counts as
  much as `kata watch`. `kata list` only reads it, which is why it answers at once.
- `.kata/progress.json`: how far the learner went in each kata's hint ladder (`kata hint`).

This module imports only the standard library: the pytest plugin loads it at the end of a run.
A missing, corrupt or foreign file reads as "nothing yet" with a one-line warning; writes go
through a temporary file and a rename, so an interrupted write never leaves half a file.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from kata_tools import results  # standard library only, like this module

FORMAT = 1
STATE_DIR = ".kata"
RESULTS = "results.json"
PROGRESS = "progress.json"

# The kata states, from the one vocabulary (kata_tools.results); NOT_STARTED is its "not run".
SOLVED, FAILING, PARTIAL, NOT_STARTED = results.SOLVED, results.FAILING, results.PARTIAL, results.NOT_RUN


def results_path(root: Path) -> Path:
    return Path(root) / STATE_DIR / RESULTS


def progress_path(root: Path) -> Path:
    return Path(root) / STATE_DIR / PROGRESS


def _msg(key: str, **fields) -> str:
    from kata_tools import i18n  # standard library only, and the plugin's catalog

    return i18n.tool("plugin")(key, **fields)


def read_json(path: Path) -> tuple[dict, str | None]:
    """(data, warning): {} and a one-line warning when the file is unreadable or not ours."""
    shown = f"{path.parent.name}/{path.name}"
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}, None
    except OSError as e:
        return {}, _msg("progress-unreadable", file=shown, reason=e.strerror or type(e).__name__)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return {}, _msg("progress-not-utf8", file=shown)
    try:
        data = json.loads(text)
    except ValueError:
        return {}, _msg("progress-corrupt", file=shown)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return {}, _msg("progress-unknown-format", file=shown)
    return data, None


def _as_dict(value: object) -> dict:
    """`value` if it is a dict, else {}: a field of a file the learner may have edited by hand."""
    return value if isinstance(value, dict) else {}


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)


# --- spec results ------------------------------------------------------------------------------


def spec_record(record: dict, at: float, lang: str = "") -> dict:
    """What results.json keeps of a pytest-plugin record (see pytest_plugin._record); `lang`:
    the language its message is in (a message cannot be translated afterwards, only re-run)."""
    doc = record.get("doc") or ""
    if isinstance(doc, list):
        doc = doc[0] if doc else ""
    return {
        "name": record.get("name", ""),
        "rules": list(record.get("rules") or []),
        "outcome": record.get("outcome", "error"),
        "message": record.get("message") or "",
        "doc": doc,
        "at": at,
        "lang": lang,
    }


def merge_run(root: Path, runs: dict[str, dict], now: float | None = None, lang: str = "") -> list[str]:
    """Merge one pytest run into results.json; returns the warning lines to show (0, 1 or 2).

    `runs` maps a kata name to {"complete": bool, "specs": {nodeid: plugin record}}. A complete
    run (every spec of the kata collected and run) replaces the kata's entry, so renamed or
    deleted specs drop out; a partial one (`-k`, `file::test`, `-x`) updates only its specs.
    `lang` is the language of the run's messages, kept with each spec.
    A corrupt or foreign file is replaced (one line says so); a folder that cannot be written
    leaves everything as it was (one line says progress is not saved).
    """
    now = time.time() if now is None else now
    path = results_path(root)
    data, warning = read_json(path)
    lines = [_msg("progress-replaced", warning=warning)] if warning else []
    katas = _as_dict(data.get("katas"))
    for kata, run in runs.items():
        specs = {nodeid: spec_record(r, now, lang) for nodeid, r in run["specs"].items()}
        old = katas.get(kata)
        if run["complete"] or not isinstance(old, dict) or not isinstance(old.get("specs"), dict):
            entry = {"complete": bool(run["complete"]), "specs": specs}
        else:
            merged = dict(old["specs"])
            complete = bool(old.get("complete")) and set(specs) <= set(merged)
            merged.update(specs)
            entry = {"complete": complete, "specs": merged}
        entry["ran_at"] = now
        katas[kata] = entry
    try:
        write_json(path, {"format": FORMAT, "katas": katas})
    except OSError as e:
        folder = path.parent if path.parent.exists() else path.parent.parent
        lines = [_msg("progress-not-saved", folder=folder, reason=e.strerror or type(e).__name__)]
    return lines


def forget(root: Path, kata: str) -> None:
    """Drop a kata's results (after `kata reset`): it reads as not started again."""
    path = results_path(root)
    data, warning = read_json(path)
    if warning or kata not in data.get("katas", {}):
        return
    del data["katas"][kata]
    write_json(path, data)


@dataclass
class KataStatus:
    """A kata's state from the last results, without running anything."""

    kata: str
    state: str = NOT_STARTED  # a kata status of kata_tools.results: solved, failing, partly run, not run
    passed: int = 0
    total: int = 0
    rules: dict[str, str] = field(default_factory=dict)  # rule id -> results.rule_status
    failures: list[dict] = field(default_factory=list)  # spec records, in run order
    ran_at: float | None = None
    stale: bool = False  # a learner file changed after the oldest of these results

    @property
    def solved(self) -> bool:
        return self.state == SOLVED

    def messages_in(self, lang: str) -> bool:
        """True when every failure's stored message is in `lang` (older results say no language)."""
        return all(r.get("lang") == lang for r in self.failures)


def _valid_spec(rec) -> bool:
    return (
        isinstance(rec, dict)
        and isinstance(rec.get("outcome"), str)
        and isinstance(rec.get("rules", []), list)
    )


def statuses(root: Path, katas, warn=None) -> dict[str, KataStatus]:
    """KataStatus of each catalog.Kata in `katas`, read from results.json (never runs a spec)."""
    data, warning = read_json(results_path(root))
    if warning and warn:
        warn(warning)
    stored = _as_dict(data.get("katas"))
    out = {}
    for kata in katas:
        status = KataStatus(kata.name)
        rule_ids = [r.id for r in kata.rules]
        status.rules = {rid: "not run" for rid in rule_ids}
        entry = _as_dict(stored.get(kata.name))
        specs = entry.get("specs")
        if isinstance(specs, dict) and specs:
            records = [r for r in specs.values() if _valid_spec(r)]
            complete = bool(entry.get("complete"))
            summary = results.summarize(records, rule_ids, complete)
            status.total, status.passed = summary.total, summary.passed
            status.failures = [r for r in records if results.is_broken(r)]
            status.rules = summary.rules
            status.state = summary.status
            ran_at = entry.get("ran_at")
            status.ran_at = ran_at if isinstance(ran_at, (int, float)) else None
            oldest = min(
                (r.get("at") for r in records if isinstance(r.get("at"), (int, float))),
                default=None,
            )
            status.stale = oldest is not None and _changed_since(kata, oldest)
        out[kata.name] = status
    return out


def _changed_since(kata, when: float) -> bool:
    for rel in kata.learner_files:
        try:
            if (kata.path / rel).stat().st_mtime > when:
                return True
        except OSError:
            return True  # a deleted learner file changes the outcome too
    return False


# --- hints -------------------------------------------------------------------------------------


def hints_seen(root: Path, kata: str, warn=None) -> int:
    data, warning = read_json(progress_path(root))
    if warning and warn:
        warn(warning)
    seen = data.get("hints", {}).get(kata, 0) if isinstance(data.get("hints"), dict) else 0
    return seen if isinstance(seen, int) and seen >= 0 else 0


def set_hints_seen(root: Path, kata: str, count: int) -> None:
    path = progress_path(root)
    data, _ = read_json(path)
    hints = _as_dict(data.get("hints"))
    hints[kata] = count
    data.update({"format": FORMAT, "hints": hints})
    write_json(path, data)
