"""The event catalogue (labelhub/core/events.py): every event declared once with its payload dataclass,
publish refuses what the catalogue does not declare, and payloads carry what subscribers need."""

from __future__ import annotations

import ast
from dataclasses import asdict, fields
from pathlib import Path

import pytest

from labelhub.core import events
from labelhub.core.events import EVENTS, IMAGES_ADDED, DomainEvent, ImagesAdded, publish

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.django_db
def test_publish_refuses_an_event_or_a_payload_the_catalogue_does_not_declare():
    heard: list[DomainEvent] = []
    events.subscribe("no.such_event", heard.append, in_transaction=True)
    events.subscribe(IMAGES_ADDED, heard.append, in_transaction=True)
    try:
        with pytest.raises(ValueError, match="not in the event catalogue"):
            publish(DomainEvent(name="no.such_event", organization_id=1, project_id=1))
        with pytest.raises(ValueError, match="prelabel"):  # the payload of an older publisher
            publish(
                DomainEvent(
                    name=IMAGES_ADDED,
                    organization_id=1,
                    project_id=1,
                    payload={"image_ids": [1], "presegment": True},
                )
            )
        assert heard == []  # refused before anyone heard of it
        events.announce(
            ImagesAdded(image_ids=[1], presegment=False, prelabel="none"),
            organization_id=1,
            project_id=1,
            context={"images": []},
        )
        good = {"image_ids": [1], "presegment": False, "prelabel": "none"}
        assert [(e.name, e.payload) for e in heard] == [(IMAGES_ADDED, good)]
    finally:
        events._in_transaction.pop("no.such_event", None)
        events._in_transaction[IMAGES_ADDED].remove(heard.append)


def test_every_event_name_has_one_payload_dataclass_and_no_app_declares_its_own():
    names = {value for key, value in vars(events).items() if key.isupper() and isinstance(value, str)}
    assert names == set(EVENTS)
    assert all(isinstance(fields(cls), tuple) for cls in EVENTS.values())
    # Subscribers import the names from core.events, never through another app (one door).
    constants = {key for key, value in vars(events).items() if isinstance(value, str) and value in EVENTS}
    doors = []
    for path in (ROOT / "labelhub").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.level or node.module != "labelhub.core.events"):
                if {alias.name for alias in node.names} & constants:
                    doors.append(f"{path.relative_to(ROOT)}: from {'.' * node.level}{node.module or ''}")
    assert doors == []


@pytest.mark.django_db
def test_images_added_carries_the_projects_prelabel_source(org_a):
    """The subscribers of "images.added" choose by the project's pre-label source without reading the
    project again after the commit."""
    from labelhub.images.services import IncomingFile, images_add
    from labelhub.projects.models import Prelabel
    from tests.helpers import disc_image_bytes

    org_a.project.prelabel = Prelabel.MODEL_SERVICE
    org_a.project.save(update_fields=["prelabel"])
    heard: list[DomainEvent] = []
    events.subscribe(IMAGES_ADDED, heard.append, in_transaction=True)
    try:
        images_add(
            project=org_a.project,
            files=[IncomingFile("disc.png", disc_image_bytes(64, 48))],
            presegment=False,
        )
    finally:
        events._in_transaction[IMAGES_ADDED].remove(heard.append)
    (event,) = heard
    assert event.payload["prelabel"] == "model_service" and event.payload["presegment"] is False
    assert event.payload == asdict(ImagesAdded(**event.payload))
