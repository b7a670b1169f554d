"""Stored files and transactions: storage is not transactional, so a service that deletes rows removes
their files only once the deletion has committed (a rollback keeps both)."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.core.files.storage import Storage
from django.db import transaction

log = logging.getLogger(__name__)


def files_delete_on_commit(storage: Storage, names: Iterable[str]) -> None:
    """Remove the stored files `names` (empty names skipped) once the current transaction commits."""
    names = [n for n in names if n]
    if not names:
        return

    def delete() -> None:
        for name in names:
            try:
                storage.delete(name)
            except OSError:  # already gone, or the store is down: the rows are gone either way
                log.warning("could not delete stored file %s", name, exc_info=True)

    transaction.on_commit(delete)
