"""A region may name only a prediction of its own project: another organization's prediction id (or one
that does not exist) is refused, naming the field, with nothing saved."""

from __future__ import annotations

import pytest

from labelhub.accounts.models import Role
from labelhub.predictions.models import Prediction, PredictionStatus
from tests.labelhub.labeling.builders import make_tasks, region


@pytest.mark.django_db
def test_a_region_naming_another_organizations_prediction_is_refused(org_a, org_b):
    (task,) = make_tasks(org_a.project, 1)
    (theirs,) = make_tasks(org_b.project, 1, start=5)
    mine = Prediction.objects.create(image=task.image, model_name="sam-test", status=PredictionStatus.OK)
    foreign = Prediction.objects.create(image=theirs.image, model_name="sam-test", status=PredictionStatus.OK)
    manager = org_a.clients[Role.MANAGER]
    url = f"/api/v1/tasks/{task.id}/annotation/"

    def put(prediction_id):
        regions = [
            region("a", 1, 1, 9, 9),
            {**region("b", 20, 20, 30, 30, source="ai"), "prediction_id": prediction_id},
        ]
        return manager.put(url, {"revision": 0, "regions": regions}, format="json")

    for bad in (foreign.pk, foreign.pk + 1000):
        refused = put(bad)
        assert refused.status_code == 400, refused.content
        assert refused.json()["error"]["field"] == "regions[1].prediction_id"
        assert task.annotation.revisions.count() == 0
    saved = put(mine.pk)
    assert saved.status_code == 200 and saved.json()["regions"][1]["prediction_id"] == mine.pk
