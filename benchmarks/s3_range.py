"""A 1 KiB range request on a 256 MiB export stored on S3, through the API under gunicorn (one sync
worker), in both download modes, against a real S3 server (moto in server mode) started here.

    .venv/bin/python benchmarks/s3_range.py [--size-mib 256] [--repeat 5]

Prints, per mode, the wall time of the whole client flow (API answer, and for `redirect` the presigned
GET to S3 that follows it, without the API token as browsers and curl do) and the gunicorn worker's RSS
before and after. For reference it also times what the API did before (django-storages' S3 file:
`open().seek().read(1024)`, which downloads the whole object first) in this process.
Target (issue 17): under 0.5 s and no growth of the API process's memory.
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
BUCKET = "labelhub-bench"
KEY = "exports/bench/export.zip"

SETUP = """
from django.contrib.auth import get_user_model
from labelhub.accounts.auth import token_issue
from labelhub.accounts.models import Membership, Organization, Role
from labelhub.datasets.models import Export, ExportStatus
from labelhub.projects.models import Project
user = get_user_model().objects.create_user(username="bench", password="bench-password")
org = Organization.objects.create(name="Bench", slug="bench")
Membership.objects.create(organization=org, user=user, role=Role.OWNER)
project = Project.objects.create(organization=org, name="bench", label_schema=[], created_by=user)
export = Export.objects.create(project=project, format="coco", status=ExportStatus.DONE, file="{key}",
                               size_bytes={size}, sha256="0" * 64, created_by=user)
print(export.id, token_issue(user=user)[1])
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, proc: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not come up") from None
            time.sleep(0.2)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def get(url: str, headers: dict, *, follow: bool) -> tuple[int, bytes]:
    """One GET; a 302 is followed by hand, without the API's Authorization header."""
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(urllib.request.Request(url, headers=headers), timeout=120) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        if exc.code == 302 and follow:
            return get(exc.headers["Location"], {"Range": headers["Range"]}, follow=False)
        return exc.code, exc.read()


def mib(n: int) -> float:
    return n / 2**20


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    size = args.size_mib * 2**20
    work = Path(tempfile.mkdtemp(prefix="lh-s3-bench-"))
    moto_port = free_port()
    endpoint = f"http://127.0.0.1:{moto_port}"
    procs: list[subprocess.Popen] = []
    moto = subprocess.Popen(
        [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(moto_port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    procs.append(moto)
    try:
        wait_for(endpoint + "/moto-api/", moto)
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("LABELHUB_", "CELERY_", "DATABASE_URL"))
        }
        env.update(
            LABELHUB_VAR_DIR=str(work / "var"),
            LABELHUB_SECRET_KEY="bench",
            LABELHUB_TASKS_EAGER="1",
            LABELHUB_STORAGE="s3",
            LABELHUB_S3_BUCKET=BUCKET,
            LABELHUB_S3_ENDPOINT_URL=endpoint,
            LABELHUB_S3_REGION="us-east-1",
            LABELHUB_S3_ACCESS_KEY="bench",
            LABELHUB_S3_SECRET_KEY="bench",
            AWS_EC2_METADATA_DISABLED="true",
        )
        env.pop("REDIS_URL", None)
        import boto3

        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
        )
        s3.create_bucket(Bucket=BUCKET)
        blob = work / "export.zip"
        with open(blob, "wb") as fh:
            chunk = os.urandom(2**20)
            for _ in range(args.size_mib):
                fh.write(chunk)
        s3.upload_file(str(blob), BUCKET, KEY)
        blob.unlink()
        manage = [sys.executable, str(REPO / "manage.py")]
        subprocess.run(manage + ["migrate", "--noinput"], env=env, cwd=REPO, check=True, capture_output=True)
        out = subprocess.run(
            manage + ["shell", "-c", SETUP.replace("{key}", KEY).replace("{size}", str(size))],
            env=env,
            cwd=REPO,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()
        export_id, token = out[-2], out[-1]

        print(f"machine: {os.cpu_count()} CPU cores {platform.machine()}, load {os.getloadavg()}")
        print(f"export: {args.size_mib} MiB on S3 (moto server); request: Range bytes=1000-2023 (1 KiB)")
        print(
            f"{'mode':<10} {'median s':>9} {'max s':>7} {'worker RSS before MiB':>22} {'after MiB':>10} {'bytes':>6}"
        )
        for mode in ("proxy", "redirect"):
            port = free_port()
            api = subprocess.Popen(
                [
                    str(BIN / "gunicorn"),
                    "labelhub.wsgi",
                    "-w",
                    "1",
                    "-b",
                    f"127.0.0.1:{port}",
                    "--timeout",
                    "300",
                ],
                env={**env, "LABELHUB_S3_DOWNLOAD": mode},
                cwd=REPO,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            procs.append(api)
            base = f"http://127.0.0.1:{port}"
            wait_for(base + "/healthz/live/", api)
            (worker,) = psutil.Process(api.pid).children()
            url = f"{base}/api/v1/exports/{export_id}/download/"
            headers = {"Authorization": f"Token {token}", "Range": "bytes=1000-2023"}
            status, body = get(url, headers, follow=True)  # warm-up: imports, first connection
            assert status == 206 and len(body) == 1024, (status, len(body))
            before = worker.memory_info().rss
            times = []
            for _ in range(args.repeat):
                started = time.perf_counter()
                status, body = get(url, headers, follow=True)
                times.append(time.perf_counter() - started)
                assert status == 206 and len(body) == 1024, (status, len(body))
            after = worker.memory_info().rss
            print(
                f"{mode:<10} {statistics.median(times):>9.3f} {max(times):>7.3f} {mib(before):>22.1f} "
                f"{mib(after):>10.1f} {len(body):>6}"
            )
            api.terminate()
            api.wait(20)

        # What the API did before: django-storages' S3 file reads the whole object to seek.
        os.environ.update(env)
        os.environ["DJANGO_SETTINGS_MODULE"] = "labelhub.settings"
        sys.path.insert(0, str(REPO))
        import django

        django.setup()
        from django.core.files.storage import default_storage

        me = psutil.Process()
        before = me.memory_info().rss
        started = time.perf_counter()
        with default_storage.open(KEY, "rb") as fh:
            fh.seek(1000)
            assert len(fh.read(1024)) == 1024
            elapsed = time.perf_counter() - started
            after = me.memory_info().rss
        print(
            f"{'before':<10} {elapsed:>9.3f} {'':>7} {mib(before):>22.1f} {mib(after):>10.1f}   (storage.open().seek().read(), once)"
        )
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(20)


if __name__ == "__main__":
    main()
