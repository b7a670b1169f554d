"""The one running claim of a background job row (an export, an import, a model version's training, an
evaluation, an image's pre-segmentation, a webhook delivery's attempt): one run at a time, even when
messages are redelivered (acks_late, the broker's visibility timeout), swept again, or a worker dies.

A run claims its row with one conditional UPDATE: from a waiting status, or from the running status when
the row's heartbeat is stale (its worker died). The same UPDATE sets the running status, `started_at`
(or the kind's own start column), `heartbeat_at` and counts `attempts`; that number is the claim's
token. A RUNNING row whose heartbeat is fresh is never taken again, however long its run takes: while
the run works, a heartbeat thread (its own database connection) stamps `heartbeat_at` every
LABELHUB_JOB_HEARTBEAT_SECONDS, and a killed run goes stale after its kind's stale window (a short
window, not the longest run's duration). Every later write of a run is conditional on its token
(`JobKind.write`, or an update of `JobKind.held`): a run that lost its claim (it stalled past the stale
window and another took over) raises ClaimLost and writes nothing.

Written here rather than taken from a library: Celery has no "run once" guarantee for a redelivered
message, and the lock must live in the row the API reads (status, progress) anyway.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, models, transaction
from django.db.models import F, Q
from django.utils import timezone

log = logging.getLogger(__name__)


class ClaimLost(Exception):
    """Another run claimed this job (this one's heartbeat went stale): stop without writing."""


def _job_stale_seconds() -> float:
    return float(settings.LABELHUB_JOB_STALE_SECONDS)


@dataclass(frozen=True)
class JobKind:
    """How one model's rows are claimed. The model has `status`, `attempts` (the token), `heartbeat_at`
    and a start column (`started`)."""

    model: type[models.Model]
    waiting: tuple[str, ...]  # statuses a run may claim from (pending, queued; failed where retried)
    running: str  # the status while a run holds the row
    started: str = "started_at"
    stale_seconds: Callable[[], float] = field(default=_job_stale_seconds)
    ready: Callable[[datetime], Q] | None = None  # a further condition on waiting rows (e.g. due)

    def claimable(self, now: datetime | None = None) -> Q:
        """Rows a run may claim now: waiting (and ready), or running with no heartbeat for the stale
        window. Rows claimed before heartbeats existed count from their start."""
        now = now or timezone.now()
        stale = now - timedelta(seconds=self.stale_seconds())
        waiting = Q(status__in=self.waiting)
        if self.ready is not None:
            waiting &= self.ready(now)
        return (
            waiting
            | Q(status=self.running, heartbeat_at__lt=stale)
            | Q(status=self.running, heartbeat_at__isnull=True, **{f"{self.started}__lt": stale})
        )

    def claim(self, job_id: int, **values) -> int | None:
        """Claim row `job_id` for this run: its token (the attempt number), or None when it is not
        claimable (finished, or a live run holds it). `values` are set in the same UPDATE."""
        now = timezone.now()
        claimed = self.model.objects.filter(self.claimable(now), id=job_id).update(
            status=self.running,
            heartbeat_at=now,
            attempts=F("attempts") + 1,
            **{self.started: now},
            **values,
        )
        if not claimed:
            return None
        return self.model.objects.values_list("attempts", flat=True).get(id=job_id)

    def claim_many(self, job_ids: Iterable[int], **values) -> dict[int, int]:
        """Claim many rows at once (a batch's): {id: token} of those this run took, in three queries
        whatever their number. The rows are locked in id order first (the order every batch takes them
        in, so two batches never deadlock), so the conditional UPDATE cannot race another run's claim and
        the rows it changed are exactly those running with this run's heartbeat stamp."""
        ids = sorted(set(job_ids))
        if not ids:
            return {}
        now = timezone.now()
        with transaction.atomic(savepoint=False):
            locked = list(
                self.model.objects.select_for_update()
                .filter(id__in=ids)
                .order_by("id")
                .values_list("id", flat=True)
            )
            self.model.objects.filter(self.claimable(now), id__in=locked).update(
                status=self.running,
                heartbeat_at=now,
                attempts=F("attempts") + 1,
                **{self.started: now},
                **values,
            )
            return dict(
                self.model.objects.filter(id__in=locked, status=self.running, heartbeat_at=now).values_list(
                    "id", "attempts"
                )
            )

    def held_many(self, claims: dict[int, int]) -> set[int]:
        """Of the claims {id: token}, the ids whose rows this run still holds, locked until the caller's
        transaction ends (one query): the batch form of `held(...).select_for_update()`."""
        if not claims:
            return set()
        rows = (
            self.model.objects.select_for_update()
            .filter(id__in=sorted(claims), status=self.running)
            .order_by("id")
            .values_list("id", "attempts")
        )
        return {job_id for job_id, attempts in rows if claims[job_id] == attempts}

    def held(self, job_id: int, token: int) -> models.QuerySet:
        """The row while run `token` still holds it (empty once another run claimed it)."""
        return self.model.objects.filter(id=job_id, status=self.running, attempts=token)

    def write(self, job_id: int, token: int, **values) -> None:
        """A write of run `token`, conditional on its claim (ClaimLost when another run holds the row)."""
        if not self.held(job_id, token).update(**values):
            raise ClaimLost(f"{self.model.__name__} {job_id}, run {token}")

    def heartbeat(self, job_id: int, token: int) -> Heartbeat:
        return Heartbeat(self, [(job_id, token)])


class Heartbeat:
    """`with kind.heartbeat(id, token):` stamps heartbeat_at from a thread (its own database connection)
    until the block ends, through every phase of the run. Several claims of one kind (a batch) can share
    one thread. A beat skips a row locked by another transaction rather than wait for it, and a failed
    beat (the database restarting) is logged and tried again at the next one. Whether the claim is still
    held is for the run's own conditional writes to find (ClaimLost)."""

    def __init__(self, kind: JobKind, claims: Iterable[tuple[int, int]]) -> None:
        self.kind = kind
        self.claims = list(claims)
        self._stop = threading.Event()
        name = f"heartbeat-{kind.model.__name__}-{','.join(str(i) for i, _ in self.claims[:4])}"
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def beat(self) -> int:
        """Stamp the heartbeats now: the number stamped (a claim that is gone or whose row is locked is
        skipped)."""
        mine = Q(pk__in=[])
        for job_id, token in self.claims:
            mine |= Q(id=job_id, attempts=token)
        rows = self.kind.model.objects.filter(mine, status=self.kind.running).select_for_update(
            skip_locked=True
        )
        with transaction.atomic():  # one statement; FOR UPDATE needs a transaction to belong to
            return self.kind.model.objects.filter(pk__in=rows.values("pk")).update(
                heartbeat_at=timezone.now()
            )

    def _run(self) -> None:
        interval = max(0.05, float(settings.LABELHUB_JOB_HEARTBEAT_SECONDS))
        try:
            while not self._stop.wait(interval):
                try:
                    self.beat()
                except Exception:  # the database may be restarting: the next beat tries again
                    log.warning("%s: heartbeat failed", self._thread.name, exc_info=True)
                    connection.close()
        finally:
            connection.close()  # this thread's own connection

    def __enter__(self) -> Heartbeat:
        if self.claims:
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
