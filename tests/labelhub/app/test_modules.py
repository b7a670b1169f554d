"""The app's ES module graph read from the files (labelhub/app/modules.py) and what the shell page brings
with it: main.js's graph preloaded, each screen's graph for main.js, the user's preferences."""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client

from labelhub.accounts.models import Role
from labelhub.accounts.preferences import preferences_set
from labelhub.app.modules import APP_DIR, ModuleGraph, module_graph


def _write(root, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def test_the_graph_follows_static_imports_and_stops_at_dynamic_ones(tmp_path):
    _write(
        tmp_path,
        {
            "main.js": 'import { a } from "./a.js";\nimport "./side.js";\nconst s = () => import("./screen.js");\n',
            "a.js": 'import {\n  b,\n  c,\n} from "./lib/b.js";\nexport { d } from "./d.js";\nimport x from "./missing.js";\n',
            "lib/b.js": 'import { a } from "../a.js";\nimport Konva from "konva";\n',
            "d.js": "export const d = 1; // not an import: from './nowhere.js'\n",
            "side.js": "",
            "screen.js": 'import { a } from "./a.js";\nimport { e } from "./e.js";\n',
            "e.js": "",
            "vendor/konva/index.js": 'import { Node } from "./Node.js";\n',
            "vendor/konva/Node.js": "",
        },
    )
    graph = ModuleGraph(tmp_path)
    assert graph.imports["a.js"] == ["lib/b.js", "d.js"]  # across lines, re-exports; a missing file dropped
    assert graph.closure("main.js") == [
        "main.js", "a.js", "side.js", "lib/b.js", "d.js", "vendor/konva/index.js", "vendor/konva/Node.js",
    ]  # fmt: skip
    assert graph.lazy == ["screen.js"]
    assert graph.closure("screen.js") == ["screen.js", "a.js", "e.js", "lib/b.js", "d.js"] + [
        "vendor/konva/index.js", "vendor/konva/Node.js",
    ]  # fmt: skip
    screens = graph.preloads["screens"]
    assert screens == {"screen.js": ["/static/app/screen.js", "/static/app/e.js"]}  # less what main.js has


def test_list_screens_do_not_load_the_editor():
    graph = module_graph()
    editor_only = {"task.js", "view.js", "vendor/konva/index.js", "vendor/onnxruntime-web/ort.wasm.min.mjs"}
    assert editor_only.isdisjoint(graph.closure("main.js"))
    for screen in ("workspace/index.js", "workspace/tasks.js", "manager.js", "workspace/metrics.js"):
        assert screen in graph.lazy
        assert "vendor/konva/index.js" not in graph.closure(screen), screen
    editor = graph.closure("task.js")
    assert editor_only <= set(editor)
    assert all((APP_DIR / m).is_file() for m in editor)


@pytest.mark.django_db
def test_the_shell_preloads_main_js_graph_and_brings_preferences_and_screen_graphs(org_a):
    user = org_a.users[Role.ANNOTATOR]
    preferences_set(user=user, data={"shortcuts": {"next-task": "Shift+n"}})
    client = Client()
    assert client.login(username="alpha-annotator", password="pw-alpha-annotator")
    body = client.get("/app/").content.decode()
    preloads = re.findall(r'<link rel="modulepreload" href="([^"]+)">', body)
    assert preloads[0] == "/static/app/main.js" and "/static/app/api.js" in preloads
    assert not any("konva" in url or "task.js" in url for url in preloads)
    importmap = json.loads(re.search(r'<script type="importmap">(.*?)</script>', body, re.S).group(1))
    assert importmap["imports"]["konva"] == "/static/app/vendor/konva/index.js"
    boot = json.loads(
        re.search(r'<script id="app-boot" type="application/json">(.*?)</script>', body).group(1)
    )
    assert boot["preferences"] == {"shortcuts": {"next-task": "Shift+n"}}
    assert "/static/app/vendor/konva/index.js" in boot["screens"]["task.js"]
    assert "/static/app/main.js" not in boot["screens"]["task.js"]  # already loaded with the page
