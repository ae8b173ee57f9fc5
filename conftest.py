"""Root conftest: the two pytest plugins, the kata frame and the database.

kata_tools.pytest_plugin: which code the specs run against, rule tags, teaching failures.
kata_tools.postgres.plugin: the `database` and `seeded_db` fixtures (contract between the two:
kata_tools.spec_report).
kata_tools.fast_feedback: less garbage-collector work per spec, no interpreter teardown (its docstring).
"""

import importlib.util
import os

from kata_tools import i18n

# pyproject's [tool.pytest] sets options of pytest-asyncio and pytest-timeout: without them pytest
# stops at "Unknown config option" and says nothing of why. A Python without the course installed:
missing = [
    dist
    for module, dist in (("pytest_asyncio", "pytest-asyncio"), ("pytest_timeout", "pytest-timeout"))
    if importlib.util.find_spec(module) is None
]
if missing:
    raise SystemExit(i18n.tool("plugin")("missing-pytest-plugins", names=", ".join(missing)))

pytest_plugins = ["kata_tools.pytest_plugin", "kata_tools.postgres.plugin", "kata_tools.fast_feedback"]
if os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD"):
    # Their entry points are not loaded then, so we name them; naming them always would register
    # them twice (pluggy refuses that).
    pytest_plugins += ["pytest_asyncio.plugin", "pytest_timeout"]
