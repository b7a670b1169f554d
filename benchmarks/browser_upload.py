"""Uploading images through the browser app, in real headless Chromium: the time from the moment a
manager hands N files to the project's drop zone until the app lists every one as uploaded (each file
its own request with its own progress bar, three in flight), and until the project's image count shows N.

Runs the real Django app in this process behind Django's live-server thread (its own database: the
embedded SQLite by default, or ``--database-url postgres://...``; tasks eager; no pre-segmentation, so
only the upload path is timed; the upload throttle off, see below), creates an owner and an empty
project, writes N distinct JPEGs made from the GrabCut photographs (``$LABELHUB_SHARED_DATA/grabcut``;
each file one of the 50 photographs, re-encoded with a different quality or mirrored, so none is a
duplicate) into a temp folder, and gives them to the drop zone's file input (as a file picker does).

The default upload throttle (``LABELHUB_THROTTLE_UPLOAD``, 60 requests a minute per user) would make
the app wait ``Retry-After`` past the 60th file; ``--throttle`` sets it (default: off) to see that.

Usage: ``python benchmarks/browser_upload.py --files 200``
       ``python benchmarks/browser_upload.py --files 200 --database-url postgres://postgres@127.0.0.1:5432/bench``
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from pathlib import Path

from _sam_common import REPO, machine, shared_data_dir

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]  # fmt: skip


def _configure(args: argparse.Namespace, var_dir: str) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "labelhub.settings")
    os.environ["LABELHUB_VAR_DIR"] = var_dir
    os.environ["DATABASE_URL"] = args.database_url or f"sqlite:///{Path(var_dir) / 'bench.sqlite3'}"
    for key in ("REDIS_URL", "CELERY_BROKER_URL", "LABELHUB_MEDIA_ROOT", "LABELHUB_SAM_CHECKPOINT",
                "LABELHUB_SAM_RANDOM_SEED"):  # fmt: skip
        os.environ.pop(key, None)
    os.environ["LABELHUB_TASKS_EAGER"] = "1"
    os.environ["LABELHUB_PRESEGMENT_ON_UPLOAD"] = "false"
    os.environ["LABELHUB_THROTTLE_UPLOAD"] = args.throttle
    os.environ["LABELHUB_THROTTLE_WRITE"] = ""
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # Playwright's sync API beside ORM calls
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))


def _files(n: int, folder: Path) -> list[Path]:
    from PIL import Image, ImageOps

    photos = sorted((shared_data_dir() / "grabcut" / "images").glob("*.jpg"))
    if not photos:
        raise SystemExit("GrabCut data not found (set LABELHUB_SHARED_DATA or create ../shared/data)")
    out = []
    for i in range(n):
        image = Image.open(photos[i % len(photos)]).convert("RGB")
        variant = i // len(photos)
        if variant % 2:
            image = ImageOps.mirror(image)
        buf = io.BytesIO()
        image.save(buf, format="JPEG", quality=90 - 5 * (variant // 2))
        path = folder / f"{i:04d}-{photos[i % len(photos)].name}"
        path.write_bytes(buf.getvalue())
        out.append(path)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--database-url", default="")
    ap.add_argument("--throttle", default="", help="LABELHUB_THROTTLE_UPLOAD (default: off)")
    args = ap.parse_args()
    assert (REPO / "labelhub/app/static/app/vendor/preact/preact.module.js").exists(), (
        "run `make vendor` first"
    )
    var_dir = tempfile.mkdtemp(prefix="lh-upload-")
    _configure(args, var_dir)
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test.testcases import LiveServerThread, _StaticFilesHandler
    from playwright.sync_api import sync_playwright

    from labelhub.accounts.models import Membership, Organization, Role
    from labelhub.projects.models import Project

    call_command("migrate", verbosity=0)
    user = get_user_model().objects.create_user(username="bench-owner", password="pw-bench-owner")
    org = Organization.objects.create(name="Bench upload", slug=f"bench-upload-{os.getpid()}")
    Membership.objects.create(organization=org, user=user, role=Role.OWNER)
    project = Project.objects.create(organization=org, name=f"Upload {os.getpid()}", created_by=user)
    files = _files(args.files, Path(var_dir))
    total = sum(p.stat().st_size for p in files)

    server = LiveServerThread("127.0.0.1", _StaticFilesHandler, port=0)
    server.daemon = True
    server.start()
    server.is_ready.wait()
    if server.error:
        raise server.error
    base = f"http://127.0.0.1:{server.port}"
    print(f"machine: {machine()}")
    print(f"load average at start: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print(f"database: {'PostgreSQL' if args.database_url else 'SQLite (embedded default)'}")
    print(f"files: {len(files)} JPEGs, {total / 2**20:.1f} MiB, mean {total / len(files) / 1024:.0f} KiB")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        print(f"browser: chromium {browser.version}, headless")
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(f"{base}/app/login/")
        page.fill("#id_username", "bench-owner")
        page.fill("#id_password", "pw-bench-owner")
        page.click("button[type=submit]")
        page.wait_for_selector("body[data-ready=queue]")
        page.goto(f"{base}/app/#/project/{project.id}")
        page.wait_for_selector(".empty-project")
        n = len(files)
        start = time.perf_counter()
        page.set_input_files(".dropzone input[type=file]", [str(p) for p in files])
        page.wait_for_selector(f".upload-summary:has-text('{n} uploaded')", timeout=1_800_000)
        listed = time.perf_counter() - start
        page.wait_for_selector(f".project-home .muted:has-text('{n} images')", timeout=60_000)
        counted = time.perf_counter() - start
        failed = page.locator(".upload-file[data-status=error]").count()
        browser.close()
    stored = project.images.count()
    print(f"upload of {n} files until all listed as uploaded: {listed:.1f} s ({n / listed:.1f} files/s, "
          f"{total / 2**20 / listed:.1f} MiB/s); until the project shows {n} images: {counted:.1f} s")  # fmt: skip
    print(f"failed: {failed}; stored: {stored}")
    print(f"load average at end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
