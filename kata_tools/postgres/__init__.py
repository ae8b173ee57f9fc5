"""A real PostgreSQL for the database katas, with zero set-up (not the blog's kata_blog.database).

Six rooms:
- provisioning.py: which server a run uses (DATABASE_URL, Docker, embedded), warm_server();
- copies.py: the server handle (`Database`): URLs, the seeded template, one copy per spec;
- spares.py: copies a warm server keeps ready, taken at once by the runs it is handed to;
- server.py: the embedded server's lifecycle (a cached cluster started in ~0.1 s, its reaper);
- place.py: where the cached clusters go (/dev/shm on Linux when it has room, and why);
- plugin.py: the pytest plugin (when to start, the `database` and `seeded_db` fixtures).

For `kata watch` (one server for many runs):

    from kata_tools.postgres import warm_server

    with warm_server() as db:          # starts it once; DatabaseUnavailable (one line) if none
        env = {**os.environ, **db.env}  # KATA_DATABASE_URL, KATA_DATABASE_TEMPLATE, ...
        ...run `python -m pytest katas/NN_name` with env=env, as many times as needed...

Each run then starts nothing and seeds nothing; its specs still get fresh copies.
"""

from kata_tools.postgres.provisioning import (
    Database,
    DatabaseProblem,
    DatabaseUnavailable,
    provision,
    warm_server,
)

__all__ = ["Database", "DatabaseProblem", "DatabaseUnavailable", "provision", "warm_server"]
