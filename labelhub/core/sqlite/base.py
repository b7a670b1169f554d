"""Django's SQLite backend, with the embedded server's connections kept open between requests.

Django opens a database connection per request and closes it at the end (CONN_MAX_AGE=0; and the
development server runs each request in a new thread, so no persistent connection outlives one). On
SQLite each new connection then costs more than most requests' queries: SQLite parses the whole schema
on the connection's first statement (some 100 tables with their indexes and checks), Django registers
its ~40 SQL functions, the PRAGMAs run; and the connection closing last checkpoints the WAL into the
database file and deletes it, so the next request's connection creates it again (2-3 ms of file work
per request on this machine, and a checkpoint's fsync after every write).

Here a closed connection goes back to a small process-wide pool instead, and the next request's
connection is taken from it: the schema stays parsed, the WAL stays open, and a checkpoint runs only
when SQLite's own `wal_autocheckpoint` asks for it. A connection goes back only out of any transaction
(an open one is rolled back first, as closing it would), and at most `POOL_SIZE` wait in the pool; the
rest close. Django itself pools only PostgreSQL connections (5.1's `pool` option); the SQLite
connection is made with `check_same_thread=False` by Django already, so a connection may serve another
thread once the first has let go of it. A forked child (a Celery prefork worker, gunicorn) never uses
its parent's pooled connections: SQLite's locks are per process.

Used when DATABASE_URL is SQLite (settings.py); tests and production run on PostgreSQL.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from django.db.backends.sqlite3 import base

POOL_SIZE = 16


class _Pool:
    """Idle connections by database file, for this process."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pid = os.getpid()
        self.idle: dict[str, list[Any]] = {}
        self.inherited: list[Any] = []

    def take(self, name: str) -> Any | None:
        with self.lock:
            self._after_fork()
            idle = self.idle.get(name)
            return idle.pop() if idle else None

    def give(self, name: str, connection: Any) -> bool:
        """Keep `connection` for the next request; False when the pool is full (the caller closes it)."""
        with self.lock:
            self._after_fork()
            idle = self.idle.setdefault(name, [])
            if len(idle) >= POOL_SIZE:
                return False
            idle.append(connection)
            return True

    def _after_fork(self) -> None:
        if self.pid != os.getpid():
            # The parent's connections stay referenced and unused here: closing them in the child
            # would release the parent's file locks.
            self.inherited.extend(c for idle in self.idle.values() for c in idle)
            self.idle = {}
            self.pid = os.getpid()


_pool = _Pool()


class DatabaseWrapper(base.DatabaseWrapper):
    def _pooled_name(self) -> str | None:
        """The database file whose connections are pooled; None for an in-memory database."""
        return None if self.is_in_memory_db() else str(self.settings_dict["NAME"])

    def get_new_connection(self, conn_params):
        name = self._pooled_name()
        connection = _pool.take(name) if name else None
        return connection if connection is not None else super().get_new_connection(conn_params)

    def _close(self):
        name = self._pooled_name()
        if self.connection is None or name is None or self.in_atomic_block:
            return super()._close()
        with self.wrap_database_errors:
            if self.connection.in_transaction:
                self.connection.rollback()
            if not _pool.give(name, self.connection):
                self.connection.close()
