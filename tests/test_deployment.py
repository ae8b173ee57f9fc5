"""kata_tools.deployment: kata 13's worker processes, forked from one parent or (as on Windows,
where there is no fork) started fresh, hold what their pools lend and let it all go."""

import json
import os
import subprocess
import sys
import time

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from kata_tools import deployment
from kata_tools.deployment import Deployment, WorkerCrashed

pytestmark = pytest.mark.timeout(60)


def held_by_workers(seeded_db) -> int:
    engine = create_engine(seeded_db.sync_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return conn.execute(
                text("SELECT count(*) FROM pg_stat_activity WHERE datname = :d AND pid <> pg_backend_pid()"),
                {"d": seeded_db.name},
            ).scalar_one()
    finally:
        engine.dispose()


def url_of(seeded_db) -> str:
    return seeded_db.sync_url.render_as_string(hide_password=False)


def test_forked_workers_hold_what_their_pools_lend_until_released(seeded_db):
    zygote = Deployment()
    try:
        settings = {"pool_size": 2, "max_overflow": 1}
        reports = zygote.run(url_of(seeded_db), settings, workers=3, demand=5, wait=0.05, timeout=60)
        assert [(r["got"], r["timeouts"], r["errors"]) for r in reports] == [(3, 2, [])] * 3
        assert held_by_workers(seeded_db) == 9
        zygote.release()
        assert held_by_workers(seeded_db) == 0
        again = zygote.run(url_of(seeded_db), {"pool_size": 1, "max_overflow": 0}, 2, 2, 0.05, timeout=60)
        assert [r["got"] for r in again] == [1, 1]  # the same zygote serves the next run
        zygote.release()
    finally:
        zygote.close()
    assert zygote.proc.poll() is not None


def test_a_setting_the_pool_cannot_use_is_the_workers_crash_not_a_refusal(seeded_db):
    zygote = Deployment()
    try:
        with pytest.raises(WorkerCrashed, match="TypeError"):
            zygote.run(
                url_of(seeded_db), {"pool_size": 1, "max_overflow": 0, "pool_recycle": "soon"}, 2, 1, 0.05, 60
            )
        assert held_by_workers(seeded_db) == 0
    finally:
        zygote.close()


def test_without_fork_each_worker_starts_fresh_with_the_same_reports(seeded_db):
    """The Windows path, run here: the zygote with os.fork removed starts interpreters instead."""
    boot = f"import os, runpy, sys; del os.fork; sys.argv = ['zygote']; runpy.run_path({deployment.__file__!r}, run_name='__main__')"
    proc = subprocess.Popen(
        [sys.executable, "-c", boot], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        run = {
            "url": url_of(seeded_db),
            "settings": {"pool_size": 1, "max_overflow": 1},
            "workers": 2,
            "demand": 3,
            "wait": 0.05,
        }
        proc.stdin.write(json.dumps(run) + "\n")
        proc.stdin.flush()
        reports = json.loads(proc.stdout.readline())["reports"]
        assert [(r["got"], r["timeouts"]) for r in reports] == [(2, 1)] * 2
        assert held_by_workers(seeded_db) == 4
        proc.stdin.write(json.dumps({"release": True}) + "\n")
        proc.stdin.flush()
        assert json.loads(proc.stdout.readline()) == {"released": 2}
        assert held_by_workers(seeded_db) == 0
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
        proc.stdout.close()


@pytest.mark.skipif(not hasattr(os, "killpg"), reason="process groups are POSIX")
def test_closing_ends_workers_that_still_hold_connections(seeded_db):
    zygote = Deployment()
    zygote.run(url_of(seeded_db), {"pool_size": 2, "max_overflow": 0}, 2, 2, 0.05, timeout=60)
    zygote.close()  # no release: a spec that failed mid-run
    assert zygote.proc.poll() is not None
    deadline = time.monotonic() + 5  # a killed worker's backends leave within milliseconds
    while held_by_workers(seeded_db) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert held_by_workers(seeded_db) == 0
