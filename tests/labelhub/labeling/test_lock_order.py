"""One lock order for every annotation write (Task, then Annotation): a member's save racing an AI
pre-label on the same task, over and over, never deadlocks (PostgreSQL, real threads and connections)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections

from labelhub.accounts.models import Role
from labelhub.core.errors import Conflict
from labelhub.labeling.annotations import annotation_prelabel, annotation_write
from labelhub.labeling.models import Annotation
from tests.labelhub.labeling.builders import make_tasks, region

ROUNDS = 25


@pytest.mark.django_db(transaction=True)
def test_a_save_racing_a_prelabel_never_deadlocks(org_a):
    assert connection.vendor == "postgresql"
    manager = org_a.users[Role.MANAGER]
    tasks = make_tasks(org_a.project, ROUNDS)
    for task in tasks:
        barrier = threading.Barrier(2)
        outcome: dict[str, object] = {}

        def save(task=task, barrier=barrier, outcome=outcome):
            try:
                barrier.wait()
                outcome["save"] = annotation_write(
                    task=task, author=manager, base_revision=0, regions=[region("m", 1, 1, 9, 9)]
                ).number
            except Conflict as exc:
                outcome["save"] = exc.code
            except Exception as exc:  # a deadlock surfaces here as OperationalError
                outcome["save"] = repr(exc)
            finally:
                connections.close_all()

        def prelabel(task=task, barrier=barrier, outcome=outcome):
            try:
                barrier.wait()
                made = annotation_prelabel(task=task, regions=[region("p", 20, 20, 30, 30, source="ai")])
                outcome["prelabel"] = made.number if made else None
            except Exception as exc:
                outcome["prelabel"] = repr(exc)
            finally:
                connections.close_all()

        threads = [threading.Thread(target=save), threading.Thread(target=prelabel)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        # Exactly one of them wrote revision 1: the save (the pre-label then leaves the task alone) or
        # the pre-label (the save then read a stale revision and is refused, nothing saved).
        assert outcome in ({"save": 1, "prelabel": None}, {"save": "stale_revision", "prelabel": 1}), outcome
        assert Annotation.objects.get(task=task).current_revision == 1
