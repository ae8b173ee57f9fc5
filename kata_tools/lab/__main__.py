"""python -m kata_tools.lab: see kata_tools/lab/__init__.py."""

from kata_tools.lab import main

raise SystemExit(main(prog="python -m kata_tools.lab"))
