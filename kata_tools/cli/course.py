"""The course as the `kata` command sees it: its katas, where the learner stands, pristine files,
and a run of a kata's specs (through kata_tools.runner, the one inner pytest run)."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence

from kata_tools import catalog, i18n, progress, runner
from kata_tools.cli.ui import Fail, fail, say, warn
from kata_tools.preloaded import Preloaded


def all_katas() -> list[catalog.Kata]:
    if not catalog.KATAS.is_dir():
        raise fail("no-katas-folder", 2, root=catalog.ROOT)
    return catalog.katas()


def pristine_manifest() -> dict | None:
    from kata_tools import manifest

    try:
        return manifest.load(catalog.ROOT)
    except manifest.ManifestError:
        return None


def find(key: str) -> catalog.Kata:
    """The kata for NN or a name (catalog.find_kata); one line for an unknown or deleted one."""
    try:
        return catalog.find_kata(key)
    except catalog.CatalogError:
        pass
    known = sorted((pristine_manifest() or {}).get("katas", {}))
    name = catalog.match_kata_name(key, known)
    if name is not None:
        raise fail("kata-missing", 1, name=name)
    names = ", ".join(k.number for k in all_katas()) or "-"
    raise fail("no-such-kata", 2, key=key, names=names)


def statuses() -> dict[str, progress.KataStatus]:
    return progress.statuses(catalog.ROOT, all_katas(), warn=warn)


def first_unsolved(status: Mapping[str, progress.KataStatus], after: str = "") -> catalog.Kata | None:
    """The first kata not solved yet; with `after`, the first one after that kata (wrapping round)."""
    katas = all_katas()
    if after:
        katas = [k for k in katas if k.name > after] + [k for k in katas if k.name < after]
    return next((k for k in katas if not status[k.name].solved), None)


def current(key: str | None) -> catalog.Kata | None:
    """The kata named by `key`, or the current one (the first unsolved) when there is no key."""
    return find(key) if key is not None else first_unsolved(statuses())


# The warm database of a `kata watch` session, handed to every run (see watch.py); {} otherwise.
RUN_ENV: dict[str, str] = {}
PYCACHE = catalog.ROOT / progress.STATE_DIR / "pycache"  # kept between runs: each compiles less


def run_kata(
    kata: catalog.Kata, pytest_args: Sequence[str] = (), preloaded: Preloaded | None = None
) -> tuple[list[dict], str]:
    """Run the kata's specs as the learner's own run; (records in run order, console output).

    The pytest plugin merges the results into .kata/results.json, as for any run of katas/.
    `preloaded`: `kata watch`'s process with the libraries imported (kata_tools.preloaded).
    """
    run = runner.run(
        runner.targets([kata]),
        args=pytest_args,
        env=RUN_ENV,
        progress=True,
        lang=i18n.current(),
        pycache=PYCACHE,
        preloaded=preloaded,
    )
    return run.records, run.output


def run_env() -> dict[str, str]:
    """The environment run_kata's runs get (what a preloaded process starts with)."""
    return runner.inner_env(RUN_ENV, progress=True, lang=i18n.current(), pycache=PYCACHE)


def pristine_source(kata: catalog.Kata, rel: str, manifest: dict | None) -> tuple[str | None, str]:
    """(pristine text, where from): the manifest's copy first, else git's HEAD, else None."""
    from kata_tools import manifest as manifest_module

    if manifest is not None:
        text = manifest_module.pristine_text(kata.name, rel, manifest)
        if text is not None:
            return text, manifest_module.MANIFEST_FILE
    path = f"katas/{kata.name}/{rel}"
    try:
        proc = subprocess.run(
            ["git", "show", f"HEAD:{path}"], cwd=catalog.ROOT, capture_output=True, timeout=20
        )
    except (OSError, subprocess.SubprocessError):
        return None, ""
    if proc.returncode == 0:
        return proc.stdout.decode("utf-8", errors="replace"), "git HEAD"
    return None, ""


__all__ = [
    "Fail",
    "all_katas",
    "current",
    "find",
    "first_unsolved",
    "pristine_manifest",
    "pristine_source",
    "run_kata",
    "say",
    "statuses",
]
