"""A team starts from an empty database and runs its project from the browser alone (real Chromium):
the owner is made on the first-run page, creates a project with three classes, invites a manager, two
annotators and two reviewers by e-mail (the test reads Django's outbox), each accepts on the app's page
and chooses a password; the manager drops 20 images (and one broken file) on the project, sees each
file's progress and error, and starts the pre-segmentation and sees it finish.

No API call is made outside the app: the test drives the browser and reads the outbox (and the
database, to check what the screens said). The steps are functions so that later steps (annotate,
review, export) can continue the same flow."""

from __future__ import annotations

import base64
import io
import re
from dataclasses import dataclass, field

import pytest
from django.core import mail
from PIL import Image as PILImage

from labelhub.accounts.models import Membership, Role
from labelhub.predictions.models import Prediction, PredictionStatus
from labelhub.projects.models import Project
from tests.browser.conftest import shoot
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
    page.wait_for_selector(f".prelabel-count:has-text('{n} of {n} images pre-labelled')", timeout=120_000)
    page.evaluate("document.getElementById('screen').scrollTo(0, 0)")
    shoot(page, "project_home")


def turn_prelabels_off(team: Team, manager: str) -> None:
    """Editing the project: with pre-labels off, the project screen says so and offers no start."""
    page = team.pages[manager]
    page.click("a:has-text('Settings')")
    page.wait_for_selector("form[aria-label='Project settings']")
    assert page.input_value("[aria-label='Class 1 name']") == CLASSES[0]
    page.select_option("[aria-label='Pre-label mode']", "none")
    page.click("button:has-text('Save')")
    page.wait_for_selector("[data-on-upload=false]:has-text('Pre-labels are off for this project')")
    page.wait_for_selector("a:has-text('Turn pre-labels on')")
    assert page.locator("button:has-text('Pre-segment')").count() == 0


def test_a_team_sets_up_its_project_in_the_browser(browser, live_server, transactional_db, settings):
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

    for username, page in team.pages.items():
        assert page.errors == [], (username, page.errors)
