"""A round trip through a real Label Studio (issue 26), through LabelHub's own export and import paths.

1. LabelHub (in this process, its own fresh database): a project with two classes, three uploaded images
   of two sizes, each annotated through the API with hole-free polygons, a two-part polygon region, a
   polygon with a hole and a mask region; LabelHub's Label Studio export of it built by the export job
   (`POST projects/{id}/exports/`, format `label_studio`) and downloaded.
2. Label Studio: the model services' config (rectangle and keypoint controls too) and the export's own
   `label_config.xml` accepted, the old documented config (two controls named `label`) refused; the
   export's `label_studio.json` imported as Label Studio tasks with their annotations.
3. Label Studio's JSON export and its COCO export, each imported back through LabelHub's import job
   (`POST projects/{id}/imports/`, formats `label_studio` and `coco`, the importers of
   labelhub/datasets/formats) into a fresh project holding the same images; the regions it wrote
   compared with the originals: every polygon vertex within 1e-6 px, every mask pixel for pixel (IoU
   1.0). Label Studio's COCO export holds polygons only (its converter writes no brush masks), so the
   COCO check covers the hole-free polygon parts, each one an annotation there.

Usage (from the repo root), against a Label Studio you started (`label-studio` from PyPI in its own venv,
e.g. `label-studio start --no-browser -p 18426 --username u@example.com --password ... --user-token T`)::

    .venv/bin/python benchmarks/label_studio_round_trip.py --url http://127.0.0.1:18426 --token T

Or let the script start one: `--start <label-studio venv>` (a fresh SQLite data folder, a user with
an API token, legacy token authentication on through LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN; the venv made
with `python -m venv` and `pip install label-studio==1.23.2 "sentry-sdk<3"`)::

    .venv/bin/python benchmarks/label_studio_round_trip.py --start ~/.cache/labelhub/ls-venv

Prints each check with its outcome; exits 1 when one fails. LabelHub's database: a fresh SQLite file in
a temporary folder (`--database-url` for another).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

CLASSES = [
    {"name": "cat", "color": "#e69f00", "kinds": ["polygon", "mask"]},
    {"name": "dog", "color": "#56b4e9", "kinds": ["polygon"]},
]
OLD_CONFIG = """<View><Image name="image" value="$image"/>
<PolygonLabels name="label" toName="image"><Label value="cat"/></PolygonLabels>
<BrushLabels name="label" toName="image"><Label value="cat"/></BrushLabels></View>"""
IMAGES = [("rt0.png", 96, 80), ("rt1.png", 96, 80), ("rt2.png", 120, 90)]
TOLERANCE = 1e-6  # px, for polygon vertices read back from Label Studio's percent or COCO's pixels


def ls_call(url: str, token: str, method: str, path: str, body=None, raw: bool = False):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{url}{path}", data=data, method=method)
    request.add_header("Authorization", f"Token {token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            payload = response.read()
            return response.status, (payload if raw else json.loads(payload or b"null"))
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")


def regions_of(k: int, width: int, height: int) -> list[dict]:
    """Image k's regions: two hole-free polygons (fractional vertices), a two-part region, a polygon
    with a hole (Label Studio gets it as a brush mask) and a mask region."""
    from workers.geometry import mask_to_rle

    s = 2.25 * k
    yy, xx = np.mgrid[:height, :width]
    disc = (xx + 0.5 - 60 - k) ** 2 + (yy + 0.5 - 40) ** 2 <= 15**2
    return [
        {"id": f"p{k}", "label": "cat", "kind": "polygon",
         "polygons": [{"exterior": [[3.0 + s, 4.0], [40.5, 6.25 + s], [20.125, 30.0]], "holes": []}]},
        {"id": f"q{k}", "label": "dog", "kind": "polygon",
         "polygons": [{"exterior": [[50.0, 50.0], [90.0 - s, 52.5], [70.0, 78.0]], "holes": []}]},
        {"id": f"t{k}", "label": "dog", "kind": "polygon",
         "polygons": [{"exterior": [[2.0, 40.0], [12.0, 40.0], [12.0, 52.0], [2.0, 52.0]], "holes": []},
                      {"exterior": [[16.0, 42.0], [30.5, 44.0], [22.0, 60.75]], "holes": []}]},
        {"id": f"h{k}", "label": "cat", "kind": "polygon",
         "polygons": [{"exterior": [[30.0, 60.0], [50.0, 60.0], [50.0, 78.0], [30.0, 78.0]],
                       "holes": [[[35.0, 65.0], [35.0, 72.0], [44.0, 72.0], [44.0, 65.0]]]}]},
        {"id": f"m{k}", "label": "cat", "kind": "mask", "rle": mask_to_rle(disc)},
    ]  # fmt: skip


class Checks:
    def __init__(self) -> None:
        self.failed = 0
        self.passed = 0

    def __call__(self, what: str, ok: bool, detail: str = "") -> bool:
        self.failed += not ok
        self.passed += bool(ok)
        print(f"{'ok  ' if ok else 'FAIL'} {what}{': ' + detail if detail else ''}", flush=True)
        return ok


def django_setup(database_url: str) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="lh-ls-round-trip-"))
    os.environ["DATABASE_URL"] = database_url or f"sqlite:///{tmp}/db.sqlite3"
    os.environ["LABELHUB_MEDIA_ROOT"] = str(tmp / "media")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "labelhub.settings")
    os.environ["LABELHUB_TASKS_EAGER"] = "1"  # the export and import jobs run in this process
    os.environ["LABELHUB_PRESEGMENT_ON_UPLOAD"] = "0"
    os.environ["LABELHUB_THROTTLE_IMPORT"] = "1000/minute"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


class LabelHub:
    """LabelHub's API, as a manager calls it (DRF's test client on this process's Django)."""

    def __init__(self) -> None:
        from labelhub.accounts.models import Organization, Role
        from tests.helpers import client_for, make_user

        self.org = Organization.objects.create(name="Round trip", slug="round-trip")
        self.client = client_for(make_user("roundtrip-owner", self.org, Role.OWNER))

    def project(self, name: str) -> dict:
        """A project with CLASSES and IMAGES uploaded (their bytes the same in every project)."""
        from django.core.files.uploadedfile import SimpleUploadedFile

        from tests.helpers import image_bytes

        made = self.client.post("/api/v1/projects/", {"organization": self.org.id, "name": name,
                                                      "label_schema": CLASSES}, format="json")  # fmt: skip
        assert made.status_code == 201, made.content
        project = made.json()
        files = [SimpleUploadedFile(n, image_bytes(w, h, seed=k)) for k, (n, w, h) in enumerate(IMAGES)]
        uploaded = self.client.post(f"/api/v1/projects/{project['id']}/images/upload/", {"files": files},
                                    format="multipart")  # fmt: skip
        assert uploaded.status_code == 201, uploaded.content
        return project

    def tasks(self, project: dict) -> dict[str, dict]:
        """The project's tasks by image name, with the image's size."""
        from labelhub.labeling.models import Task

        return {t.image.original_name: {"id": t.id, "width": t.image.width, "height": t.image.height}
                for t in Task.objects.filter(project_id=project["id"]).select_related("image")}  # fmt: skip

    def regions(self, task_id: int) -> list[dict]:
        got = self.client.get(f"/api/v1/tasks/{task_id}/annotation/")
        assert got.status_code == 200, got.content
        return got.json()["regions"]

    def export(self, project: dict, fmt: str) -> zipfile.ZipFile:
        made = self.client.post(f"/api/v1/projects/{project['id']}/exports/",
                                {"format": fmt, "filters": {"annotated": True}}, format="json")  # fmt: skip
        assert made.status_code == 202 and made.json()["status"] == "done", made.content
        got = self.client.get(made.json()["download_url"], HTTP_ACCEPT="application/zip")
        assert got.status_code == 200, got.status_code
        return zipfile.ZipFile(io.BytesIO(b"".join(got.streaming_content)))

    def import_file(self, project: dict, name: str, data: bytes, fmt: str) -> dict:
        from django.core.files.uploadedfile import SimpleUploadedFile

        queued = self.client.post(f"/api/v1/projects/{project['id']}/imports/",
                                  {"file": SimpleUploadedFile(name, data), "format": fmt}, format="multipart")  # fmt: skip
        return {"status_code": queued.status_code, **queued.json()}


def pixels(region: dict, height: int, width: int) -> np.ndarray:
    from labelhub.regions.validation import region_mask

    return region_mask(region, height, width)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = (a | b).sum()
    return float((a & b).sum() / union) if union else 1.0


def rings_equal(a: list, b: list) -> bool:
    return len(a) == len(b) and np.allclose(
        np.asarray(a, float), np.asarray(b, float), rtol=0, atol=TOLERANCE
    )


def compare_json(check: Checks, name: str, task: dict, want: list[dict], got: list[dict]) -> None:
    """Label Studio's JSON export read back: every region by its id, polygons vertex by vertex, regions
    that travelled as brush masks (holes, masks) pixel for pixel."""
    h, w = task["height"], task["width"]
    by_id = {r["id"]: r for r in got}
    check(f"{name}: {len(want)} regions back with their ids and classes",
          sorted(by_id) == sorted(r["id"] for r in want)
          and all(by_id[r["id"]]["label"] == r["label"] for r in want if r["id"] in by_id),
          f"{sorted(by_id)}")  # fmt: skip
    for region in want:
        back = by_id.get(region["id"])
        if back is None:
            continue
        holed = any(p["holes"] for p in region.get("polygons") or [])
        a, b = pixels(region, h, w), pixels(back, h, w)
        if region["kind"] == "polygon" and not holed:
            exact = (
                back["kind"] == "polygon"
                and len(back["polygons"]) == len(region["polygons"])
                and all(
                    rings_equal(p["exterior"], q["exterior"])
                    for p, q in zip(region["polygons"], back["polygons"], strict=False)
                )
            )
            worst = max(
                (float(np.abs(np.asarray(p["exterior"]) - np.asarray(q["exterior"])).max())
                 for p, q in zip(region["polygons"], back["polygons"], strict=False) if len(p["exterior"]) == len(q["exterior"])),
                default=float("nan"),
            )  # fmt: skip
            check(f"{name} {region['id']} ({region['label']}, {len(region['polygons'])}-part polygon): vertices "
                  f"within {TOLERANCE:g} px, IoU {iou(a, b):.6f}", exact and iou(a, b) == 1.0,
                  f"largest vertex difference {worst:.2e} px")  # fmt: skip
        else:
            what = "polygon with a hole" if holed else "mask"
            check(f"{name} {region['id']} ({region['label']}, {what}, a brush mask in Label Studio): pixel for "
                  f"pixel, IoU {iou(a, b):.6f}", bool(np.array_equal(a, b)) and a.any(),
                  f"{int(a.sum())} px, back as a {back['kind']} region")  # fmt: skip


def compare_coco(check: Checks, name: str, task: dict, want: list[dict], got: list[dict]) -> None:
    """Label Studio's COCO export read back: every hole-free polygon part of the originals (one COCO
    annotation each) found once among the imported regions with its class, vertex by vertex."""
    h, w = task["height"], task["width"]
    parts = [(r["label"], p["exterior"]) for r in want if r["kind"] == "polygon"
             for p in r["polygons"] if not any(q["holes"] for q in r["polygons"])]  # fmt: skip
    back = [(r["label"], p["exterior"]) for r in got if r["kind"] == "polygon" for p in r["polygons"]]
    check(f"{name}: {len(parts)} polygon parts in COCO, {len(back)} regions' parts back",
          len(parts) == len(back), f"kinds back: {sorted({r['kind'] for r in got})}")  # fmt: skip
    unmatched = list(back)
    for label, ring in parts:
        found = next((b for b in unmatched if b[0] == label and rings_equal(b[1], ring)), None)
        if found is not None:
            unmatched.remove(found)
        a = pixels({"kind": "polygon", "polygons": [{"exterior": ring, "holes": []}]}, h, w)
        b = (
            pixels({"kind": "polygon", "polygons": [{"exterior": found[1], "holes": []}]}, h, w)
            if found
            else a & False
        )
        check(f"{name} {label} polygon {np.round(ring[0], 3).tolist()}...: vertices within {TOLERANCE:g} px, "
              f"IoU {iou(a, b):.6f}", found is not None and iou(a, b) == 1.0)  # fmt: skip


def round_trip(url: str, token: str, database_url: str) -> int:
    check = Checks()
    django_setup(database_url)
    from workers.lsml import label_config

    hub = LabelHub()
    # LabelHub: the original project, annotated through the API, and its Label Studio export
    original = hub.project("original")
    tasks = hub.tasks(original)
    want: dict[str, list[dict]] = {}
    for k, (name, _, _) in enumerate(IMAGES):
        task = tasks[name]
        want[name] = regions_of(k, task["width"], task["height"])
        saved = hub.client.put(f"/api/v1/tasks/{task['id']}/annotation/", {"revision": 0, "regions": want[name]},
                               format="json")  # fmt: skip
        assert saved.status_code in (200, 201), saved.content
        want[name] = hub.regions(task["id"])  # as LabelHub stores them
    archive = hub.export(original, "label_studio")
    config = archive.read("label_config.xml").decode()
    exported = json.loads(archive.read("label_studio.json"))
    check("LabelHub's Label Studio export (the export job)", len(exported) == len(IMAGES),
          f"{len(exported)} tasks, {sum(len(t['annotations'][0]['result']) for t in exported)} results")  # fmt: skip

    # Label Studio: the configs, then our export imported as its tasks
    status, body = ls_call(url, token, "POST", "/api/projects",
                           {"title": "services", "label_config": label_config(CLASSES)})  # fmt: skip
    check("Label Studio accepts the model services' config (with rectangle and keypoint controls)",
          status == 201, str(body)[:120])  # fmt: skip
    status, body = ls_call(
        url, token, "POST", "/api/projects", {"title": "old config", "label_config": OLD_CONFIG}
    )
    check("Label Studio refuses a config with two controls named 'label'", status == 400, str(body)[:160])
    status, ls_project = ls_call(
        url, token, "POST", "/api/projects", {"title": "LabelHub", "label_config": config}
    )
    if not check("Label Studio accepts the export's label_config.xml", status == 201, str(ls_project)[:160]):
        return 1
    status, body = ls_call(url, token, "POST", f"/api/projects/{ls_project['id']}/import", exported)
    check("LabelHub's export (label_studio.json) imports into Label Studio", status == 201, str(body)[:160])
    status, ls_json = ls_call(url, token, "GET", f"/api/projects/{ls_project['id']}/export?exportType=JSON",
                              raw=True)  # fmt: skip
    check(
        "Label Studio's JSON export",
        status == 200,
        f"{len(json.loads(ls_json)) if status == 200 else ls_json}",
    )
    status, ls_coco = ls_call(url, token, "GET", f"/api/projects/{ls_project['id']}/export?exportType=COCO",
                              raw=True)  # fmt: skip
    check("Label Studio's COCO export", status == 200, f"{len(ls_coco) if status == 200 else ls_coco} bytes")
    if check.failed:
        return 1

    # Back into LabelHub through its import job, each into a fresh project with the same images
    for fmt, label_file, data, compare in (
        ("label_studio", "ls-export.json", ls_json, compare_json),
        ("coco", "result.json", zipfile.ZipFile(io.BytesIO(ls_coco)).read("result.json"), compare_coco),
    ):
        if fmt == "coco":
            doc = json.loads(data)
            print(f"     Label Studio's COCO: file_name {[i['file_name'] for i in doc['images']]}, "
                  f"{len(doc['annotations'])} annotations, categories {[c['name'] for c in doc['categories']]}")  # fmt: skip
        fresh = hub.project(f"from Label Studio {fmt}")
        job = hub.import_file(fresh, label_file, data, fmt)
        if not check(f"LabelHub's import job ({fmt}) takes Label Studio's export", job["status_code"] == 202
                     and job["status"] == "done", json.dumps({k: job.get(k) for k in ("status", "result", "error")})
                     + (f" problems {job['problems'][:3]}" if job.get("problems") else "")):  # fmt: skip
            continue
        back_tasks = hub.tasks(fresh)
        for name, _, _ in IMAGES:
            compare(check, f"{fmt} {name}", back_tasks[name], want[name], hub.regions(back_tasks[name]["id"]))
    print(f"{check.passed} checks passed, {check.failed} failed")
    return 1 if check.failed else 0


def started(venv: str, database_url: str) -> int:
    """Start Label Studio from `venv` on 127.0.0.1 with fresh data, run the checks, stop it."""
    import secrets
    import socket
    import subprocess
    import time

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    data = tempfile.mkdtemp(prefix="lh-ls-")
    token = secrets.token_hex(20)
    env = {**os.environ, "LABEL_STUDIO_BASE_DATA_DIR": data, "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true"}
    for key in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE"):  # LabelHub's, not Label Studio's
        env.pop(key, None)
    command = [f"{venv}/bin/label-studio", "start", "--no-browser", "--internal-host", "127.0.0.1", "-p", str(port),
               "--data-dir", data, "--username", "labelhub@example.com", "--password", secrets.token_hex(8),
               "--user-token", token]  # fmt: skip
    t0 = time.monotonic()
    with open(f"{data}/server.log", "wb") as log:
        proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5).read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() - t0 > 1800:
                    print(open(f"{data}/server.log").read()[-3000:])
                    return 1
                time.sleep(2)
        print(f"Label Studio up on port {port} after {time.monotonic() - t0:.0f} s", flush=True)
        return round_trip(f"http://127.0.0.1:{port}", token, database_url)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url")
    parser.add_argument("--token")
    parser.add_argument("--start", help="a venv with label-studio: start it on a free port, fresh data")
    parser.add_argument(
        "--database-url", default="", help="LabelHub's database (default: a fresh SQLite file)"
    )
    args = parser.parse_args()
    if args.start:
        return started(args.start, args.database_url)
    if not (args.url and args.token):
        parser.error("--url and --token, or --start")
    return round_trip(args.url, args.token, args.database_url)


if __name__ == "__main__":
    sys.exit(main())
