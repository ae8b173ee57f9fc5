"""Root conftest: loads the kata frame (kata_tools/pytest_plugin.py) for specs and project tests."""

pytest_plugins = ["kata_tools.pytest_plugin"]
