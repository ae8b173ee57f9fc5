"""Root conftest: loads the kata frame (kata_tools/pytest_plugin.py) and the database (database.py)."""

pytest_plugins = ["kata_tools.pytest_plugin", "kata_tools.database"]
