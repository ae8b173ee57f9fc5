"""Do the course's dependencies have wheels for a Python and the platforms a learner has?

Downloads (does not install) every dependency of pyproject.toml, wheels only, for each target:
Linux x86_64 and aarch64, macOS arm64 and x86_64, Windows x86_64. Each target's markers are
evaluated for that target (pip's --platform alone would keep this machine's: uvloop asked for
Windows). Exit 1 when a target has no wheel for some dependency, with pip's line naming it.

    python .ci/wheels.py            # Python 3.14
    python .ci/wheels.py 3.15
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

try:
    from packaging.requirements import Requirement
except ImportError:  # pip's own copy, where packaging is not installed
    from pip._vendor.packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
# target -> (pip's --platform tags, the markers' sys_platform, platform_system, platform_machine)
TARGETS = {
    "linux-x86_64": (
        ["manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64", "manylinux1_x86_64"],
        "linux",
        "Linux",
        "x86_64",
    ),
    "linux-aarch64": (
        ["manylinux_2_28_aarch64", "manylinux_2_17_aarch64", "manylinux2014_aarch64"],
        "linux",
        "Linux",
        "aarch64",
    ),
    "macos-arm64": (["macosx_14_0_arm64", "macosx_11_0_arm64"], "darwin", "Darwin", "arm64"),
    "macos-x86_64": (["macosx_13_0_x86_64", "macosx_10_15_x86_64"], "darwin", "Darwin", "x86_64"),
    "windows-x86_64": (["win_amd64"], "win32", "Windows", "AMD64"),
}


def requirements_for(python: str, sys_platform: str, system: str, machine: str) -> list[str]:
    with open(ROOT / "pyproject.toml", "rb") as f:
        dependencies = tomllib.load(f)["project"]["dependencies"]
    environment = {
        "python_version": python,
        "python_full_version": f"{python}.0",
        "sys_platform": sys_platform,
        "platform_system": system,
        "platform_machine": machine,
        "platform_python_implementation": "CPython",
        "implementation_name": "cpython",
        "os_name": "nt" if sys_platform == "win32" else "posix",
    }
    out = []
    for line in dependencies:
        requirement = Requirement(line)
        if requirement.marker is None or requirement.marker.evaluate(environment):
            requirement.marker = None
            out.append(str(requirement))
    return out


def main() -> int:
    python = sys.argv[1] if len(sys.argv) > 1 else "3.14"
    failed = []
    for name, (platforms, *markers) in TARGETS.items():
        with tempfile.TemporaryDirectory() as folder:
            command = [
                sys.executable,
                "-m",
                "pip",
                "download",
                "-q",
                "--only-binary=:all:",
                "--python-version",
                python,
                "-d",
                folder,
            ]
            for platform in platforms:
                command += ["--platform", platform]
            result = subprocess.run(
                command + requirements_for(python, *markers), capture_output=True, text=True
            )
            wheels = len(list(Path(folder).glob("*.whl")))
        if result.returncode == 0:
            print(f"wheels: Python {python} {name}: {wheels} wheels")
        else:
            errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR")]
            print(f"wheels: Python {python} {name}: FAILED: {' / '.join(errors[-2:])}")
            failed.append(name)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
