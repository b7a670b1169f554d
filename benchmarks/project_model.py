"""A project model trained on accepted ISBI membrane labels vs the classical backend, through the REST API.

Runs the real Django stack in this process (embedded: its own SQLite database and media in a temp
``LABELHUB_VAR_DIR``, Celery tasks eager, i.e. each queued task runs in-process right after its
commit) and drives it only through DRF's ``APIClient`` (token auth, routing, serializers) - the
organization and its users are made through the ORM, everything after that through ``/api/v1/``:

1. a manager creates a project (one class ``membrane``, pipeline annotate -> review, ``prelabel``
   ``project_model``) and uploads images 0..19 of ``$LABELHUB_SHARED_DATA/isbi-membrane``;
2. an annotator claims each task, PUTs the ground truth (label 0 = membrane, turned into polygons by
   the project's simplifier: bounded, IoU >= 0.98) and submits; a reviewer claims and accepts it;
3. the manager POSTs ``projects/{id}/models/train/`` (``--minutes`` budget, a held-out 20% of the
   accepted tasks for the promotion rule) and reads ``models/{id}/``;
4. the manager uploads images 20..29: the promoted version pre-labels them on upload; then POSTs
   ``images/{id}/presegment/`` for the classical backend's everything mode on the same images;
5. both predictions are read back with ``GET predictions/?image=`` and scored against the true masks:
   pixel accuracy (membrane vs cell), membrane Dice, IoU and Boundary F1 (2 px), means over the 10
   images; and labeler effort (workers/train/effort.py: vertices to move, add or delete to turn the
   pre-label's polygons into the accepted label's, 2 px tolerance).

An OpenCV adaptive-threshold line (not a LabelHub backend, computed here without the API) is printed
as a reference point for what a classical method can do on this set.

Usage: ``python benchmarks/project_model.py --minutes 10``  (develop with ``--minutes 0.5``)
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _sam_common import REPO, machine, shared_data_dir


def _configure(var_dir: str, threads: int) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "labelhub.settings")
    os.environ["LABELHUB_VAR_DIR"] = var_dir
    os.environ["DATABASE_URL"] = f"sqlite:///{Path(var_dir) / 'bench.sqlite3'}"
    for key in ("REDIS_URL", "CELERY_BROKER_URL", "LABELHUB_MEDIA_ROOT", "LABELHUB_SAM_CHECKPOINT"):
        os.environ.pop(key, None)
    os.environ.pop("LABELHUB_SAM_RANDOM_SEED", None)
    os.environ["LABELHUB_TASKS_EAGER"] = "1"
    os.environ["LABELHUB_PRESEGMENT_ON_UPLOAD"] = "1"
    os.environ["LABELHUB_TRAIN_THREADS"] = str(threads)
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))


def _png(array: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def _ok(response, status: int = 200):
    if response.status_code != status:
        raise SystemExit(
            f"{response.request['PATH_INFO']}: {response.status_code} {response.content[:500]!r}"
        )
    return response.json() if response.content else None


def _membrane(regions: list[dict], h: int, w: int) -> tuple[np.ndarray, list[dict]]:
    """Union mask and polygons of the regions labelled membrane."""
    from labelhub.qa.gold import region_mask

    mask = np.zeros((h, w), bool)
    polygons: list[dict] = []
    for region in regions:
        if region.get("label") == "membrane":
            mask |= region_mask(region, h, w)
            polygons.extend(region.get("polygons") or [])
    return mask, polygons


def _scores(pred: np.ndarray, truth: np.ndarray) -> dict:
    from workers.train.metrics import boundary_f1, dice, iou, pixel_accuracy

    return {
        "pixel_accuracy": pixel_accuracy(pred, truth),
        "dice": dice(pred, truth),
        "iou": iou(pred, truth),
        "bf1_2px": boundary_f1(pred, truth, tolerance=2.0),
    }


def _adaptive(gray: np.ndarray) -> np.ndarray:
    import cv2

    # Membranes are dark: a pixel darker than its 31x31 Gaussian neighbourhood mean (offset 2) is membrane.
    return cv2.adaptiveThreshold(gray, 255, cv2.ADAPTIVE_THRESH_GAUSSIAN_C, cv2.THRESH_BINARY_INV, 31, 2) > 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10.0, help="training budget (wall clock)")
    ap.add_argument("--train-images", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads for training")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    data = shared_data_dir() / "isbi-membrane"
    if not (data / "image").is_dir():
        raise SystemExit(f"ISBI membrane set not found under {data} (set LABELHUB_SHARED_DATA)")
    from PIL import Image as PILImage

    n = len(list((data / "image").glob("*.png")))
    grays = [np.array(PILImage.open(data / "image" / f"{i}.png").convert("L")) for i in range(n)]
    truths = [np.array(PILImage.open(data / "label" / f"{i}.png")) == 0 for i in range(n)]
    train_ids, test_ids = list(range(args.train_images)), list(range(args.train_images, n))

    var_dir = tempfile.mkdtemp(prefix="lh-bench-model-")
    _configure(var_dir, args.threads)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from rest_framework.test import APIClient

    from labelhub.accounts.auth import token_issue
    from labelhub.accounts.models import Membership, Organization
    from workers.geometry import mask_to_simplified_polygons
    from workers.train.effort import vertex_edits

    org = Organization.objects.create(name="ISBI", slug="isbi")
    clients = {}
    from django.contrib.auth import get_user_model

    for role in ("manager", "annotator", "reviewer"):
        user = get_user_model().objects.create_user(username=f"isbi-{role}", password="x")
        Membership.objects.create(organization=org, user=user, role=role)
        clients[role] = APIClient()
        clients[role].credentials(HTTP_AUTHORIZATION=f"Token {token_issue(user=user)[1]}")
    manager, annotator, reviewer = clients["manager"], clients["annotator"], clients["reviewer"]

    t0 = time.perf_counter()
    project = _ok(
        manager.post(
            "/api/v1/projects/",
            {
                "organization": org.id,
                "name": "ISBI membranes",
                "label_schema": [{"name": "membrane", "color": "#ff0000", "kinds": ["polygon", "mask"]}],
                "pipeline": [
                    {"name": "annotate", "role": "annotator"},
                    {"name": "review", "role": "reviewer", "reject_to": "annotate"},
                ],
                "prelabel": "project_model",
            },
            format="json",
        ),
        201,
    )
    pid = project["id"]
    for role in ("annotator", "reviewer"):  # annotators and reviewers work only on projects they belong to
        member = get_user_model().objects.get(username=f"isbi-{role}")
        _ok(manager.post(f"/api/v1/projects/{pid}/members/", {"user": member.id}, format="json"), 201)
    from django.core.files.uploadedfile import SimpleUploadedFile

    def upload(ids):
        files = [SimpleUploadedFile(f"{i}.png", _png(grays[i])) for i in ids]
        out = _ok(
            manager.post(f"/api/v1/projects/{pid}/images/upload/", {"files": files}, format="multipart"), 201
        )
        return out

    upload(train_ids)
    for _ in train_ids:
        task = _ok(annotator.post(f"/api/v1/projects/{pid}/next-task/?stage=annotate"))
        image = _ok(annotator.get(f"/api/v1/images/{task['image']}/"))
        i = int(Path(image["original_name"]).stem)
        polygons = mask_to_simplified_polygons(truths[i], min_iou=0.98)
        region = {"id": "membrane", "label": "membrane", "kind": "polygon", "polygons": polygons}
        current = _ok(annotator.get(f"/api/v1/tasks/{task['id']}/annotation/"))
        _ok(
            annotator.put(
                f"/api/v1/tasks/{task['id']}/annotation/",
                {"revision": current["current_revision"], "regions": [region]},
                format="json",
            )
        )
        _ok(annotator.post(f"/api/v1/tasks/{task['id']}/submit/"))
        _ok(reviewer.post(f"/api/v1/projects/{pid}/next-task/?stage=review"))
        _ok(reviewer.post(f"/api/v1/tasks/{task['id']}/accept/"))
    t_accept = time.perf_counter() - t0

    t1 = time.perf_counter()
    job = _ok(
        manager.post(
            f"/api/v1/projects/{pid}/models/train/",
            {"minutes": args.minutes, "epochs": 1000, "stuff_classes": ["membrane"], "seed": args.seed},
            format="json",
        ),
        202,
    )
    version = _ok(manager.get(f"/api/v1/models/{job['model']['id']}/"))
    t_train = time.perf_counter() - t1
    if version["status"] != "ready":
        raise SystemExit(f"training ended {version['status']}: {version['error']}")

    t2 = time.perf_counter()
    uploaded = upload(test_ids)
    images = uploaded["created"]
    by_name = {int(Path(im["original_name"]).stem): im["id"] for im in images}
    for i in test_ids:
        _ok(manager.post(f"/api/v1/images/{by_name[i]}/presegment/", {}, format="json"), 202)
    t_prelabel = time.perf_counter() - t2

    rows: dict[str, list[dict]] = {"project model": [], "classical backend": [], "adaptive threshold": []}
    effort: dict[str, list[dict]] = {"project model": [], "classical backend": []}
    names = {"project model": version["model_name"], "classical backend": "classical-grabcut"}
    for i in test_ids:
        preds = _ok(manager.get(f"/api/v1/predictions/?image={by_name[i]}&page_size=50"))["results"]
        accepted = mask_to_simplified_polygons(truths[i], min_iou=0.98)
        h, w = truths[i].shape
        for key, model_name in names.items():
            pred = next(p for p in preds if p["model_name"] == model_name and p["status"] == "ok")
            mask, polygons = _membrane(pred["regions"], h, w)
            rows[key].append(_scores(mask, truths[i]))
            effort[key].append(vertex_edits(polygons, accepted, height=h, width=w, tolerance=2.0))
        rows["adaptive threshold"].append(_scores(_adaptive(grays[i]), truths[i]))

    print(f"machine: {machine()}")
    print(f"load (uptime) at the end: {os.getloadavg()}")
    print(
        f"accepted {len(train_ids)} tasks through the API in {t_accept:.1f} s; train request "
        f"{t_train:.1f} s (budget {args.minutes} min, epochs run {version['config'].get('epochs_run')}, kept "
        f"epoch {version['config'].get('best_epoch')}, {version['parameters']} parameters, held-out tasks "
        f"{len(version['dataset']['heldout'])}); pre-labelling {len(test_ids)} images (model on upload + "
        f"classical presegment) {t_prelabel:.1f} s"
    )
    print(f"version {version['model_name']} promotion: {version['promotion']}")
    print(f"\nheld-out images {test_ids[0]}..{test_ids[-1]} (means of {len(test_ids)}):")
    print(f"{'':22s} {'pixel acc':>9s} {'Dice':>7s} {'IoU':>7s} {'BF1 2px':>8s}")
    for key, values in rows.items():
        m = {k: float(np.mean([v[k] for v in values])) for k in values[0]}
        note = "  (OpenCV reference, not through the API)" if key == "adaptive threshold" else ""
        print(
            f"{key:22s} {m['pixel_accuracy']:9.4f} {m['dice']:7.4f} {m['iou']:7.4f} {m['bf1_2px']:8.4f}{note}"
        )
    print("\nlabeler effort (vertices to move + add + delete to reach the accepted polygons, 2 px), totals:")
    totals = {}
    for key, values in effort.items():
        t = {k: int(sum(v[k] for v in values)) for k in values[0]}
        totals[key] = t["total"]
        print(
            f"{key:22s} total {t['total']:7d} = moves {t['moves']} + adds {t['adds']} + deletes {t['deletes']} "
            f"(pre-label vertices {t['prelabel_vertices']}, accepted {t['accepted_vertices']})"
        )
    saved = 1 - totals["project model"] / totals["classical backend"] if totals["classical backend"] else 0.0
    print(f"project model needs {saved:.1%} fewer vertex edits than the classical backend")


if __name__ == "__main__":
    main()
