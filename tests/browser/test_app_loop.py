"""The labeler's loop in real Chromium: a segment click on a region corrects it (same id, no duplicate;
Shift+click adds a new one); shortcuts remapped in the F1 sheet are kept on the server; a reviewer types
full sentences holding every shortcut key into new pins and nothing fires, nothing is lost."""

from __future__ import annotations

import string

from labelhub.accounts.models import UserPreferences
from labelhub.labeling.models import Comment
from tests.browser.test_app_flow import DISC, click_image, regions, saved, sign_in, start, wait_js, world  # noqa: F401


def test_clicks_correct_regions_and_review_comments_lose_nothing(browser, live_server, world):  # noqa: F811
    task = world["task"]
    ann = sign_in(browser, live_server, "bannotator")
    start(ann, "annotate")
    before = regions(ann)[0]
    assert before["id"] == "ai-disc"

    # A click on the AI region (nothing selected) corrects it: one region, the same id, a new shape.
    ann.keyboard.press("s")
    click_image(ann, DISC[0] + 10, DISC[1])
    wait_js(ann, "document.body.dataset.segmentDone === '1'")
    ann.keyboard.press("Enter")
    after = regions(ann)
    assert [r["id"] for r in after] == ["ai-disc"]
    assert after[0]["polygons"] != before["polygons"]
    assert "corrected" in ann.inner_text("#live")
    # Shift+click on it: a new region on top (the modifier).
    p = ann.evaluate("([x, y]) => window.labelhub.view.toPage(x, y)", [DISC[0], DISC[1]])
    ann.keyboard.down("Shift")
    ann.mouse.click(p["x"], p["y"])
    ann.keyboard.up("Shift")
    wait_js(ann, "document.body.dataset.segmentDone === '2'")
    ann.keyboard.press("Enter")
    assert len(regions(ann)) == 2 and regions(ann)[1]["id"] != "ai-disc"
    ann.keyboard.press("Delete")
    assert [r["id"] for r in regions(ann)] == ["ai-disc"]
    saved(ann)
    stored = task.annotation.revisions.order_by("-number").first()
    assert [r["id"] for r in stored.regions] == ["ai-disc"]
    # One revision for the burst of saves of this person.
    assert task.annotation.revisions.exclude(author=None).count() == 1

    # F1 opens the sheet, remaps "next task" to G (kept on the server), F1 closes it.
    ann.keyboard.press("F1")
    sheet = ann.locator("dialog.shortcuts")
    assert sheet.is_visible()
    sheet.locator("tr[data-command=next-task] button").click()
    ann.keyboard.press("g")
    wait_js(ann, "document.querySelector('tr[data-command=next-task] kbd')?.textContent === 'g'")
    user = world["users"]["annotator"]
    assert UserPreferences.objects.get(user=user).shortcuts == {"next-task": "g"}
    ann.keyboard.press("F1")
    assert ann.locator("dialog.shortcuts").count() == 0
    ann.keyboard.press("Control+Enter")
    ann.wait_for_selector("text=Queue empty")

    # --- the reviewer: every letter and digit typed into two new pins fires nothing
    rev = sign_in(browser, live_server, "breviewer")
    start(rev, "review")
    shown = rev.evaluate("window.labelhub.screen.task.id")
    first = "The quick brown fox jumps over the lazy dog: off by 0123456789 px. " + string.ascii_uppercase
    second = "Pack my box with five dozen liquor jugs; Xylophone vim zest [edges] = - + H L M N."
    rev.keyboard.press("i")
    click_image(rev, 20, 20)
    assert rev.evaluate("document.activeElement.tagName") == "TEXTAREA"
    rev.keyboard.type(first)
    click_image(rev, DISC[0], DISC[1])
    assert rev.evaluate("document.activeElement.getAttribute('aria-label')") == "Issue 2 text"
    rev.keyboard.type(second)
    boxes = rev.locator(".issues textarea")
    assert boxes.nth(0).input_value() == first and boxes.nth(1).input_value() == second
    assert rev.evaluate("window.labelhub.screen.task.id") == shown
    assert rev.evaluate("window.labelhub.view.container.dataset.tool") == "pin"
    assert rev.locator("dialog[open]").count() == 0
    assert [r["id"] for r in regions(rev)] == ["ai-disc"]
    rev.click("button:has-text('Reject')")
    rev.wait_for_selector("text=Queue empty")
    texts = sorted(Comment.objects.filter(task=task).values_list("text", flat=True))
    assert texts == sorted([first, second])
    assert ann.errors == [] and rev.errors == []
