"""The running claim of a background job (an Export or an Import row): one run at a time, even when
messages are redelivered (acks_late), swept again, or a worker dies mid-run.

A run claims its row with one conditional UPDATE (pending, or running with a stale heartbeat) that
counts `attempts`; that number is the claim's token. While the run works, a heartbeat thread (its own
database connection) stamps `heartbeat_at` every LABELHUB_JOB_HEARTBEAT_SECONDS, so a run that is
alive is never taken as lost however long it takes, and a killed one goes stale after
LABELHUB_JOB_STALE_SECONDS (a short window, not the longest task's duration). Writes of a run are
conditional on its token: a run that lost its claim (it stalled past the stale window and another
took over) stops and writes nothing.

Written here rather than taken from a library: Celery has no "run once" guarantee for a redelivered
message, and the lock must live in the row the API reads (status, progress) anyway.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from django.conf import settings
from django.db import connection, models, transaction
from django.db.models import F, Q
from django.utils import timezone

log = logging.getLogger(__name__)


class ClaimLost(Exception):
    """Another run claimed this job (this one's heartbeat went stale): stop without writing."""


def claimable(status, now) -> Q:
    """Jobs a run may claim: pending, or running with no heartbeat for LABELHUB_JOB_STALE_SECONDS (its
    worker died). Rows claimed before heartbeats existed count from their start."""
    stale = now - timedelta(seconds=settings.LABELHUB_JOB_STALE_SECONDS)
    return (
        Q(status=status.PENDING)
        | Q(status=status.RUNNING, heartbeat_at__lt=stale)
        | Q(status=status.RUNNING, heartbeat_at__isnull=True, started_at__lt=stale)
    )


def job_claim(model: type[models.Model], status, job_id: int, **values) -> int | None:
    """Claim job `job_id` for this run: its token (the attempt number), or None when it is not claimable
    (done, or another live run holds it). `values` are set in the same UPDATE."""
    now = timezone.now()
    if not model.objects.filter(claimable(status, now), id=job_id).update(
        status=status.RUNNING, started_at=now, heartbeat_at=now, attempts=F("attempts") + 1, **values
    ):
        return None
    return model.objects.values_list("attempts", flat=True).get(id=job_id)


def held(model: type[models.Model], status, job_id: int, token: int) -> models.QuerySet:
    """The job's row while run `token` still holds it (empty once another run claimed it)."""
    return model.objects.filter(id=job_id, status=status.RUNNING, attempts=token)


class Heartbeat:
    """`with Heartbeat(Export, ExportStatus, id, token):` stamps heartbeat_at from a thread (its own
    database connection) until the block ends, through every phase of the run (the rows, the zip, the
    upload to storage). A beat skips a row locked by another transaction rather than wait for it, and a
    failed beat (the database restarting) is logged and tried again at the next one. Whether the claim
    is still held is for the run's own conditional writes to find (ClaimLost)."""

    def __init__(self, model: type[models.Model], status, job_id: int, token: int) -> None:
        self.model, self.status, self.job_id, self.token = model, status, job_id, token
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"heartbeat-{model.__name__}-{job_id}", daemon=True
        )

    def beat(self) -> int:
        """Stamp the heartbeat now (1: stamped, 0: the claim is gone or its row is locked)."""
        mine = held(self.model, self.status, self.job_id, self.token).select_for_update(skip_locked=True)
        with transaction.atomic():  # one statement; FOR UPDATE needs a transaction to belong to
            return self.model.objects.filter(pk__in=mine.values("pk")).update(heartbeat_at=timezone.now())

    def _run(self) -> None:
        interval = max(0.05, float(settings.LABELHUB_JOB_HEARTBEAT_SECONDS))
        try:
            while not self._stop.wait(interval):
                try:
                    self.beat()
                except Exception:  # the database may be restarting: the next beat tries again
                    log.warning("%s %s: heartbeat failed", self.model.__name__, self.job_id, exc_info=True)
                    connection.close()
        finally:
            connection.close()  # this thread's own connection

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
