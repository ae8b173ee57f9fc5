"""The kata plugin's rooms; pytest loads them all through `kata_tools.pytest_plugin` (the entry).

- `shared`: stash keys, limits, which items are specs, a spec's record and the --kata-report file.
- `failures`: a failing spec's teaching message (lines 1-3), and long_messages().
- `learner_files`: the `kata_module` fixture, which imports a learner file or fails once.
- `timeouts`: stopping learner code past its timeout, Ctrl-C, and a run that ends in time.
- `saved_progress`: the learner's .kata/results.json, merged after a run of katas/.
"""
