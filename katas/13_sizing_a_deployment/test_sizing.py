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

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from kata_tools.deployment import Deployment, WorkerCrashed, WorkersTooSlow
from kata_tools.i18n import catalog

MSG = catalog(__file__)
FILE = "sizing.py"
EXTRA = 2  # each worker asks for its fair share of the budget and this many more
WAIT_FOR_A_SLOT = 0.05  # pool_timeout of a worker: a request beyond its pool gives up after this
# (nothing comes back while the spec counts, so a longer wait would only delay the report)
START_LIMIT = 60  # seconds a worker may take to start and take its connections, under heavy load


@pytest.fixture
def kata(kata_module):
    return kata_module(FILE)


@pytest.fixture(scope="session")
def deployment():
    """Starts the session's worker processes (kata_tools.deployment: forked from one parent that
    has imported SQLAlchemy, so a worker starts in milliseconds instead of 0.25 s)."""
    zygote = Deployment()
    yield zygote
    zygote.close()


def _connections_of_workers(conn, name: str) -> int:
    return conn.execute(
        text("SELECT count(*) FROM pg_stat_activity WHERE datname = :d AND pid <> pg_backend_pid()"),
        {"d": name},
    ).scalar_one()


def run_workers(deployment, seeded_db, settings: dict, workers: int, demand: int, spectator) -> dict:
    """Start `workers` processes, each asking its pool (the learner's settings) for `demand`
    connections at once. Returns what they got and the connections PostgreSQL saw them hold."""
    url = seeded_db.sync_url.render_as_string(hide_password=False)
    try:
        reports = deployment.run(url, settings, workers, demand, WAIT_FOR_A_SLOT, timeout=START_LIMIT)
    except WorkersTooSlow:
        pytest.fail(MSG("workers-slow", workers=workers, seconds=START_LIMIT), pytrace=False)
    except WorkerCrashed as e:
        pytest.fail(MSG("worker-crashed", settings=settings, problem=str(e) or MSG("no-output")), pytrace=False)
    try:
        held = _connections_of_workers(spectator, seeded_db.name)  # every worker is holding now
    finally:
        deployment.release()  # a released worker's connections close with it
    return {
        "held": held,
        "got": [r["got"] for r in reports],
        "errors": [e for r in reports for e in r["errors"]],
    }


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
    kata, deployment, seeded_db, workers, budget, limit_from, reserve
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
            seen = run_workers(deployment, seeded_db, settings, workers, share + EXTRA, spectator)
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
