"""The `kata` command, as a package of rooms with one job each:

    app.py       the command line: global options (--lang, --version), the entry point `main`
    commands.py  list, next, hint, lang
    watch.py     watch: the loop, the file watcher, the warm database of a session
    reset.py     reset
    grade.py     grade, lab (instructors)
    dev.py       dev new / check / sync (contributors; the work is in kata_tools/dev/)
    course.py    the course as the command sees it: katas, statuses, pristine files, a run
    texts.py     README and hint text in the learner's language
    ui.py        consoles, the words (kata_tools/messages/cli.toml), how a run is shown

Submodules never import this package's __init__; tests/test_architecture.py proves the import
graph has no circle.
"""

from kata_tools.cli.app import app, main
from kata_tools.cli.watch import BackgroundChanges, watch_loop

__all__ = ["BackgroundChanges", "app", "main", "watch_loop"]
