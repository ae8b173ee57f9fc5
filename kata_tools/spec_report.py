"""The contract between the kata plugin (kata_tools.pytest_plugin) and the database plugin.

One public stash key, nothing else:

    CALL_REPORT: pytest.StashKey[pytest.TestReport]

- Writer: kata_tools.pytest_plugin, in its `pytest_runtest_makereport` wrapper, stores the report
  of the CALL phase of every item (spec or not) on `item.stash[CALL_REPORT]`, before any teardown
  of that item runs.
- Readers: fixture teardowns (kata_tools.postgres.plugin's `seeded_db`) read it with
  `request.node.stash.get(CALL_REPORT, None)`: None means the call phase never ran (setup failed,
  or the run was interrupted); `.passed` says whether the spec's own body passed, so a teardown can
  add a failure (a leaked connection) only to a spec that otherwise passed.
- Neither plugin imports the other; both import this module. Changing the key's meaning is a
  change of this contract: update the docstring and both sides together.
"""

from __future__ import annotations

import pytest

CALL_REPORT = pytest.StashKey[pytest.TestReport]()


def call_report(item: pytest.Item) -> pytest.TestReport | None:
    """The call phase's report of `item`, or None if its call phase never ran."""
    return item.stash.get(CALL_REPORT, None)
