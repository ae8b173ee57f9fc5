"""`kata dev check`: exactly what the project's self-tests prove about a kata, one line per problem.

The self-tests (tests/test_specs_are_real.py, test_catalog.py, test_variants.py) call the same
functions: the runs below give them their inner pytest runs, the judges their verdicts.

What is proved, per kata:
- kata.toml is valid: known rules, hints tied to its own rules, learner files in katas/ and
  solutions/ mirroring each other, each pristine stub marks a TODO;
- both READMEs have their sections in order, link each other, their generated blocks are current;
- messages.toml has every key in both languages with the same placeholders (i18n.Catalog.problems);
- every declared mistake names a known rule and edits its solution exactly once;
- tests/variants/NN_name/variants.toml is valid and each variant folder holds the learner files;
- with specs run: every spec passes on the solution; the stub's specs fail, never error; every
  rule has a spec; every spec fails on the stub or on a declared mistake; every declared mistake
  is rejected by a spec of its rule; every variant gets its verdict (fail: by a spec of its rule;
  pass: every spec passes).

The stubs are the PRISTINE ones (issue 10): the manifest's copy, else git HEAD's, else katas/' own
(a kata just scaffolded), so a learner's solved katas/ never fails the self-tests.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from kata_tools import catalog, i18n, readme, results, runner

JOBS = 2  # inner runs at once: the machines have two cores, and specs count calls, not seconds


# --- where each run's learner files come from -----------------------------------------------------


def _manifest() -> dict | None:
    from kata_tools import manifest

    try:
        return manifest.load(catalog.ROOT)
    except manifest.ManifestError:
        return None


def pristine_stub(kata: catalog.Kata, rel: str, manifest: dict | None = None) -> tuple[str | None, str]:
    """(text, origin) of a learner file as the course ships it: manifest, git HEAD, katas/."""
    from kata_tools import manifest as manifest_module

    manifest = _manifest() if manifest is None else manifest
    if manifest:
        text = manifest_module.pristine_text(kata.name, rel, manifest)
        if text is not None:
            return text, manifest_module.MANIFEST_FILE
    try:
        show = ["git", "show", f"HEAD:katas/{kata.name}/{rel}"]
        proc = subprocess.run(show, cwd=catalog.ROOT, capture_output=True, timeout=20)
        if proc.returncode == 0:
            return proc.stdout.decode("utf-8", errors="replace"), "git HEAD"
    except (OSError, subprocess.SubprocessError):
        pass
    path = kata.path / rel
    if path.is_file():
        return path.read_text(encoding="utf-8", errors="replace"), f"katas/{kata.name}/{rel}"
    return None, ""


def write_stubs(katas: Iterable[catalog.Kata], dest: Path) -> Path:
    """dest/NN_name/<learner files> as shipped, for `--kata-source dest`."""
    manifest = _manifest()
    for kata in katas:
        for rel in kata.learner_files:
            text, _ = pristine_stub(kata, rel, manifest)
            if text is not None:
                target = dest / kata.name / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text, encoding="utf-8")
    return dest


def write_solution(kata: catalog.Kata, dest: Path, mistake: catalog.Mistake | None = None) -> Path:
    """dest/NN_name/: the reference solution, with the mistake's edit applied."""
    target = dest / kata.name
    shutil.copytree(kata.solution_path, target, ignore=shutil.ignore_patterns("__pycache__"))
    if mistake is not None:
        edited = target / mistake.file
        edited.write_text(mistake.apply(edited.read_text(encoding="utf-8")), encoding="utf-8")
    return dest


def write_variant(variant: catalog.Variant, dest: Path) -> Path:
    shutil.copytree(variant.path, dest / variant.kata, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


# --- the runs (kata_tools.runner) ------------------------------------------------------------------


class Runs:
    """The inner runs a check needs, each made once, learner files under `tmp`."""

    mistake_lang: str | None = None  # the self-tests set "ko": one run gives a verdict and Korean text

    def __init__(self, tmp: Path, env: Mapping[str, str] | None = None, pycache: Path | None = None):
        self.tmp, self.env, self.pycache = Path(tmp), dict(env or {}), pycache
        self.n = 0

    def _dir(self, label: str) -> Path:
        self.n += 1
        path = self.tmp / f"{self.n:03d}-{label}"
        path.mkdir(parents=True)
        return path

    def _run(self, katas, **kw) -> runner.Run:
        return runner.run(runner.targets(katas), env=self.env, pycache=self.pycache, **kw)

    def solutions(self, katas: list[catalog.Kata]) -> runner.Run:
        return self._run(katas, solutions=True)

    def stubs(self, katas: list[catalog.Kata]) -> runner.Run:
        return self._run(katas, source=write_stubs(katas, self._dir("stubs")))

    def mistake(self, mistake: catalog.Mistake) -> runner.Run:
        kata = catalog.Kata(mistake.kata)
        source = write_solution(kata, self._dir(f"mistake-{mistake.id}"), mistake)
        return self._run([kata], source=source, lang=self.mistake_lang)

    def variant(self, variant: catalog.Variant) -> runner.Run:
        source = write_variant(variant, self._dir(f"variant-{variant.id}"))
        return self._run([catalog.Kata(variant.kata)], source=source)


def jobs_for(kata: catalog.Kata) -> int:
    """Inner runs of this kata at once on one server: JOBS, or one for a kata that runs alone."""
    return 1 if kata.runs_alone else JOBS


def parallel(fn: Callable, items: list, jobs: int = JOBS) -> list:
    if len(items) <= 1 or jobs <= 1:
        return [fn(i) for i in items]
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(fn, items))


# --- judges that run nothing ------------------------------------------------------------------------


def declaration_problems(kata: catalog.Kata) -> list[str]:
    where = f"katas/{kata.name}/kata.toml"
    try:
        decl = kata.declaration
    except catalog.CatalogError as e:
        return [str(e)]
    out = []
    known = catalog.rules()
    unknown = [r for r in decl.rules if r not in known]
    if unknown:
        out.append(f"{where} lists rules not in katas/rules.toml: {unknown}")
    for rule_id in decl.rules:
        rule = known.get(rule_id)
        if rule is not None and rule.kata == kata.name:
            missing = [lang for lang in i18n.LANGS if isinstance(rule.title, dict) and lang not in rule.title]
            if missing:
                out.append(f"katas/rules.toml: rule {rule_id} has no title in {', '.join(missing)}")
    if len(kata.hints()) < 3:
        out.append(f"{where}: a hint ladder has at least 3 steps ([[hint]])")
    for n, hint in enumerate(kata.hints(), 1):
        stray = [r for r in hint.rules if r not in decl.rules]
        if stray:
            out.append(f"{where}: hint {n} names rules the kata does not list: {stray}")
        missing = [lang for lang in i18n.LANGS if not str(hint.text.get(lang, "")).strip()]
        if missing:
            out.append(f"{where}: hint {n} lacks {', '.join(missing)}")
    missing = [lang for lang in i18n.LANGS if lang not in decl.title]
    if missing:
        out.append(f"{where}: title lacks {', '.join(missing)} (title.{missing[0]} = ...)")
    solved = {
        p.relative_to(kata.solution_path).as_posix()
        for p in kata.solution_path.rglob("*.py")
        if "__pycache__" not in p.parts
    }
    learner = {
        p.relative_to(kata.path).as_posix()
        for p in kata.path.rglob("*.py")
        if not p.name.startswith(("test_", "conftest")) and "__pycache__" not in p.parts
    }
    declared = set(kata.learner_files)
    if solved != declared:
        out.append(
            f"solutions/{kata.name}/ must hold exactly the files of {where}: "
            f"only declared {sorted(declared - solved)}, only in solutions {sorted(solved - declared)}"
        )
    if learner != declared:
        out.append(
            f"katas/{kata.name}/ must hold exactly the learner files of {where}: "
            f"only declared {sorted(declared - learner)}, only in katas {sorted(learner - declared)}"
        )
    manifest = _manifest()
    for rel in sorted(declared & learner):
        text, origin = pristine_stub(kata, rel, manifest)
        if text is not None and "TODO" not in text:
            out.append(f"katas/{kata.name}/{rel} ({origin}) marks no TODO where the learner writes")
    if not kata.spec_files:
        out.append(f"katas/{kata.name}/ has no spec file (test_*.py)")
    return out


def message_problems(kata: catalog.Kata) -> list[str]:
    path = kata.path / "messages.toml"
    if not path.is_file():
        return [f"katas/{kata.name}/messages.toml is missing"]
    try:
        return [p.replace(str(catalog.ROOT) + "/", "") for p in i18n.Catalog(path).problems()]
    except i18n.I18nError as e:
        return [str(e)]


def mistake_problems_static(kata: catalog.Kata) -> list[str]:
    out = []
    try:
        mistakes = catalog.mistakes(kata.name)
    except catalog.CatalogError as e:
        return [str(e)]
    if not mistakes:
        out.append(f"tests/mistakes/{kata.name}.toml declares no mistake ([[mistake]]; at least one)")
    for m in mistakes:
        where = f"tests/mistakes/{kata.name}.toml, mistake {m.id!r}"
        if m.rule not in kata.declaration.rules:
            out.append(f"{where}: rule {m.rule} is not a rule of the kata")
        if not m.why.strip():
            out.append(f"{where}: say why a learner writes this (why = ...)")
        try:
            m.apply((kata.solution_path / m.file).read_text(encoding="utf-8"))
        except (catalog.CatalogError, OSError) as e:
            out.append(f"{where}: {e}")
    return out


def variant_problems_static(kata: catalog.Kata) -> list[str]:
    try:
        variants = catalog.variants(kata.name)
    except catalog.CatalogError as e:
        return [str(e)]
    out = []
    for v in variants:
        where = f"tests/variants/{kata.name}/variants.toml, variant {v.id!r}"
        if v.expect == "fail" and v.rule not in kata.declaration.rules:
            out.append(f"{where}: rule {v.rule} is not a rule of the kata")
        missing = [rel for rel in kata.learner_files if not (v.path / rel).is_file()]
        if missing:
            out.append(f"{where}: tests/variants/{kata.name}/{v.id}/ lacks {missing}")
    return out


def static_problems(kata: catalog.Kata) -> list[str]:
    """Everything that needs no spec run."""
    out = declaration_problems(kata)
    if out and not kata.declaration_path.is_file():
        return out
    return (
        out
        + readme.problems(kata)
        + message_problems(kata)
        + mistake_problems_static(kata)
        + variant_problems_static(kata)
    )


# --- judges of runs ---------------------------------------------------------------------------------


def _describe(records: list[dict]) -> str:
    return "; ".join(f"{r.get('name', r.get('nodeid'))} {results.outcome_of(r)}" for r in records)


def _no_run(kata: str, run: runner.Run, what: str) -> str:
    tail = " | ".join(run.output.strip().splitlines()[-3:])
    why = "timed out" if run.timed_out else run.report_problem or "no spec of it ran"
    return f"{kata}: {what}: {why}: {tail}"


def solution_problems(kata: catalog.Kata, run: runner.Run) -> list[str]:
    if not run.of(kata.name):
        return [_no_run(kata.name, run, "the specs did not run on the solution")]
    out = [
        f"{kata.name}: {r.get('name')} {r['outcome']} on solutions/{kata.name}: "
        + next(iter((r.get("message") or "").splitlines()), "")
        for r in run.failed(kata.name)
    ]
    tagged = {rule for r in run.of(kata.name) for rule in results.rules_of(r)}
    missing = [rule.id for rule in kata.rules if rule.id not in tagged]
    if missing:
        out.append(f"{kata.name}: rules with no spec tagged @pytest.mark.rule: {missing}")
    return out


def stub_problems(kata: catalog.Kata, run: runner.Run) -> list[str]:
    mine = run.of(kata.name)
    if not mine:
        return [_no_run(kata.name, run, "the specs did not run on the stub")]
    errors = [r for r in mine if r["outcome"] == results.ERROR]
    out = []
    if errors:
        out.append(f"{kata.name}: specs error instead of failing on the stub: {_describe(errors)}")
    if not any(r["outcome"] == results.FAILED for r in mine):
        out.append(f"{kata.name}: no spec fails on the stub")
    return out


def mistake_problems(mistake: catalog.Mistake, run: runner.Run) -> list[str]:
    where = f"{mistake.kata}: mistake {mistake.id!r}"
    if not run.of(mistake.kata):
        return [_no_run(mistake.kata, run, f"the specs did not run on mistake {mistake.id!r}")]
    failed = run.failed(mistake.kata)
    if not any(mistake.rule in results.rules_of(r) for r in failed):
        by = _describe(failed) or "none"
        return [f"{where} ({mistake.why.strip()}) is not rejected by a spec of {mistake.rule}; failing: {by}"]
    return []


def variant_problems(variant: catalog.Variant, run: runner.Run) -> list[str]:
    where = f"{variant.kata}: variant {variant.id!r} (expect {variant.expect})"
    if not run.of(variant.kata):
        return [_no_run(variant.kata, run, f"the specs did not run on variant {variant.id!r}")]
    failed = run.failed(variant.kata)
    if variant.expect == "pass" and failed:
        return [f"{where} is rejected: {_describe(failed)}"]
    if variant.expect == "fail" and not any(variant.rule in results.rules_of(r) for r in failed):
        return [
            f"{where} is not rejected by a spec of {variant.rule}; failing: {_describe(failed) or 'none'}"
        ]
    return []


def never_failing_problems(
    kata: catalog.Kata, solution: runner.Run, stub: runner.Run, mistakes: Iterable[runner.Run]
) -> list[str]:
    specs = {r["nodeid"] for r in solution.of(kata.name)}
    caught = {r["nodeid"] for r in stub.failed(kata.name)}
    for run in mistakes:
        caught |= {r["nodeid"] for r in run.failed(kata.name)}
    never = sorted(specs - caught)
    if never:
        return [
            f"{kata.name}: specs that pass on the stub and on every declared mistake (declare the "
            f"mistake they catch in tests/mistakes/{kata.name}.toml): {', '.join(never)}"
        ]
    return []


# --- kata dev check ------------------------------------------------------------------------------------


def check(
    katas: list[catalog.Kata],
    run_specs: bool = True,
    env: Mapping[str, str] | None = None,
    report: Callable[..., None] | None = None,
) -> list[str]:
    """Every problem of these katas, one line each (an empty list: all is well).

    `report(key, **fields)` hears of progress: a message key of kata_tools/messages/cli.toml.
    """
    say = report or (lambda _key, **_fields: None)
    problems: list[str] = []
    for kata in katas:
        problems += static_problems(kata)
    if not run_specs:
        return problems
    runnable = [k for k in katas if k.declaration_path.is_file() and k.spec_files]
    if not runnable:
        return problems
    with tempfile.TemporaryDirectory(prefix="kata-check-") as tmp, _database(runnable, env) as db_env:
        runs = Runs(Path(tmp) / "src", db_env, Path(tmp) / "pycache")
        say("dev-running", katas=len(runnable))
        solution, stub = parallel(lambda f: f(runnable), [runs.solutions, runs.stubs])
        for kata in runnable:
            problems += solution_problems(kata, solution) + stub_problems(kata, stub)
            mistakes = catalog.mistakes(kata.name)
            variants = [v for v in catalog.variants(kata.name) if v.runs_here]
            say("dev-running-kata", name=kata.name, mistakes=len(mistakes), variants=len(variants))
            mistake_runs = parallel(runs.mistake, mistakes, jobs=jobs_for(kata))
            for m, run in zip(mistakes, mistake_runs):
                problems += mistake_problems(m, run)
            problems += never_failing_problems(kata, solution, stub, mistake_runs)
            for v, run in zip(variants, parallel(runs.variant, variants, jobs=jobs_for(kata))):
                problems += variant_problems(v, run)
    return problems


def _database(katas: list[catalog.Kata], env: Mapping[str, str] | None):
    import contextlib

    if env is not None or not any(k.needs_database for k in katas):
        return contextlib.nullcontext(dict(env or {}))
    return runner.shared_database()
