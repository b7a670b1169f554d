"""The embedded configuration's SQLite backend (labelhub/core/sqlite): WAL with synchronous=NORMAL, and a
closed connection kept for the next request (another thread's included), never with a transaction of
the request before, nor for a forked child. Run in a subprocess on the settings' own SQLite default (the
test suite's database is PostgreSQL)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

SCRIPT = textwrap.dedent(
    """
    import os, threading
    import django
    django.setup()
    from django.db import connection, transaction
    from labelhub.core.sqlite.base import _pool

    def one(sql):
        with connection.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchone()

    assert connection.vendor == "sqlite"
    assert one("PRAGMA journal_mode") == ("wal",)
    assert one("PRAGMA synchronous") == (1,)  # NORMAL
    one("CREATE TABLE t (x integer)")
    raw = connection.connection
    connection.close()
    connection.ensure_connection()
    print("reused", connection.connection is raw)

    # A transaction the request left open is rolled back before the connection serves another.
    connection.set_autocommit(False)
    one("INSERT INTO t VALUES (1)")
    connection.close()
    connection.ensure_connection()
    print("rolled back", connection.connection is raw and one("SELECT count(*) FROM t") == (0,))

    # Closed inside an atomic block (an error path): closed for good, its writes gone.
    with transaction.atomic():
        one("INSERT INTO t VALUES (2)")
        connection.close()
    connection.ensure_connection()
    print("closed in atomic", connection.connection is not raw and one("SELECT count(*) FROM t") == (0,))
    raw = connection.connection
    connection.close()

    # The development server's next request runs in another thread: it gets the same connection.
    seen = []
    def request():
        from django.db import connection as theirs
        theirs.ensure_connection()
        seen.append(theirs.connection)
        theirs.close()
    thread = threading.Thread(target=request)
    thread.start()
    thread.join()
    print("other thread", seen == [raw])

    # A forked child (a prefork worker) opens its own: SQLite's locks belong to the process.
    pid = os.fork()
    if pid == 0:
        os._exit(0 if _pool.take(connection.settings_dict["NAME"]) is None else 1)
    print("fork", os.waitpid(pid, 0)[1] == 0)
    """
)


def test_sqlite_connections_are_kept_between_requests(tmp_path):
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LABELHUB_", "DATABASE_URL", "CELERY_", "REDIS_URL", "DJANGO_SETTINGS"))
    }
    env.update(LABELHUB_VAR_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="labelhub.settings")
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split("\n")[:-1] == [
        "reused True",
        "rolled back True",
        "closed in atomic True",
        "other thread True",
        "fork True",
    ], done.stdout
