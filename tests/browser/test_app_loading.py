"""How the app loads, in real Chromium: a list screen never loads the editor (Konva, the SAM decoder,
task.js); a screen's first API requests go out once, started beside its modules; the user's remapped
keys come with the page (no request for them); the editor loads when a task opens."""

from __future__ import annotations

import pytest

from labelhub.accounts.models import Organization, Role
from labelhub.accounts.preferences import preferences_set
from labelhub.labeling.models import Task
from labelhub.projects.models import Project
from tests.browser.test_app_flow import sign_in
from tests.helpers import client_for, disc_image_bytes, make_user, project_members_all, upload

EDITOR = ("/vendor/konva/", "/vendor/onnxruntime-web/", "/static/app/task.js", "/static/app/view.js")


@pytest.fixture
def project(transactional_db):
    org = Organization.objects.create(name="Loading", slug="loading")
    manager = make_user("lmanager", org, Role.MANAGER)
    project = Project.objects.create(
        organization=org,
        name="Load",
        label_schema=[{"name": "cell", "kinds": ["polygon"]}],
        created_by=manager,
    )
    project_members_all(project)
    files = [(f"l{i}.png", disc_image_bytes(96, 80, seed=i)) for i in range(3)]
    assert upload(client_for(manager), project.id, *files).status_code == 201
    preferences_set(user=manager, data={"shortcuts": {"next-task": "Shift+n"}})
    return project


def _load(page, url: str) -> list[str]:
    """The URLs the page asks for while it loads `url` afresh (also those the HTTP cache answers)."""
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto("about:blank")
    page.goto(url)
    return requests


def test_list_screens_load_no_editor_and_ask_for_their_data_once(browser, live_server, project):
    page = sign_in(browser, live_server, "lmanager")
    app = f"{live_server.url}/app/"
    requests = _load(page, f"{app}#/tasks/{project.id}")
    page.wait_for_function("document.body.dataset.tasksDrawn === '1'")
    assert page.locator("tr[data-task]").count() == 3
    assert not [u for u in requests if any(part in u for part in EDITOR)]
    assert [u for u in requests if u.endswith("/static/app/workspace/tasks.js")]
    api = [u.split("/api/v1/")[1] for u in requests if "/api/v1/" in u and "/thumbnail/" not in u]
    assert api.count(f"projects/{project.id}/") == 1  # the router's request, taken over by the screen
    assert len([u for u in api if u.startswith(f"projects/{project.id}/tasks/")]) == 1
    assert "auth/me/preferences/" not in api  # they came with the page
    assert page.evaluate("import('/static/app/keymap.js').then((k) => k.keysOf('next-task'))") == ["Shift+n"]

    requests = _load(page, f"{app}#/projects")
    page.wait_for_selector("body[data-ready=projects]")
    assert page.get_by_text("Load").first.is_visible()
    assert not [u for u in requests if any(part in u for part in EDITOR)]

    task = Task.objects.filter(project=project).order_by("id").first()
    requests = _load(page, f"{app}#/task/{task.id}")
    page.wait_for_selector("body[data-ready=task]")
    assert page.evaluate("!!window.labelhub.view")
    assert [u for u in requests if "/vendor/konva/" in u]
    assert page.errors == []
