"""Specs of kata 13: sizing a deployment (rules DP1, DP2). Do not edit: edit sizing.py.

The DP1 specs run your sizing for real: they start W worker processes, each of which builds a
real engine with the settings your `pool_settings` returned and asks its pool for more
connections at once than its share of the budget (each connection held until the spec has
counted). The spec then counts, from a connection of its own, how many connections the workers
really hold in PostgreSQL (pg_stat_activity), and whether any worker was refused by the server.
The server's limits are real: `SHOW max_connections` of the spec's PostgreSQL, or a CONNECTION
LIMIT the spec sets on its copy of the database, which PostgreSQL enforces for the course's role.
No stopwatch.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeout

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from kata_tools.i18n import catalog

MSG = catalog(__file__)
FILE = "sizing.py"
EXTRA = 2  # each worker asks for its fair share of the budget and this many more
WAIT_FOR_A_SLOT = 0.25  # pool_timeout of a worker: a request beyond its pool gives up after this
START_LIMIT = 60  # seconds a worker may take to start and take its connections, under heavy load

# One worker process: an engine with the learner's pool settings, `demand` threads that each take
# a connection and keep it; it reports what it got, then holds everything until stdin closes.
WORKER = r"""
import json, sys, threading
from sqlalchemy import create_engine, exc, text

url, settings, demand, wait = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
engine = create_engine(url, **{**settings, "pool_timeout": wait})
held, errors, timeouts, lock = [], [], [0], threading.Lock()

def take():
    try:
        conn = engine.connect()
        conn.execute(text("SELECT 1"))
    except exc.TimeoutError:
        with lock:
            timeouts[0] += 1
    except Exception as e:
        with lock:
            message = str(e).strip()
            message = message.split("FATAL:")[-1].strip() if "FATAL:" in message else message
            errors.append(type(e).__name__ + ": " + message.splitlines()[0][:160])
    else:
        with lock:
            held.append(conn)

threads = [threading.Thread(target=take) for _ in range(demand)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(json.dumps({"got": len(held), "errors": errors, "timeouts": timeouts[0]}), flush=True)
sys.stdin.read()  # hold every connection until the spec has counted
for conn in held:
    conn.close()
engine.dispose()
"""


@pytest.fixture
def kata(kata_module):
    return kata_module(FILE)


def _connections_of_workers(conn, name: str) -> int:
    return conn.execute(
        text("SELECT count(*) FROM pg_stat_activity WHERE datname = :d AND pid <> pg_backend_pid()"),
        {"d": name},
    ).scalar_one()


def run_workers(seeded_db, settings: dict, workers: int, demand: int, spectator) -> dict:
    """Start `workers` processes, each asking its pool (the learner's settings) for `demand`
    connections at once. Returns what they got and the connections PostgreSQL saw them hold."""
    url = seeded_db.sync_url.render_as_string(hide_password=False)
    procs = []
    readers = ThreadPoolExecutor(workers)
    try:
        for _ in range(workers):
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-c", WORKER, url, json.dumps(settings), str(demand), str(WAIT_FOR_A_SLOT)],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
        try:
            lines = list(readers.map(lambda p: p.stdout.readline(), procs, timeout=START_LIMIT))
        except FuturesTimeout:
            pytest.fail(MSG("workers-slow", workers=workers, seconds=START_LIMIT), pytrace=False)
        reports = []
        for proc, line in zip(procs, lines):
            if not line:
                proc.kill()
                problem = proc.stderr.read().strip().splitlines()[-1:] or [MSG("no-output")]
                pytest.fail(MSG("worker-crashed", settings=settings, problem=problem[0][:200]), pytrace=False)
            reports.append(json.loads(line))
        held = _connections_of_workers(spectator, seeded_db.name)  # every worker is holding now
        return {
            "held": held,
            "got": [r["got"] for r in reports],
            "errors": [e for r in reports for e in r["errors"]],
        }
    finally:
        for proc in procs:
            proc.kill()  # a killed worker's connections close with it
        readers.shutdown(wait=True)  # their readline ends once the process is gone
        for proc in procs:
            proc.wait(timeout=30)
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                stream.close()


def checked_settings(settings, rule: str, call: str) -> dict:
    """The learner's answer, as keyword arguments of create_engine for one worker's pool."""
    if not isinstance(settings, dict) or not {"pool_size", "max_overflow"} <= set(settings):
        pytest.fail(MSG("not-settings", call=call, got=settings, rule=rule), pytrace=False)
    size, overflow = settings["pool_size"], settings["max_overflow"]
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (size, overflow)):
        pytest.fail(MSG("not-whole", call=call, got=settings, rule=rule), pytrace=False)
    if size <= 0 or overflow < 0:
        # SQLAlchemy: pool_size=0 sets max_overflow=-1, and max_overflow=-1 is no limit at all
        pytest.fail(MSG("no-limit", call=call, size=size, overflow=overflow, rule=rule), pytrace=False)
    try:
        json.dumps(settings)
    except TypeError:
        pytest.fail(MSG("not-settings", call=call, got=settings, rule=rule), pytrace=False)
    return settings


def per_worker(settings: dict) -> int:
    return settings["pool_size"] + settings["max_overflow"]


class Outcome:
    """What a call of the learner's function did: its value, or the error it raised."""

    def __init__(self, run):
        self.value, self.error, self.message = None, "", ""
        try:
            self.value = run()
        except NotImplementedError:
            raise  # a TODO: the kata plugin says "not written yet" and where
        except Exception as e:
            self.error, self.message = type(e).__name__, str(e)

    def fail_if_crashed(self, rule: str, where: str) -> None:
        if self.error:
            pytest.fail(MSG("crashed", call=where, error=self.error, message=self.message[:160], rule=rule), pytrace=False)


attempt = Outcome


def call(kata, name: str, *args, rule: str):
    where = f"{name}{args}"
    outcome = attempt(lambda: getattr(kata, name)(*args))
    outcome.fail_if_crashed(rule, where)
    return outcome.value


# --- DP1: the budget is shared by every worker process -------------------------------------------

# (workers, budget wanted, where the limit comes from): "server" = the real SHOW max_connections
# with a reserve that leaves the budget; "database" = a CONNECTION LIMIT on the spec's database
# (PostgreSQL refuses the connection past it), passed as max_connections, with a small reserve.
REAL_RUNS = [
    pytest.param(1, 7, "database", 3, id="1-worker-limit-10"),
    pytest.param(2, 13, "database", 3, id="2-workers-limit-16"),
    pytest.param(3, 14, "server", None, id="3-workers-server-limit"),
    pytest.param(5, 17, "database", 4, id="5-workers-limit-21"),
]


@pytest.mark.rule("DP1")
@pytest.mark.timeout(120)
@pytest.mark.parametrize("workers, budget, limit_from, reserve", REAL_RUNS)
def test_every_worker_process_together_stays_within_the_budget(
    kata, seeded_db, workers, budget, limit_from, reserve
):
    """W processes, each with the pool you sized, all asking for more than their share at once:
    PostgreSQL refuses none, they hold no more than max_connections - reserve together, and
    they get as much of it as W equal pools can."""
    spectator_engine = create_engine(seeded_db.sync_url, poolclass=NullPool)
    try:
        with spectator_engine.connect() as spectator:
            spectator.execution_options(isolation_level="AUTOCOMMIT")
            if limit_from == "server":
                max_connections = int(spectator.execute(text("SHOW max_connections")).scalar_one())
                reserve = max_connections - budget  # superuser slots, admin, migrations, other apps
            else:
                max_connections = budget + reserve
                spectator.execute(text(f'ALTER DATABASE "{seeded_db.name}" CONNECTION LIMIT {max_connections}'))
            settings = checked_settings(
                call(kata, "pool_settings", max_connections, reserve, workers, rule="DP1"),
                "DP1",
                f"pool_settings({max_connections}, {reserve}, {workers})",
            )
            share = math.ceil(budget / workers)
            seen = run_workers(seeded_db, settings, workers, share + EXTRA, spectator)
    finally:
        spectator_engine.dispose()

    size, overflow = settings["pool_size"], settings["max_overflow"]
    if seen["errors"]:
        pytest.fail(
            MSG(
                "refused", workers=workers, size=size, overflow=overflow, total=workers * per_worker(settings),
                max_connections=max_connections, reserve=reserve, refused=len(seen["errors"]),
                error=seen["errors"][0],
            ),
            pytrace=False,
        )
    total = workers * per_worker(settings)
    if workers > 1 and per_worker(settings) >= budget:
        key = "over-budget-one-process"  # each pool sized as if it were the only process
    elif total <= max_connections:
        key = "over-budget-no-reserve"  # the reserve forgotten
    else:
        key = "over-budget"
    assert seen["held"] <= budget, MSG(
        key, workers=workers, size=size, overflow=overflow, held=seen["held"],
        max_connections=max_connections, reserve=reserve, budget=budget,
    )
    best = workers * (budget // workers)
    assert seen["held"] >= best, MSG(
        "budget-unused", workers=workers, size=size, overflow=overflow, held=seen["held"],
        budget=budget, best=best, each=budget // workers,
    )


SUMS = [  # (max_connections, reserve, workers): arithmetic only, on servers larger than the spec's
    (100, 13, 4),
    (200, 23, 7),
    (500, 40, 9),
    (64, 10, 6),
    (30, 3, 1),
]


@pytest.mark.rule("DP1")
@pytest.mark.parametrize("max_connections, reserve, workers", SUMS)
def test_the_sizing_fits_any_server_and_any_number_of_workers(kata, max_connections, reserve, workers):
    """On other servers too: W x (pool_size + max_overflow) within the budget, and as close to it
    as W equal pools can be."""
    settings = checked_settings(
        call(kata, "pool_settings", max_connections, reserve, workers, rule="DP1"),
        "DP1",
        f"pool_settings({max_connections}, {reserve}, {workers})",
    )
    budget = max_connections - reserve
    total = workers * per_worker(settings)
    size, overflow = settings["pool_size"], settings["max_overflow"]
    assert total <= budget, MSG(
        "sum-over-budget", max_connections=max_connections, reserve=reserve, workers=workers,
        size=size, overflow=overflow, total=total, budget=budget,
    )
    best = workers * (budget // workers)
    assert total >= best, MSG(
        "sum-unused", max_connections=max_connections, reserve=reserve, workers=workers,
        size=size, overflow=overflow, total=total, best=best, each=budget // workers,
    )


@pytest.mark.rule("DP1")
@pytest.mark.parametrize("max_connections, reserve, workers", [(20, 17, 4), (100, 95, 8)])
def test_a_budget_smaller_than_the_workers_raises(kata, max_connections, reserve, workers):
    """Fewer connections than workers: no pool of at least one each fits. Say so."""
    outcome = attempt(lambda: kata.pool_settings(max_connections, reserve, workers))
    if outcome.error == "ValueError":
        return
    outcome.fail_if_crashed("DP1", f"pool_settings({max_connections}, {reserve}, {workers})")
    pytest.fail(
        MSG("should-raise-budget", max_connections=max_connections, reserve=reserve, workers=workers, got=outcome.value),
        pytrace=False,
    )


# --- DP2: size for the load (Little's law), or say it does not fit ------------------------------

LOADS = [  # (rate per second, seconds a request holds a connection, workers, max_connections, reserve)
    pytest.param(130, 0.05, 2, 100, 20, id="6.5-at-once-2-workers"),
    pytest.param(70, 0.25, 3, 25, 7, id="17.5-at-once-3-workers-just-fits"),
    pytest.param(400, 0.125, 4, 100, 40, id="50-at-once-4-workers"),
    pytest.param(9, 0.5, 1, 20, 5, id="4.5-at-once-1-worker"),
    pytest.param(45, 0.2, 5, 60, 10, id="9-at-once-5-workers"),
]


@pytest.mark.rule("DP2")
@pytest.mark.parametrize("rate, hold, workers, max_connections, reserve", LOADS)
def test_the_pools_serve_the_load_within_the_budget(kata, rate, hold, workers, max_connections, reserve):
    """rate x hold connections are in use at once (Little's law); spread over the workers and
    rounded up, the pools hold them all, and never more than the budget."""
    where = f"pool_for_load({rate}, {hold}, {workers}, {max_connections}, {reserve})"
    outcome = attempt(lambda: kata.pool_for_load(rate, hold, workers, max_connections, reserve))
    needed = math.ceil(rate * hold)
    each = math.ceil(needed / workers)
    budget = max_connections - reserve
    if outcome.error == "ValueError":
        pytest.fail(
            MSG("raised-but-fits", call=where, message=outcome.message[:160], needed=needed, workers=workers,
                each=each, total=each * workers, budget=budget),
            pytrace=False,
        )
    outcome.fail_if_crashed("DP2", where)
    settings = checked_settings(outcome.value, "DP2", where)
    total = workers * per_worker(settings)
    size, overflow = settings["pool_size"], settings["max_overflow"]
    assert per_worker(settings) >= each, MSG(
        "too-small", call=where, size=size, overflow=overflow, total=total, rate=rate, hold=hold,
        at_once=rate * hold, needed=needed, each=each, workers=workers,
    )
    assert total <= budget, MSG(
        "load-over-budget", call=where, size=size, overflow=overflow, total=total, budget=budget,
        max_connections=max_connections, reserve=reserve,
    )


NO_FIT = [
    pytest.param(90, 0.25, 4, 100, 78, id="22.5-at-once-budget-22"),
    pytest.param(92, 0.25, 4, 50, 27, id="23-at-once-budget-23-but-4x6"),
    pytest.param(1000, 0.1, 2, 100, 10, id="100-at-once-budget-90"),
]


@pytest.mark.rule("DP2")
@pytest.mark.parametrize("rate, hold, workers, max_connections, reserve", NO_FIT)
def test_a_load_that_does_not_fit_raises_a_value_error_that_says_why(
    kata, rate, hold, workers, max_connections, reserve
):
    """When the pools the load needs pass the budget, there is no right pool: raise ValueError
    with a message (a bigger server, fewer workers, pgbouncer), never return an oversized pool."""
    where = f"pool_for_load({rate}, {hold}, {workers}, {max_connections}, {reserve})"
    needed = math.ceil(rate * hold)
    each = math.ceil(needed / workers)
    budget = max_connections - reserve
    outcome = attempt(lambda: kata.pool_for_load(rate, hold, workers, max_connections, reserve))
    if outcome.error == "ValueError":
        assert outcome.message.strip(), MSG("silent-error", call=where)
        return
    outcome.fail_if_crashed("DP2", where)
    pytest.fail(
        MSG("should-raise-load", call=where, got=outcome.value, needed=needed, workers=workers, each=each,
            total=each * workers, budget=budget),
        pytrace=False,
    )
