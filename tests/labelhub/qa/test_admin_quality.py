"""The admin shows segmentation quality per project (the metrics API's figures) and per model version."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from labelhub.accounts.models import Role
from labelhub.images.models import Image
from labelhub.labeling.annotations import annotation_prelabel
from labelhub.learning.models import ModelVersion, ProjectModel
from labelhub.qa.metrics import project_metrics
from tests.helpers import disc_image_bytes, upload
from tests.labelhub.learning.conftest import H, W, accept_through_api, disc_region

pytestmark = pytest.mark.django_db


def test_admin_lists_segmentation_quality_per_project(org_a):
    project = org_a.project
    project.pipeline = [
        {"name": "annotate", "role": "annotator", "sample_rate": 1.0, "reject_to": None},
        {"name": "review", "role": "reviewer", "sample_rate": 1.0, "reject_to": "annotate"},
    ]
    project.save()
    assert (
        upload(org_a.clients[Role.MANAGER], project.id, ("d.png", disc_image_bytes(W, H))).status_code == 201
    )
    task = Image.objects.get(project=project).task
    small = disc_region()
    small["polygons"][0]["exterior"] = [
        [W / 2 + (x - W / 2) * 0.7, H / 2 + (y - H / 2) * 0.7] for x, y in small["polygons"][0]["exterior"]
    ]
    annotation_prelabel(task=task, regions=[{**small, "source": "ai", "score": 0.9}])
    assert accept_through_api(org_a, [disc_region()]) == 1
    overall = project_metrics(project=project)["segmentation"]["prelabel"]["overall"]
    assert overall["n"] == 1 and 0 < overall["dice"] < 1

    staff = Client()
    staff.force_login(get_user_model().objects.create_superuser("root", "r@example.org", "pw"))
    page = staff.get(reverse("admin:qa_projectsegmentationquality_changelist")).content.decode()
    for key in ("pixel_accuracy", "dice", "iou", "boundary_f1"):
        assert f'<td class="field-{key}">{overall[key]:.3f}</td>' in page
    detail = staff.get(reverse("admin:qa_projectsegmentationquality_change", args=[project.id]))
    assert detail.status_code == 200 and f"Dice {overall['dice']:.3f}" in detail.content.decode()
    pm = ProjectModel.objects.create(project=project)
    figures = {"pixel_accuracy": 0.91, "dice": 0.8, "iou": 0.7, "boundary_f1": 0.81}
    ModelVersion.objects.create(project_model=pm, number=1, status="ready", metrics=figures)
    versions = staff.get(reverse("admin:learning_modelversion_changelist")).content.decode()
    for key, value in figures.items():
        assert f'<td class="field-heldout_{key}">{value}</td>' in versions
