"""In real Chromium: a labeler submits a honeypot with a loose boundary and a missed region and sees the
immediate feedback; the manager reads the project's quality report."""

from __future__ import annotations

from labelhub.accounts.models import Organization, Role
from labelhub.images.models import Image
from labelhub.labeling import assignments
from labelhub.labeling.annotations import annotation_prelabel
from labelhub.projects.models import Project, ProjectMember
from tests.browser.test_app_flow import sign_in, start
from tests.browser.test_app_manager_quality import H, W, region
from tests.helpers import client_for, disc_image_bytes, make_user, upload


def square(x0, y0, x1, y1) -> dict:
    ring = [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]
    return {"id": "sq", "label": "cat", "kind": "polygon", "polygons": [{"exterior": ring, "holes": []}]}


def test_labeler_fails_a_honeypot_and_manager_reads_the_report(browser, live_server, transactional_db):
    org = Organization.objects.create(name="Honey", slug="honey")
    manager = make_user("hmanager", org, Role.MANAGER)
    annotator = make_user("hannotator", org, Role.ANNOTATOR)
    project = Project.objects.create(
        organization=org,
        name="Honeypots",
        label_schema=[{"name": "cat", "kinds": ["polygon", "mask"]}],
        honeypot_rate=1.0,
        immediate_feedback=True,
        created_by=manager,
    )
    ProjectMember.objects.create(project=project, user=annotator)
    mc = client_for(manager)
    for seed, name in enumerate(("a.png", "b.png")):
        assert upload(mc, project.id, (name, disc_image_bytes(W, H, seed=seed))).status_code == 201
    ordinary, gold = (image.task for image in Image.objects.filter(project=project).order_by("id"))
    for task in (ordinary, gold):
        annotation_prelabel(task=task, regions=[region(18, source="ai", score=0.9)])
    # The gold answer: the disc is larger than the pre-label (IoU 0.56: matched, boundary below 0.9),
    # and a square the pre-label misses.
    assignments.task_gold_set(
        task=gold, manager=manager, is_gold=True, regions=[region(24), square(2, 2, 14, 14)]
    )

    page = sign_in(browser, live_server, "hannotator")
    start(page, "annotate")
    assert page.evaluate("window.labelhub.screen.task.id") == gold.id
    page.keyboard.press("Control+Enter")  # submit the pre-label as it is
    dialog = page.wait_for_selector("dialog[aria-label='Check failed']")
    text = dialog.inner_text()
    assert "0 of 2 regions right" in text and "1 missing" in text and "1 boundary" in text
    assert "sq" in text
    dialog.query_selector("button").click()
    assert not page.errors

    mgr = sign_in(browser, live_server, "hmanager")
    mgr.click("a:has-text('Manage')")
    mgr.wait_for_selector("body[data-ready=manage]")
    card = mgr.locator("section[aria-label='Quality report']")
    assert "0.0% of 2 regions correct" in card.inner_text()
    rows = card.locator("table.quality").first.locator("tbody tr").all_inner_texts()
    assert rows[1].split("\t")[:3] == ["honeypots", "2", "0.0%"]
    per_labeler = card.locator("table.quality").nth(2).locator("tbody tr").all_inner_texts()
    assert per_labeler[0].startswith("hannotator")
    assert not mgr.errors
