"""`kata release DIR`: the repository an instructor publishes as the assignment template.

The instructor keeps the full course (solutions/, tests/ with the mistake catalog and variants,
the self-tests). The student release holds what a learner needs and nothing that gives answers
away:

- the katas with their pristine learner files (taken from the manifest, so a solved file in the
  instructor's own checkout never leaks), their specs, READMEs and kata.toml;
- kata_tools/, kata_blog/, conftest.py, pyproject.toml, grading.toml, the READMEs, docs/;
- kata_tools/manifest.json made for it, and its digest pinned in
- .github/workflows/classroom.yml (GitHub Classroom, kata_tools/grading/classroom.py) and
  .github/workflows/grade.yml (a plain GitHub workflow), with .github/dependabot.yml;
- never solutions/, tests/ (mistakes, variants, self-tests: only a README saying so), benchmarks/,
  CONTRIBUTING.md, .git, caches or local state.

The course works fully without solutions/: `pytest katas/NN` checks the learner's own files, and
`--solutions` says in one line that this copy has none.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from kata_tools import catalog, i18n, manifest
from kata_tools.grading import classroom

DIRS = ("katas", "kata_tools", "kata_blog", "docs")
FILES = (
    "README.md",
    "README.ko.md",
    "LICENSE",
    "conftest.py",
    "pyproject.toml",
    "grading.toml",
    ".gitignore",
)
GITHUB = (".github/workflows/grade.yml", ".github/dependabot.yml")
NEVER = ("solutions", "tests", "benchmarks", "CONTRIBUTING.md", ".git", ".kata", "grade-report")
SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", ".kata", "*.egg-info", "manifest.json")


class ReleaseError(Exception):
    """The release cannot be written; the message says why."""


def release(
    dest: Path, root: Path | None = None, course_repo: str | None = None, course_ref: str = "main"
) -> dict:
    """Write the student release of the course at `root` into `dest` (new or empty)."""
    root = Path(root or catalog.ROOT).resolve()
    dest = Path(dest).resolve()
    if dest == root or root in dest.parents:
        raise ReleaseError(f"{dest}: write the release outside the course folder")
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise ReleaseError(f"{dest} exists and is not empty")
    try:
        pristine = manifest.load(root)
    except manifest.ManifestError as e:
        raise ReleaseError(str(e)) from None
    # Specs and tooling must be what the manifest says; the learner files come from it anyway.
    fresh = manifest.build(root)["protected"]
    stale = sorted(
        k for k in set(fresh) | set(pristine["protected"]) if fresh.get(k) != pristine["protected"].get(k)
    )
    if stale:
        raise ReleaseError(
            f"{manifest.MANIFEST_FILE} does not match this tree ({stale[0]} changed); "
            f"run `{manifest.WRITE_COMMAND}` first"
        )
    dest.mkdir(parents=True, exist_ok=True)
    for name in DIRS:
        if (root / name).is_dir():
            shutil.copytree(root / name, dest / name, ignore=SKIP)
    for name in FILES + GITHUB:
        if (root / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / name, dest / name)
    # The learner files exactly as the course ships them, whatever the instructor's copy holds.
    for kata, entry in pristine["katas"].items():
        for rel in entry["learner_files"]:
            text = manifest.pristine_text(kata, rel, pristine)
            if text is None:
                raise ReleaseError(f"{manifest.MANIFEST_FILE}: no pristine text of katas/{kata}/{rel}")
            (dest / "katas" / kata / rel).write_text(text, encoding="utf-8")
    # pyproject.toml's testpaths names tests/: the folder stays (the self-tests do not), so a bare
    # `pytest` in the release says "no tests ran" instead of failing on a missing folder.
    (dest / "tests").mkdir(exist_ok=True)
    (dest / "tests" / "README.md").write_text(
        "The course's own self-tests are not part of the student release.\n"
        "Run a kata's specs: `pytest katas/01_event_loop` (or `kata watch`).\n\n"
        "이 폴더의 자체 테스트는 학생용 배포본에 들어 있지 않다.\n"
        "카타의 스펙을 실행한다: `pytest katas/01_event_loop` (또는 `kata watch`).\n",
        encoding="utf-8",
    )
    path = manifest.write(dest)
    made = manifest.load(dest)
    digest = manifest.digest(made)
    if made["protected"] != pristine["protected"] or made["katas"] != pristine["katas"]:
        raise ReleaseError("the release's manifest differs from the course's: a file changed while copying")
    classroom.write(dest, dest, digest, course_repo, course_ref)
    files = sum(1 for p in dest.rglob("*") if p.is_file())
    return {"dest": str(dest), "digest": digest, "files": files, "manifest": str(path)}


def main(argv: list[str] | None = None, prog: str = "kata release") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    parser.add_argument("dest", type=Path, help="folder to write the release into (new or empty)")
    parser.add_argument(
        "--course-repo",
        metavar="OWNER/NAME",
        help="the assignment's template repository (this release, pushed): the Classroom workflow "
        "checks it out and grades --from the submission. Never your full course",
    )
    parser.add_argument("--course-ref", default="main", help="the course's branch, tag or commit")
    args = parser.parse_args(argv)
    try:
        result = release(args.dest, course_repo=args.course_repo, course_ref=args.course_ref)
    except (ReleaseError, catalog.CatalogError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    T = i18n.tool("grading")
    print(T("release-written", dest=result["dest"], files=result["files"], digest=result["digest"]))
    print(T("release-next"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
