"""A round trip through a real Label Studio (issue 26): LabelHub's generated labelling config is accepted,
LabelHub's Label Studio results (the export's conversion, `workers.lsml.region_results`) import there,
and Label Studio's JSON and COCO exports give the same geometry back.

Usage (from the repo root), against a Label Studio you started (`label-studio` from PyPI in its own venv,
e.g. `label-studio start --no-browser -p 18426 --username u@example.com --password ... --user-token T`)::

    .venv/bin/python benchmarks/label_studio_round_trip.py --url http://127.0.0.1:18426 --token T

Or let the script start one: `--start <label-studio venv>` (a fresh SQLite data folder, a user with
an API token, legacy token authentication on through LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN; the venv made
with `python -m venv` and `pip install label-studio==1.23.2 "sentry-sdk<3"`)::

    .venv/bin/python benchmarks/label_studio_round_trip.py --start ~/.cache/labelhub-tests/ls-1.23.2

Prints each check with its outcome; exits 1 when one fails. No Django: the conversions are the pure ones
(`workers/lsml`, `workers/geometry/brush.py`) the export, the importer and the model services use.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from workers.geometry import polygons_to_mask  # noqa: E402
from workers.lsml import Limits, label_config, prediction_shapes, region_results  # noqa: E402

CLASSES = [
    {"name": "cat", "color": "#e69f00", "kinds": ["polygon", "mask"]},
    {"name": "dog", "color": "#56b4e9", "kinds": ["polygon"]},
]
OLD_CONFIG = """<View><Image name="image" value="$image"/>
<PolygonLabels name="label" toName="image"><Label value="cat"/></PolygonLabels>
<BrushLabels name="label" toName="image"><Label value="cat"/></BrushLabels></View>"""
W, H = 96, 80


def call(url: str, token: str, method: str, path: str, body=None, raw: bool = False):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{url}{path}", data=data, method=method)
    request.add_header("Authorization", f"Token {token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            payload = response.read()
            return response.status, (payload if raw else json.loads(payload or b"null"))
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")


def regions() -> list[dict]:
    yy, xx = np.mgrid[:H, :W]
    disc = (xx + 0.5 - 60) ** 2 + (yy + 0.5 - 40) ** 2 <= 15**2
    return [
        {"id": "p1", "label": "cat", "kind": "polygon",
         "polygons": [{"exterior": [[3.0, 4.0], [40.5, 6.25], [20.0, 30.0]], "holes": []}]},
        {"id": "p2", "label": "dog", "kind": "polygon",
         "polygons": [{"exterior": [[50.0, 50.0], [90.0, 52.0], [70.0, 78.0]], "holes": []}]},
        {"id": "m1", "label": "cat", "kind": "mask", "mask": disc},
    ]  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url")
    parser.add_argument("--token")
    parser.add_argument("--start", help="a venv with label-studio: start it on a free port, fresh data")
    args = parser.parse_args()
    if args.start:
        return started(args.start)
    failed = 0

    def check(what: str, ok: bool, detail: str = "") -> None:
        nonlocal failed
        failed += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {what}{': ' + detail if detail else ''}")

    config = label_config(CLASSES, prompts=False)  # the dataset export's config
    status, body = call(
        args.url,
        args.token,
        "POST",
        "/api/projects",
        {"title": "services", "label_config": label_config(CLASSES)},
    )
    check(
        "Label Studio accepts the model services' config (with rectangle and keypoint controls)",
        status == 201,
        str(body)[:120],
    )
    status, body = call(
        args.url, args.token, "POST", "/api/projects", {"title": "old config", "label_config": OLD_CONFIG}
    )
    check("Label Studio refuses a config with two controls named 'label'", status == 400, str(body)[:160])
    status, project = call(
        args.url, args.token, "POST", "/api/projects", {"title": "LabelHub", "label_config": config}
    )
    check("Label Studio accepts the export's config", status == 201, str(project)[:160])
    if status != 201:
        return 1
    results = []
    for region in regions():
        mask = region.pop("mask", None)
        results += region_results(region, width=W, height=H, mask=mask)
    tasks = [
        {"data": {"image": f"/data/upload/1/0000000{k}-img{k}.png"}, "annotations": [{"result": results}]}
        for k in range(2)
    ]
    status, body = call(args.url, args.token, "POST", f"/api/projects/{project['id']}/import", tasks)
    check("LabelHub's tasks import into Label Studio", status == 201, str(body)[:160])
    status, exported = call(
        args.url, args.token, "GET", f"/api/projects/{project['id']}/export?exportType=JSON"
    )
    check("Label Studio's JSON export", status == 200 and len(exported) == 2, f"{len(exported)} tasks")
    want = regions()
    for task in exported:
        (annotation,) = task["annotations"]
        shapes, _, _ = prediction_shapes({"result": annotation["result"]}, width=W, height=H,
                                         classes=["cat", "dog"], limits=Limits())  # fmt: skip
        polygons = [s for s in shapes if s["type"] == "polygon"]
        masks = [s for s in shapes if s["type"] == "mask"]
        exact = all(
            np.allclose(s["points"], r["polygons"][0]["exterior"], atol=1e-9) and s["label"] == r["label"]
            for s, r in zip(polygons, want[:2], strict=True)
        )
        check(f"task {task['id']}: polygons back exactly (1e-9 px)", exact and len(polygons) == 2)
        check(
            f"task {task['id']}: brush mask back pixel for pixel",
            len(masks) == 1 and np.array_equal(masks[0]["mask"], want[2]["mask"]),
        )
    status, archive = call(
        args.url, args.token, "GET", f"/api/projects/{project['id']}/export?exportType=COCO", raw=True
    )
    check("Label Studio's COCO export", status == 200, f"{len(archive) if status == 200 else archive}")
    if status == 200:
        doc = json.loads(zipfile.ZipFile(io.BytesIO(archive)).read("result.json"))
        names = sorted(i["file_name"] for i in doc["images"])
        print(f"     COCO file_name: {names}")
        cats = {c["id"]: c["name"] for c in doc["categories"]}
        by_image: dict[int, list] = {}
        for ann in doc["annotations"]:
            by_image.setdefault(ann["image_id"], []).append(ann)
        for image_id, anns in sorted(by_image.items()):
            polys = [a for a in anns if a.get("segmentation")]
            got = [np.array(a["segmentation"][0]).reshape(-1, 2) for a in polys]
            exact = len(got) == 2 and all(
                np.allclose(g, r["polygons"][0]["exterior"], atol=1e-6)
                and cats[a["category_id"]] == r["label"]
                for g, a, r in zip(got, polys, want[:2], strict=True)
            )
            check(f"COCO image {image_id}: polygons in pixels as LabelHub's (1e-6 px)", exact)
            drawn = [polygons_to_mask([{"exterior": g.tolist(), "holes": []}], H, W).sum() for g in got]
            print(
                f"     pixel areas of the polygons: {drawn}; brush masks in COCO: {len(anns) - len(polys)} (Label Studio's COCO export writes no brush)"
            )
    return 1 if failed else 0


def started(venv: str) -> int:
    """Start Label Studio from `venv` on 127.0.0.1 with fresh data, run the checks, stop it."""
    import os
    import secrets
    import socket
    import subprocess
    import tempfile
    import time

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    data = tempfile.mkdtemp(prefix="lh-ls-")
    token = secrets.token_hex(20)
    env = {**os.environ, "LABEL_STUDIO_BASE_DATA_DIR": data, "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true"}
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
        print(f"Label Studio up on port {port} after {time.monotonic() - t0:.0f} s")
        sys.argv = [sys.argv[0], "--url", f"http://127.0.0.1:{port}", "--token", token]
        return main()
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main())
