"""Which PostgreSQL a run uses: `provision()`, and `warm_server()` for many runs (kata watch).

`provision()` tries, in this order:
  1. KATA_DATABASE_URL or DATABASE_URL, if set: that server (it needs the CREATEDB privilege);
     with KATA_DATABASE_TEMPLATE (set by `warm_server().env`) the seeded template given there is
     used as it is, and KATA_DATABASE_ROLE names the role the specs connect as;
  2. a Docker engine that answers within 2 s: a throwaway PostgreSQL through testcontainers
     (the optional `docker` extra: `pip install -e .[docker]`);
  3. otherwise the embedded PostgreSQL (kata_tools.postgres.server): a cached cluster started in
     about 0.1 s, with the template already seeded in it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from kata_tools import i18n
from kata_tools.postgres import spares
from kata_tools.postgres.copies import (  # noqa: F401 - re-exported: the package's public names
    Database,
    DatabaseProblem,
    DatabaseUnavailable,
    execute_all,
    one_line,
    seed_template,
)


def _say(key: str, **fields) -> str:
    return i18n.tool("plugin")(key, **fields)


# --- the sources, in order --------------------------------------------------------------------


def from_environment() -> Database | None:
    for var in ("KATA_DATABASE_URL", "DATABASE_URL"):
        url = os.environ.get(var)
        if url:
            from sqlalchemy.engine import make_url

            parsed = make_url(url)
            # Admin work goes through psycopg2 (libpq form: postgresql://, no +driver).
            admin = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
            where = f"{parsed.host or 'local socket'}:{parsed.port or 5432}/{parsed.database}"
            description = os.environ.get("KATA_DATABASE_DESCRIPTION") or _say(
                "db-from-environment", var=var, where=where
            )
            return Database(
                kind=var,
                admin_url=admin,
                description=description,
                learner_role=os.environ.get("KATA_DATABASE_ROLE") or None,
                given_template=os.environ.get("KATA_DATABASE_TEMPLATE") or None,
                spares=os.environ.get(spares.ENV) or None,
            )
    return None


def docker_answers(timeout: float = 2.0) -> bool:
    """True only if a Docker engine answers a ping within `timeout` seconds; never hangs."""
    host = os.environ.get("DOCKER_HOST", "")
    if not host and not any(os.path.exists(p) for p in ("/var/run/docker.sock", r"\\.\pipe\docker_engine")):
        return False  # no socket (Linux, macOS) or named pipe (Windows) at all: answered at once
    try:
        import docker  # installed with the optional `docker` extra
    except ImportError:
        return False
    answer: list[bool] = []

    def ping() -> None:
        try:
            answer.append(bool(docker.from_env(timeout=timeout).ping()))
        except Exception:
            answer.append(False)

    # An engine that accepts but never answers would hang the client: ping from a thread.
    thread = threading.Thread(target=ping, daemon=True)
    thread.start()
    thread.join(timeout + 0.5)
    return bool(answer and answer[0])


def from_docker() -> Database | None:
    if not docker_answers():
        return None
    try:
        from testcontainers.postgres import PostgresContainer
    except ImportError:
        return None
    container = PostgresContainer("postgres:18-alpine", driver=None)
    container.start()
    return Database(
        kind="docker",
        admin_url=container.get_connection_url(),
        description=_say("db-docker", image=container.image),
        _stop=container.stop,
    )


def embedded() -> Database:
    from kata_tools.postgres.server import LEARNER_ROLE, TEMPLATE, ServerProblem, start_embedded

    try:
        server = start_embedded()
    except ServerProblem:
        raise
    except KeyboardInterrupt:
        raise
    except Exception as e:
        raise ServerProblem(one_line(e)) from None
    return Database(
        kind="embedded",
        admin_url=server.admin_url,
        description=server.description,
        version=server.version,
        learner_role=LEARNER_ROLE,
        given_template=TEMPLATE,
        _stop=server.stop,
    )


def provision() -> Database:
    """Choose and start the session's database (see the module docstring for the order)."""
    tried = []
    for source in (from_environment, from_docker, embedded):
        try:
            db = source()
        except Exception as e:  # say what failed and go on to the next source
            tried.append(
                f"{source.__name__.replace('_', ' ')}: {e}"
                if source is embedded
                else f"{source.__name__.replace('_', ' ')}: {one_line(e)}"
            )
            if source is from_environment:
                break  # an explicit URL that fails is an error, not a reason to start another
            continue
        if db is None:
            continue
        if not db.version:
            try:
                db.fetch_version()
            except Exception as e:
                db.close()
                raise DatabaseUnavailable(
                    _say("db-unreachable", description=db.description, error=one_line(e))
                ) from None
        return db
    raise DatabaseUnavailable(_say("db-none-started", tried="; ".join(tried)))


@contextmanager
def warm_server() -> Iterator[Database]:
    """One database for many pytest runs (kata watch): start it once, hand `.env` to each run.

        with warm_server() as db:
            subprocess.run([sys.executable, "-m", "pytest", "katas/07_async_router"],
                           env={**os.environ, **db.env})

    `db.env` holds KATA_DATABASE_URL, KATA_DATABASE_TEMPLATE, KATA_DATABASE_DESCRIPTION (and
    KATA_DATABASE_ROLE): each run then skips starting and seeding, and its specs still get fresh
    copies. Raises DatabaseUnavailable (one line) if no database can be had. Stopped on exit.
    """
    db = provision()
    try:
        db.keep_spares()  # seeds the template too
        yield db
    finally:
        db.close()
