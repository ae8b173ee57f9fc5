"""Tooling of the katas: the catalogs, the pytest plugin, concurrency probes and the `kata` command.

Learners never need to read this package; specs use `kata_tools.probes` and the `kata_module`
fixture, so what a spec checks stays visible in the spec itself.
"""
