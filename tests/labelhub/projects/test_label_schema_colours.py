"""Classes created without colours get distinct ones (the app's palette), and hotkeys are checked."""

from __future__ import annotations

import pytest

from labelhub.accounts.models import Role
from labelhub.projects.schema import PALETTE

pytestmark = pytest.mark.django_db


def test_classes_without_colours_get_distinct_ones(org_a):
    manager = org_a.clients[Role.MANAGER]
    schema = [{"name": "cat"}, {"name": "dog", "color": "#E69F00"}, {"name": "bird"}, {"name": "fish"}]
    made = manager.post(
        "/api/v1/projects/",
        {"organization": org_a.organization.id, "name": "pets", "label_schema": schema},
        format="json",
    )
    assert made.status_code == 201, made.json()
    colours = [c["color"] for c in made.json()["label_schema"]]
    assert len(set(colours)) == 4 and colours[1] == "#e69f00"  # the given colour is kept, not reused
    assert colours[0] == PALETTE[1] and all(c in PALETTE for c in colours)


def test_hotkeys_are_one_key_and_unique(org_a):
    manager = org_a.clients[Role.MANAGER]
    url = f"/api/v1/projects/{org_a.project.id}/"
    ok = manager.patch(url, {"label_schema": [{"name": "a", "hotkey": "Q"}, {"name": "b"}]}, format="json")
    assert ok.status_code == 200 and ok.json()["label_schema"][0]["hotkey"] == "q"
    for schema, field in (
        ([{"name": "a", "hotkey": "ctrl"}], "label_schema[0].hotkey"),
        ([{"name": "a", "hotkey": "q"}, {"name": "b", "hotkey": "Q"}], "label_schema[1].hotkey"),
    ):
        bad = manager.patch(url, {"label_schema": schema}, format="json")
        assert bad.status_code == 400 and bad.json()["error"]["field"] == field
