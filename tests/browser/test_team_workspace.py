"""A team starts from an empty database and runs its project from the browser alone (real Chromium):
the owner is made on the first-run page, creates a project with three classes, invites a manager, two
annotators and two reviewers by e-mail (the test reads Django's outbox), each accepts on the app's page
and chooses a password; the manager drops 20 images (and one broken file) on the project, sees each
file's progress and error, and starts the pre-segmentation and sees it finish. Then the labeling loop
on two tasks: each annotator corrects an AI region with a segment click (same id, no duplicate); a
reviewer types full sentences holding every shortcut letter into new pins (nothing fires, nothing is
lost) and rejects; the annotator fixes; review and final-qa are accepted by different reviewers. Last
the manager filters the task list, opens a task by link, reassigns one, marks one gold, and exports
COCO and YOLO-seg with images; the downloads load in pycocotools and pass Ultralytics'
`check_det_dataset` run from another folder (issue 23's acceptance line).

No API call is made outside the app: the test drives the browser and reads the outbox (and the
database, to check what the screens said). The steps are functions so that later steps (annotate,
review, export) can continue the same flow."""

from __future__ import annotations

import base64
import io
import re
import string
import zipfile
from dataclasses import dataclass, field

import pytest
from django.core import mail
from PIL import Image as PILImage
from pycocotools.coco import COCO
from shapely.geometry import Polygon
from shapely.ops import unary_union

from labelhub.accounts.models import Membership, Role
from labelhub.labeling.models import Comment, EventKind, Task, TaskEvent, TaskStatus
from labelhub.predictions.models import Prediction, PredictionStatus
from labelhub.projects.models import Project
from tests.browser.conftest import shoot
from tests.browser.test_app_flow import click_image, drag_image, regions, saved, start, wait_js
from tests.helpers import ultralytics_check
from tests.workers.sam._helpers import grabcut_dir

PASSWORD = "a-long-team-passphrase-7"
CLASSES = ["person", "animal", "vehicle"]
TEAM = [  # (username, role): each is invited by e-mail as username@example.org
    ("mia", "manager"),
    ("ann1", "annotator"),
    ("ann2", "annotator"),
    ("rev1", "reviewer"),
    ("rev2", "reviewer"),
]
LINK = re.compile(r"https?://\S+/app/invite/[\w-]+/")


@dataclass
class Team:
    """What the flow has made so far: the pages of the people signed in, and the project."""

    live_server: object
    browser: object
    pages: dict = field(default_factory=dict)
    project_id: int | None = None

    def new_page(self):
        context = self.browser.new_context(viewport={"width": 1280, "height": 800})
        page = context.new_page()
        page.set_default_timeout(60_000)  # the suite shares two cores with other work
        page.errors = []
        page.on("pageerror", lambda e: page.errors.append(str(e)))
        return page

    def url(self, path: str) -> str:
        return f"{self.live_server.url}{path}"


def small_real_images(n: int) -> list[tuple[str, bytes]]:
    """n GrabCut photographs (the shared data set), halved, as JPEG bytes: small and real."""
    root = grabcut_dir() / "images"
    if not root.is_dir():
        pytest.skip(f"GrabCut images not available under {root} (set LABELHUB_SHARED_DATA)")
    out = []
    for path in sorted(root.glob("*.jpg"))[:n]:
        image = PILImage.open(path).convert("RGB")
        image = image.resize((image.width // 2, image.height // 2))
        buf = io.BytesIO()
        image.save(buf, format="JPEG", quality=85)
        out.append((path.name, buf.getvalue()))
    assert len(out) == n
    return out


def first_run(team: Team, username: str = "olga") -> None:
    """A fresh install sends the first visitor to the first-run page, which makes the owner."""
    page = team.new_page()
    page.goto(team.url("/app/"))
    page.wait_for_url("**/app/setup/")
    page.fill("#id_organization", "Acme Vision")
    page.fill("#id_username", username)
    page.fill("#id_email", f"{username}@example.org")
    page.fill("#id_password", PASSWORD)
    shoot(page, "first_run")
    page.click("button[type=submit]")
    page.wait_for_selector("text=No project yet")
    team.pages[username] = page


def create_project(team: Team, owner: str, name: str, classes: list[str]) -> None:
    page = team.pages[owner]
    page.click("text=New project")
    page.wait_for_selector("form[aria-label='New project']")
    page.fill("[aria-label='Project name']", name)
    for i, cls in enumerate(classes):
        if i:
            page.click("button:has-text('Add class')")
        page.fill(f"[aria-label='Class {i + 1} name']", cls)
    page.fill("[aria-label='Class 3 hotkey']", "q")
    page.fill("[aria-label='Stage 2 sample rate']", "0.5")
    shoot(page, "project_form", full_page=True)
    page.click("button:has-text('Create project')")
    page.wait_for_selector(f".project-home h1:has-text('{name}')")
    page.wait_for_selector(".empty-project")  # an empty project asks for images, no Start buttons
    team.project_id = int(page.url.rsplit("/", 1)[1])


def invite(team: Team, owner: str, username: str, role: str) -> str:
    """Invite username@example.org as `role` in the app; returns the accept link from the mail."""
    page = team.pages[owner]
    if "#/people" not in page.url:
        page.click("a[href='#/people']")
        page.wait_for_selector("form[aria-label='Invite by e-mail']")
    before = len(mail.outbox)
    page.fill("[aria-label='E-mail to invite']", f"{username}@example.org")
    page.select_option("[aria-label='Role']", role)
    page.click("button:has-text('Send invitation')")
    page.wait_for_selector(f"text=Mailed to {username}@example.org")
    page.wait_for_selector(f"tr[data-invitation='{username}@example.org'][data-status=pending]")
    assert len(mail.outbox) == before + 1
    message = mail.outbox[-1]
    assert message.to == [f"{username}@example.org"] and role in message.body
    return LINK.search(message.body).group(0)


def accept(team: Team, link: str, username: str, *, shot: str | None = None) -> None:
    """The invitee opens the mailed link, chooses a user name and a password, and lands in the app."""
    page = team.new_page()
    page.goto(link)
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    if shot:
        shoot(page, shot)
    page.click("button[type=submit]")
    page.wait_for_selector("body[data-ready=queue]")
    team.pages[username] = page


def add_everyone_to_the_project(team: Team, owner: str) -> None:
    page = team.pages[owner]
    page.goto(team.url(f"/app/#/project/{team.project_id}"))
    page.click("button:has-text('Add all')")
    page.wait_for_selector("text=Every annotator and reviewer of the organization is in this project")


def drop_files(page, selector: str, files: list[tuple[str, bytes, str]]) -> None:
    """Drop files on an element as a person dragging them from the desktop does (a DataTransfer)."""
    payload = [{"name": n, "b64": base64.b64encode(b).decode(), "type": t} for n, b, t in files]
    transfer = page.evaluate_handle(
        """(files) => {
            const dt = new DataTransfer();
            for (const f of files) {
                const bytes = Uint8Array.from(atob(f.b64), (c) => c.charCodeAt(0));
                dt.items.add(new File([bytes], f.name, { type: f.type }));
            }
            return dt;
        }""",
        payload,
    )
    page.dispatch_event(selector, "dragover", {"dataTransfer": transfer})
    page.dispatch_event(selector, "drop", {"dataTransfer": transfer})


def upload_images(team: Team, manager: str, images: list[tuple[str, bytes]]) -> None:
    """The manager drops the images and one broken file: every image is stored, the broken one fails
    alone with its reason."""
    page = team.pages[manager]
    page.click("a:has-text('Projects')")
    page.wait_for_selector(f"tr[data-project='{team.project_id}']")
    shoot(page, "projects")
    page.click(f"tr[data-project='{team.project_id}'] a:has-text('Images and people')")
    page.wait_for_selector(".empty-project")
    files = [(n, b, "image/jpeg") for n, b in images] + [("notes.jpg", b"not an image at all", "image/jpeg")]
    drop_files(page, ".dropzone", files)
    n = len(images)
    page.wait_for_selector(f".upload-summary:has-text('{n} uploaded · 0 duplicates · 1 failed · 0 to go')")
    failed = page.locator(".upload-file[data-status=error]")
    assert failed.count() == 1 and failed.get_attribute("data-name") == "notes.jpg"
    assert "notes.jpg" in failed.inner_text() or "image" in failed.inner_text().lower()
    assert page.locator(".upload-file[data-status=done]").count() == n
    page.wait_for_selector(f".project-home .muted:has-text('{n} images')")


def prelabel(team: Team, manager: str, n: int) -> None:
    """No SAM model here: the project says why uploads are not pre-labelled; the manager starts it and
    watches it finish."""
    page = team.pages[manager]
    page.wait_for_selector("[data-on-upload=false]:has-text('no SAM model')")
    page.click(f"button:has-text('Pre-segment {n} images')")
    page.wait_for_selector(f".prelabel-count:has-text('{n} of {n} images pre-labelled')", timeout=300_000)
    page.evaluate("document.getElementById('screen').scrollTo(0, 0)")
    shoot(page, "project_home")


def turn_prelabels_off(team: Team, manager: str) -> None:
    """Editing the project: with pre-labels off, the project screen says so and offers no start."""
    page = team.pages[manager]
    page.click("a:has-text('Settings')")
    page.wait_for_selector("form[aria-label='Project settings']")
    assert page.input_value("[aria-label='Class 1 name']") == CLASSES[0]
    page.select_option("[aria-label='Pre-label mode']", "none")
    page.fill("[aria-label='Stage 2 sample rate']", "1")  # from here on every task is reviewed
    page.click("button:has-text('Save')")
    page.wait_for_selector("[data-on-upload=false]:has-text('Pre-labels are off for this project')")
    page.wait_for_selector("a:has-text('Turn pre-labels on')")
    assert page.locator("button:has-text('Pre-segment')").count() == 0


def shape(region):
    return unary_union([Polygon(p["exterior"], p["holes"]) for p in region["polygons"]])


def clear_point(shown: list[dict], *, ai_only: bool = True) -> tuple[dict, tuple[float, float]]:
    """The largest (AI) region and a point of it that no other region covers (so the click is on it)."""
    ai = sorted((r for r in shown if r["source"] == "ai" or not ai_only), key=lambda r: -shape(r).area)
    assert ai, "the pre-labels drew no AI region on this task"
    for region in ai:
        others = unary_union([shape(r) for r in shown if r["id"] != region["id"]])
        free = shape(region).difference(others).buffer(-2)
        if not free.is_empty:
            point = free.representative_point()
            return region, (point.x, point.y)
    raise AssertionError("every AI region is covered by another one")


def to_queue(page) -> None:
    page.goto(page.url.split("#")[0] + "#/queue")
    page.reload()
    page.wait_for_selector("body[data-ready=queue]")


def leave_next_task(page, left: int) -> None:
    """After a submit or a verdict the app opens the stage's next task; give it back to the queue."""
    wait_js(page, f"document.body.dataset.ready === 'task' && window.labelhub.screen.task.id !== {left}")
    page.click("button:has-text('Release')")
    page.wait_for_selector("body[data-ready=queue]")


def correct_an_ai_region(team: Team, annotator: str) -> int:
    """The annotator opens a task, and a segment click on an AI region (nothing selected) corrects that
    region: the same ids, one changed shape, no new region. Submits; returns the task's id."""
    page = team.pages[annotator]
    to_queue(page)
    start(page, "annotate")
    task_id = page.evaluate("window.labelhub.screen.task.id")
    before = regions(page)
    target, (x, y) = clear_point(before)
    page.keyboard.press("s")
    click_image(page, x, y)
    wait_js(page, "document.body.dataset.segmentDone === '1'")
    page.keyboard.press("Enter")
    after = regions(page)
    assert [r["id"] for r in after] == [r["id"] for r in before]
    assert [a["id"] for a, b in zip(after, before, strict=True) if a["polygons"] != b["polygons"]] == [
        target["id"]
    ]
    assert "corrected" in page.inner_text("#live")
    saved(page)
    page.keyboard.press("Control+Enter")
    leave_next_task(page, task_id)
    task = Task.objects.get(pk=task_id)
    stored = task.annotation.revisions.get(number=task.annotation.current_revision).regions
    assert task.stage == "review" and [r["id"] for r in stored] == [r["id"] for r in before]
    return task_id


PINS = [(12, 12), (40, 30)]  # where the reviewer pins the two issues (image pixels)
FIRST = "The quick brown fox jumps over the lazy dog: off by 0123456789 px. " + string.ascii_uppercase
SECOND = "Pack my box with five dozen liquor jugs; Xylophone vim zest [edges] = - + H L M N."


def review_with_comments(team: Team, reviewer: str) -> tuple[int, int]:
    """The reviewer pins two issues and types a full sentence into each (every letter and digit: no
    shortcut fires, both texts are kept), rejects, then accepts the next task. Returns (rejected,
    accepted)."""
    page = team.pages[reviewer]
    to_queue(page)
    start(page, "review")
    shown = page.evaluate("window.labelhub.screen.task.id")
    ids = [r["id"] for r in regions(page)]
    page.keyboard.press("i")
    click_image(page, *PINS[0])
    assert page.evaluate("document.activeElement.getAttribute('aria-label')") == "Issue 1 text"
    page.keyboard.type(FIRST)
    click_image(page, *PINS[1])
    assert page.evaluate("document.activeElement.getAttribute('aria-label')") == "Issue 2 text"
    page.keyboard.type(SECOND)
    boxes = page.locator(".issues textarea")
    assert boxes.nth(0).input_value() == FIRST and boxes.nth(1).input_value() == SECOND
    assert page.evaluate("window.labelhub.screen.task.id") == shown
    assert page.evaluate("window.labelhub.view.container.dataset.tool") == "pin"
    assert page.locator("dialog[open]").count() == 0
    assert [r["id"] for r in regions(page)] == ids
    page.click("button:has-text('Reject')")
    wait_js(page, f"document.body.dataset.ready === 'task' && window.labelhub.screen.task.id !== {shown}")
    other = page.evaluate("window.labelhub.screen.task.id")
    page.click("button:has-text('Accept')")
    page.wait_for_selector("text=Queue empty")
    assert sorted(Comment.objects.filter(task_id=shown).values_list("text", flat=True)) == sorted(
        [FIRST, SECOND]
    )
    rejected = Task.objects.get(pk=shown)
    assert rejected.stage == "annotate" and Task.objects.get(pk=other).stage == "final-qa"
    return shown, other


def fix(team: Team, task_id: int) -> str:
    """The annotator the task went back to opens it from the queue, reads the pins, moves a vertex of
    the largest region, resolves the pins and submits again. Returns the annotator's name."""
    annotator = Task.objects.get(pk=task_id).assignee.username
    page = team.pages[annotator]
    to_queue(page)
    page.click(f"a[href='#/task/{task_id}']")
    page.wait_for_selector("body[data-ready=task]")
    assert page.evaluate("window.labelhub.screen.task.id") == task_id
    assert FIRST in page.locator(".comments").inner_text()
    assert page.evaluate("window.labelhub.screen.pins().length") == 2
    shown = regions(page)
    region, (x, y) = clear_point(shown, ai_only=False)
    click_image(page, x, y)  # select it: its vertices get handles
    ring = region["polygons"][0]["exterior"]
    vx, vy = max(ring, key=lambda v: min(abs(v[0] - px) + abs(v[1] - py) for px, py in PINS))
    centre = Polygon(ring).centroid
    to = (vx + (2 if centre.x > vx else -2), vy + (2 if centre.y > vy else -2))  # inwards
    drag_image(page, (vx, vy), to)
    revision = saved(page)
    now = regions(page)
    assert [r["id"] for r in now] == [r["id"] for r in shown]
    moved = next(r for r in now if r["id"] == region["id"])["polygons"][0]["exterior"]
    assert any(v == pytest.approx(list(to), abs=0.6) for v in moved)
    page.click(".comments li button:has-text('Resolve')")
    page.wait_for_selector("text=Comments (1 open)")
    page.click(".comments li button:has-text('Resolve')")
    page.wait_for_selector("text=Comments (0 open)")
    page.click("button:has-text('Submit')")
    leave_next_task(page, task_id)
    assert not Comment.objects.filter(task_id=task_id, resolved=False).exists()
    task = Task.objects.get(pk=task_id)
    assert task.stage == "review" and task.annotation.current_revision == revision
    return annotator


def accept_all(team: Team, reviewer: str, stage: str, n: int) -> None:
    """The reviewer accepts the n tasks waiting in `stage`, one after the other."""
    page = team.pages[reviewer]
    to_queue(page)
    start(page, stage)
    for i in range(n):
        shown = page.evaluate("window.labelhub.screen.task.id")
        page.click("button:has-text('Accept')")
        if i + 1 < n:
            wait_js(
                page, f"document.body.dataset.ready === 'task' && window.labelhub.screen.task.id !== {shown}"
            )
    page.wait_for_selector("text=Queue empty")


def download(page, selector: str, path) -> zipfile.ZipFile:
    with page.expect_download() as info:
        page.click(selector)
    info.value.save_as(path)
    return zipfile.ZipFile(path)


def manage_tasks(team: Team, manager: str, done: list[int]) -> None:
    """The task list filtered by status and stage; a task opened by its link; one reassigned, one
    marked gold."""
    page = team.pages[manager]
    page.goto(team.url(f"/app/#/tasks/{team.project_id}"))
    page.wait_for_selector("table.task-table tbody tr[data-task]")
    rows = page.locator("table.task-table tbody tr[data-task]")
    page.select_option("select[aria-label=Status]", "done")
    page.wait_for_function(f"document.querySelectorAll('tr[data-task]').length === {len(done)}")
    assert sorted(int(x) for x in rows.evaluate_all("rs => rs.map(r => r.dataset.task)")) == sorted(done)
    page.select_option("select[aria-label=Status]", "")
    page.select_option("select[aria-label=Stage]", "annotate")
    open_ids = list(
        Task.objects.filter(project_id=team.project_id, stage="annotate")
        .order_by("id")
        .values_list("id", flat=True)
    )
    page.wait_for_function(f"document.querySelectorAll('tr[data-task]').length === {len(open_ids)}")
    assert sorted(int(x) for x in rows.evaluate_all("rs => rs.map(r => r.dataset.task)")) == open_ids

    target = open_ids[-1]  # a deep link opens exactly that task, not the oldest open one
    page.goto(team.url(f"/app/#/task/{target}"))
    page.wait_for_selector("body[data-ready=task]")
    assert page.evaluate("window.labelhub.screen.task.id") == target
    task = Task.objects.get(pk=target)
    assert task.status == TaskStatus.IN_PROGRESS and task.assignee.username == manager

    page.goto(team.url(f"/app/#/tasks/{team.project_id}"))  # leaving the task releases its lease
    page.wait_for_selector("table.task-table tbody tr[data-task]")
    assert TaskEvent.objects.filter(task_id=target, kind=EventKind.RELEASED).exists()
    ann2 = Membership.objects.get(user__username="ann2").user_id
    page.select_option(f"select[aria-label='Reassign task {open_ids[0]}']", str(ann2))
    page.wait_for_selector(f"tr[data-task='{open_ids[0]}'] >> text=ann2")
    assert Task.objects.get(pk=open_ids[0]).assignee_id == ann2
    page.select_option("select[aria-label=Stage]", "")
    page.select_option("select[aria-label=Gold]", "")
    page.click(f"button[aria-label='Mark task {done[0]} gold']")
    page.wait_for_selector(f"tr[data-task='{done[0]}'] >> text=★ gold")
    assert Task.objects.get(pk=done[0]).is_gold


def export_and_load(team: Team, manager: str, done: list[int], tmp_path) -> None:
    """COCO and YOLO-seg with images from the export dialog; the downloads load in pycocotools and pass
    Ultralytics' own dataset check run from another folder."""
    page = team.pages[manager]
    page.click("a:has-text('Exports')")
    page.wait_for_selector("section[aria-label='Dataset versions']")
    for n, fmt in enumerate(["coco", "yolo"], start=1):
        page.click("button:has-text('New export')")
        page.select_option("select[aria-label='Export format']", fmt)
        page.check("dialog >> text=include images")
        page.click("button:has-text('Start export')")
        page.wait_for_function(
            f"document.querySelectorAll('tr[data-export][data-status=done]').length === {n}", timeout=120_000
        )
    ids = [
        int(x) for x in page.locator("tr[data-export]").evaluate_all("rs => rs.map(r => r.dataset.export)")
    ]
    yolo_id, coco_id = ids  # newest first

    tasks = Task.objects.filter(pk__in=done).select_related("annotation")
    stored = {
        t.image_id: t.annotation.revisions.get(number=t.annotation.current_revision).regions for t in tasks
    }
    coco_zip = download(page, f"a[aria-label='Download export {coco_id}']", tmp_path / "coco.zip")
    coco_zip.extractall(tmp_path / "coco")
    ann = next((tmp_path / "coco").rglob("*.json"))
    coco = COCO(str(ann))
    assert len(coco.getImgIds()) == len(done)
    assert len(coco.getAnnIds()) == sum(len(r) for r in stored.values())
    assert {c["name"] for c in coco.loadCats(coco.getCatIds())} <= set(CLASSES)
    for img in coco.loadImgs(coco.getImgIds()):
        assert list((tmp_path / "coco").rglob(img["file_name"].rsplit("/", 1)[-1])), img["file_name"]

    yolo_zip = download(page, f"a[aria-label='Download export {yolo_id}']", tmp_path / "yolo.zip")
    yolo_zip.extractall(tmp_path / "yolo")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (checked,) = ultralytics_check([tmp_path / "yolo/data.yaml"], cwd=elsewhere, config_dir=tmp_path / "cfg")
    assert checked["train"].startswith(str(tmp_path / "yolo"))
    assert checked["names"] == {str(i): name for i, name in enumerate(CLASSES)}
    labels = sorted((tmp_path / "yolo").rglob("labels/**/*.txt"))
    assert len(labels) == len(done)
    assert sum(len(f.read_text().splitlines()) for f in labels) == sum(len(r) for r in stored.values())


def test_a_team_runs_its_project_in_the_browser(browser, live_server, transactional_db, settings, tmp_path):
    settings.LABELHUB_PRESEGMENT_ON_UPLOAD = True  # the production default (the suite turns it off)
    images = small_real_images(20)
    team = Team(live_server=live_server, browser=browser)

    first_run(team, "olga")
    create_project(team, "olga", "Wildlife", CLASSES)
    project = Project.objects.get(pk=team.project_id)
    assert [c["name"] for c in project.label_schema] == CLASSES
    assert len({c["color"] for c in project.label_schema}) == 3  # distinct colours by default
    assert project.label_schema[2]["hotkey"] == "q" and project.pipeline[1]["sample_rate"] == 0.5

    links = {username: invite(team, "olga", username, role) for username, role in TEAM}
    shoot(team.pages["olga"], "people", full_page=True)
    for i, (username, _) in enumerate(TEAM):
        accept(team, links[username], username, shot="accept" if i == 0 else None)
    team.pages["olga"].reload()
    team.pages["olga"].wait_for_selector("tr[data-invitation='rev2@example.org'][data-status=accepted]")
    roles = dict(Membership.objects.values_list("user__username", "role"))
    assert roles == {"olga": Role.OWNER, **dict(TEAM)}
    add_everyone_to_the_project(team, "olga")
    assert project.members.count() == 4  # the annotators and reviewers; the manager sees every project

    upload_images(team, "mia", images)
    prelabel(team, "mia", len(images))
    assert Prediction.objects.filter(image__project=project, status=PredictionStatus.OK).count() == 20
    turn_prelabels_off(team, "mia")
    project.refresh_from_db()
    assert project.prelabel == "none" and [c["name"] for c in project.label_schema] == CLASSES
    assert project.pipeline[1]["sample_rate"] == 1.0

    # --- the labeling loop on two tasks
    corrected = [correct_an_ai_region(team, "ann1"), correct_an_ai_region(team, "ann2")]
    assert len(set(corrected)) == 2
    rejected, accepted = review_with_comments(team, "rev1")
    assert sorted([rejected, accepted]) == sorted(corrected)
    fix(team, rejected)
    accept_all(team, "rev1", "review", 1)
    accept_all(team, "rev2", "final-qa", 2)
    for task_id in corrected:
        assert Task.objects.get(pk=task_id).status == TaskStatus.DONE
        verdicts = TaskEvent.objects.filter(task_id=task_id, kind=EventKind.ACCEPTED).order_by("created_at")
        assert [(e.from_stage, e.actor.username) for e in verdicts] == [
            ("review", "rev1"),
            ("final-qa", "rev2"),
        ]

    # --- the manager's workspace: task list, deep link, reassign, gold, exports
    manage_tasks(team, "mia", corrected)
    export_and_load(team, "mia", corrected, tmp_path)

    for username, page in team.pages.items():
        assert page.errors == [], (username, page.errors)
