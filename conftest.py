"""Root conftest: the two pytest plugins, the kata frame and the database.

kata_tools.pytest_plugin: which code the specs run against, rule tags, teaching failures.
kata_tools.postgres.plugin: the `database` and `seeded_db` fixtures (contract between the two:
kata_tools.spec_report).
kata_tools.fast_feedback: less garbage-collector work per spec, no interpreter teardown (its docstring).
"""

pytest_plugins = ["kata_tools.pytest_plugin", "kata_tools.postgres.plugin", "kata_tools.fast_feedback"]
