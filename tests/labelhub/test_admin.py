"""The admin console: every model has a working list and detail page; images show region overlays."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from labelhub.accounts.models import Role
from labelhub.images.models import Image
from labelhub.labeling.annotations import Writer, annotation_write
from labelhub.predictions.models import Prediction
from tests.helpers import image_bytes, square, upload


@pytest.fixture
def staff_client(db):
    user = get_user_model().objects.create_superuser("admin", "admin@example.org", "pw-admin")
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def annotated_image(org_a):
    """An uploaded image whose task holds one "cat" polygon."""
    assert (
        upload(org_a.clients[Role.OWNER], org_a.project.id, ("a.png", image_bytes(64, 48))).status_code == 201
    )
    image = Image.objects.get()
    annotation_write(
        task=image.task,
        author=org_a.users[Role.ANNOTATOR],
        base_revision=0,
        regions=[{"id": "r", "label": "cat", "kind": "polygon", "polygons": [square(4, 4, 30, 30)]}],
        writer=Writer.IMPORT,
    )
    return image


@pytest.mark.django_db
def test_every_model_has_a_working_admin(annotated_image, staff_client):
    image = annotated_image
    Prediction.objects.create(image=image, model_name="classical-grabcut", status="ok", regions=[])
    labelhub_models = [m for m in admin.site._registry if m._meta.app_label not in ("auth", "authtoken")]
    assert {m.__name__ for m in labelhub_models} >= {
        "Organization",
        "Membership",
        "Project",
        "Image",
        "Task",
        "Annotation",
        "AnnotationRevision",
        "Comment",
        "Prediction",
        "ImageEmbedding",
    }
    for model in labelhub_models:
        opts = model._meta
        changelist = staff_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
        assert changelist.status_code == 200, opts.label
        obj = model.objects.first()
        if obj is not None:
            change = staff_client.get(
                reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
            )
            assert change.status_code == 200, opts.label


@pytest.mark.django_db
def test_image_admin_draws_regions_over_the_thumbnail(annotated_image, staff_client):
    image = annotated_image
    page = staff_client.get(reverse("admin:images_image_change", args=[image.pk])).content.decode()
    assert "data:image/jpeg;base64," in page
    assert "<path" in page and 'fill="#ff0000"' in page  # the class colour of "cat"
