"""The pristine tree's fingerprint: what `kata grade` checks for tampering and `kata reset` restores.

`kata_tools/manifest.json` is made from the pristine course tree by

    python -m kata_tools.manifest --write
    python -m kata_tools.manifest --check     # lists what differs from it; exit 1 if anything

and again by `kata release DIR` for the student release (a derived file: see docs/grading.md).

- `protected`: the sha256 of every file that can change a grade: everything under `katas/`
  except the learner files (each kata.toml's `files`) and the READMEs, everything under
  `kata_tools/` and `kata_blog/`, the root `conftest.py` and `grading.toml`, and the tables of
  `pyproject.toml` that can load code (hashed as parsed data: [build-system], [project] but its
  descriptive keys, and every [tool] table but formatters' and linters').
- `katas`: per kata, its learner files with their pristine text, so `kata reset` works without
  git and the tamper check knows the learner files.

The check is an allow list. Under katas/, kata_tools/ and kata_blog/ every file that is neither
protected, nor a learner file, nor a kata README is reported `added`, whatever its suffix (.pyc,
.so, .pth, data files); only __pycache__ folders are skipped (the grader never reads them: its
bytecode goes to a private folder) and a few desktop files (.DS_Store, Thumbs.db). At the top
level, files Python or pytest would pick up: `.py`, `.pth`, `.pyc`, `.so`, `.pyd`, pytest/tox/
setup configs, and a package `X/__init__.py`. Protected files are `modified` or `deleted`.
Symlinks are never followed: a symlinked file or folder (a top folder such as kata_blog/ too) is
one `added` entry, and the protected files it would stand for are `deleted`.
Hashes are taken with CRLF read as LF, so a Windows checkout is not "modified".
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from kata_tools import catalog
from kata_tools.catalog import tomllib

MANIFEST_FILE = "kata_tools/manifest.json"
WRITE_COMMAND = "python -m kata_tools.manifest --write"
PYTEST_CONFIG = "pyproject.toml (tables that can load code)"
FORMAT = 2

SKIP_DIRS = {"__pycache__"}
HARMLESS = {".DS_Store", "Thumbs.db", "desktop.ini"}
PROTECTED_DIRS = ("katas", "kata_tools", "kata_blog")
PROTECTED_FILES = ("conftest.py", "grading.toml")
KATA_PROSE = {"README.md", "README.ko.md"}
# pyproject.toml keys that load no code: a learner may change them.
PROJECT_PROSE = {
    "version",
    "description",
    "readme",
    "authors",
    "maintainers",
    "keywords",
    "classifiers",
    "urls",
    "license",
    "license-files",
}
TOOL_PROSE = {"black", "ruff", "isort", "mypy", "pyright", "pylint", "codespell", "bumpversion"}
CONFIG_NAMES = {
    "conftest.py",
    "pytest.ini",
    ".pytest.ini",
    "pytest.toml",
    ".pytest.toml",
    "tox.ini",
    "setup.cfg",
    "pyproject.toml",
    "sitecustomize.py",
    "usercustomize.py",
}
TOP_LEVEL_SUFFIXES = {".py", ".pth", ".pyc", ".so", ".pyd"}


class ManifestError(Exception):
    """The manifest is missing or unreadable; the message says how to make it."""


def file_hash(path: Path) -> str:
    data = path.read_bytes()
    if b"\0" not in data:
        data = data.replace(b"\r\n", b"\n")
    return hashlib.sha256(data).hexdigest()


def code_tables(data: dict) -> dict:
    """The parts of a parsed pyproject.toml that can load code (see the module docstring)."""
    out = {k: v for k, v in data.items() if k not in ("project", "tool")}
    project = data.get("project", {})
    out["project"] = (
        {k: v for k, v in project.items() if k not in PROJECT_PROSE} if isinstance(project, dict) else project
    )
    tool = data.get("tool", {})
    out["tool"] = {k: v for k, v in tool.items() if k not in TOOL_PROSE} if isinstance(tool, dict) else tool
    return out


def pytest_config_hash(root: Path) -> str:
    """sha256 of pyproject.toml's tables that can load code, as data; "unreadable" if unreadable."""
    try:
        with (root / "pyproject.toml").open("rb") as f:
            table = code_tables(tomllib.load(f))
    except (OSError, tomllib.TOMLDecodeError):
        return "unreadable"
    text = json.dumps(table, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _walk(folder: Path):
    """The files under `folder`, never through a symlink: a symlink (to a file or a folder, the
    folder itself included) is yielded as one entry and not entered."""
    if folder.is_symlink():
        yield folder
        return
    if not folder.is_dir():
        return
    for path in sorted(folder.iterdir()):
        if path.is_symlink():
            yield path  # never followed; reported as one added entry
        elif path.is_dir():
            if path.name not in SKIP_DIRS:
                yield from _walk(path)
        elif path.name not in HARMLESS:
            yield path


def _through_symlink(root: Path, rel: str) -> bool:
    """Whether root/rel is a symlink or lies under one (below `root`)."""
    path = root
    for part in rel.split("/"):
        path = path / part
        if path.is_symlink():
            return True
    return False


def _rel(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


def learner_files_of(root: Path) -> dict[str, list[str]]:
    """{kata: [learner file paths relative to the kata folder]}, from each kata.toml of `root`."""
    out = {}
    for kata_dir in sorted((root / "katas").iterdir()) if (root / "katas").is_dir() else []:
        decl = kata_dir / "kata.toml"
        if kata_dir.is_dir() and catalog.KATA_DIR.match(kata_dir.name) and decl.is_file():
            out[kata_dir.name] = sorted(catalog._declaration(decl.resolve()).files)
    return out


def _is_learner_file(rel: str, learner: dict[str, list[str]]) -> bool:
    parts = rel.split("/", 2)
    return len(parts) == 3 and parts[0] == "katas" and parts[2] in learner.get(parts[1], ())


def protected_files(root: Path, learner: dict[str, list[str]]) -> list[str]:
    out = []
    for top in PROTECTED_DIRS:
        for path in _walk(root / top):
            rel = _rel(root, path)
            if rel == MANIFEST_FILE or _is_learner_file(rel, learner) or path.is_symlink():
                continue
            if top == "katas" and path.name in KATA_PROSE and path.parent.parent.name == "katas":
                continue  # prose: a learner's notes in a README change no grade
            out.append(rel)
    out += [rel for rel in PROTECTED_FILES if (root / rel).is_file()]
    return sorted(out)


def build(root: Path | None = None) -> dict:
    """The manifest of the tree at `root` (default: this project), as written by --write."""
    root = Path(root or catalog.ROOT)
    learner = learner_files_of(root)
    katas = {}
    for kata, files in learner.items():
        entries = {}
        for rel in files:
            path = root / "katas" / kata / rel
            if path.is_file():
                entries[rel] = {"sha256": file_hash(path), "text": path.read_text(encoding="utf-8")}
        katas[kata] = {"learner_files": entries}
    protected = {rel: file_hash(root / rel) for rel in protected_files(root, learner)}
    protected[PYTEST_CONFIG] = pytest_config_hash(root)
    return {
        "format": FORMAT,
        "about": f"Made from the pristine course tree by `{WRITE_COMMAND}`; see kata_tools/manifest.py.",
        "katas": katas,
        "protected": protected,
    }


def dumps(manifest: dict) -> str:
    return json.dumps(manifest, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def digest(manifest: dict) -> str:
    """A short fingerprint of a manifest: instructors compare it with their own (`--expect-manifest`)."""
    return hashlib.sha256(dumps(manifest).encode()).hexdigest()[:16]


def load(root: Path | None = None) -> dict:
    path = Path(root or catalog.ROOT) / MANIFEST_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ManifestError(f"{MANIFEST_FILE} is missing; make it with `{WRITE_COMMAND}`") from None
    except (OSError, ValueError) as e:
        raise ManifestError(f"{MANIFEST_FILE} is unreadable ({e}); restore it from the course") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or "protected" not in data:
        raise ManifestError(f"{MANIFEST_FILE} has an unknown format; restore it from the course")
    return data


@dataclass(frozen=True)
class Change:
    path: str
    kind: str  # modified, deleted, added
    katas: tuple[str, ...]  # the katas whose grade it can change; () for the CI templates

    def describe(self) -> str:
        scope = ", ".join(self.katas) if self.katas else "CI templates only"
        return f"{self.kind}: {self.path} (affects {scope})"


def affected(rel: str, all_katas: tuple[str, ...]) -> tuple[str, ...]:
    parts = rel.split("/")
    if parts[0] == "katas" and len(parts) > 2 and catalog.KATA_DIR.match(parts[1]):
        return (parts[1],)
    if parts[0] == ".github":
        return ()
    return all_katas


def _picked_up(root: Path) -> list[str]:
    """Files of the tree that can change a grade (see the module docstring): the allow list."""
    found = []
    for top in PROTECTED_DIRS:
        for path in _walk(root / top):
            found.append(_rel(root, path))
    for path in sorted(root.iterdir()) if root.is_dir() else []:
        if path.is_file() and (path.suffix in TOP_LEVEL_SUFFIXES or path.name in CONFIG_NAMES):
            if path.name != "pyproject.toml":
                found.append(path.name)
        elif (
            path.is_dir()
            and not path.name.startswith(".")
            and path.name not in PROTECTED_DIRS
            and (path / "__init__.py").is_file()
        ):
            found.append(f"{path.name}/__init__.py")
    return found


def check(root: Path | None = None, manifest: dict | None = None) -> list[Change]:
    """What differs between the tree at `root` and the manifest (default: the committed one)."""
    root = Path(root or catalog.ROOT)
    manifest = manifest if manifest is not None else load(root)
    pristine = manifest["protected"]
    learner = {k: sorted(v["learner_files"]) for k, v in manifest.get("katas", {}).items()}
    all_katas = tuple(sorted(manifest.get("katas", {})))
    changes = []
    for rel, expected in sorted(pristine.items()):
        if rel == PYTEST_CONFIG:
            if pytest_config_hash(root) != expected:
                changes.append(Change(rel, "modified", all_katas))
            continue
        path = root / rel
        if _through_symlink(root, rel) or not path.is_file():  # a linked file or folder is not read
            changes.append(Change(rel, "deleted", affected(rel, all_katas)))
        elif file_hash(path) != expected:
            changes.append(Change(rel, "modified", affected(rel, all_katas)))
    for rel in _picked_up(root):
        parts = rel.split("/")
        prose = len(parts) == 3 and parts[0] == "katas" and parts[2] in KATA_PROSE
        if rel in pristine or rel == MANIFEST_FILE or prose:
            continue
        if not _is_learner_file(rel, learner) or _through_symlink(root, rel):
            changes.append(Change(rel, "added", affected(rel, all_katas)))
    return changes


def pristine_text(kata: str, rel: str, manifest: dict) -> str | None:
    entry = manifest.get("katas", {}).get(kata, {}).get("learner_files", {}).get(rel)
    if not isinstance(entry, dict) or not isinstance(entry.get("text"), str):
        return None
    text = entry["text"]
    if hashlib.sha256(text.encode().replace(b"\r\n", b"\n")).hexdigest() != entry.get("sha256"):
        return None
    return text


def write(root: Path | None = None) -> Path:
    root = Path(root or catalog.ROOT)
    path = root / MANIFEST_FILE
    path.write_text(dumps(build(root)), encoding="utf-8")
    return path


def stale(root: Path | None = None) -> list[str]:
    """How the committed manifest differs from one made now (empty when it is up to date)."""
    root = Path(root or catalog.ROOT)
    fresh = build(root)
    try:
        current = load(root)
    except ManifestError as e:
        return [str(e)]
    out = []
    for section in ("protected", "katas"):
        old, new = current.get(section, {}), fresh[section]
        for key in sorted(set(old) | set(new)):
            if old.get(key) != new.get(key):
                what = "new" if key not in old else "gone" if key not in new else "changed"
                out.append(f"{section}: {key} ({what})")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m kata_tools.manifest", description=__doc__.split("\n\n")[0]
    )
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument(
        "--write",
        action="store_true",
        help="rewrite the manifest from this tree",
    )
    action.add_argument("--check", action="store_true", help="list files that differ from the manifest")
    action.add_argument("--stale", action="store_true", help="say whether the manifest needs --write")
    parser.add_argument(
        "root", nargs="?", type=Path, default=None, help="tree to check (default: this project)"
    )
    args = parser.parse_args(argv)
    root = (args.root or catalog.ROOT).resolve()
    try:
        if args.write:
            path = write(root)
            print(f"wrote {path.relative_to(root).as_posix()} (digest {digest(load(root))})")
            return 0
        if args.stale:
            diffs = stale(root)
            for line in diffs:
                print(line)
            print(f"stale: run `{WRITE_COMMAND}`" if diffs else "up to date")
            return 1 if diffs else 0
        changes = check(root)
    except (ManifestError, catalog.CatalogError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for change in changes:
        print(change.describe())
    print(
        f"{len(changes)} change(s) from the pristine tree" if changes else "no changes from the pristine tree"
    )
    return 1 if changes else 0


if __name__ == "__main__":
    sys.exit(main())
