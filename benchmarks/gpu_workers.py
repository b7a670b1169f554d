"""Pre-segmentation throughput with N GPU workers on one broker, N = 1 .. 16.

    .venv/bin/python benchmarks/gpu_workers.py [--workers 1,2,4,8,16] [--ms-per-image 40] [--batches-per-worker 6]

Starts its own redis-server (the broker) on a free port and, for each N, N real Celery worker processes
started as deploy/entrypoint.sh starts a GPU worker (`-Q gpu --pool solo`, one process per GPU) with
LabelHub's Celery settings (acks_late, prefetch multiplier 1, JSON). The task is a stand-in for
`labelhub.predictions.gpu.presegment_images` with the same name, queue and message shape (a batch of
LABELHUB_SAM_BATCH_SIZE image ids) whose compute is a sleep of `ms-per-image` per image: it measures
what the deployment adds (broker, dispatch, acknowledgement), not a GPU. Prints images/s per N and the
efficiency: throughput / (N x one worker's throughput).
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from celery import Celery

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
os.environ.setdefault("LABELHUB_VAR_DIR", "/tmp/labelhub-bench-var")
from labelhub import settings as lh  # noqa: E402 - LabelHub's Celery settings, read from the environment

BROKER = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/0")
app = Celery("gpu_workers_bench", broker=BROKER)
app.conf.update(
    task_acks_late=lh.CELERY_TASK_ACKS_LATE,
    task_reject_on_worker_lost=lh.CELERY_TASK_REJECT_ON_WORKER_LOST,
    worker_prefetch_multiplier=lh.CELERY_WORKER_PREFETCH_MULTIPLIER,
    task_serializer=lh.CELERY_TASK_SERIALIZER,
    accept_content=lh.CELERY_ACCEPT_CONTENT,
    task_routes={"labelhub.*.gpu.*": {"queue": "gpu"}},
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
)
MS_PER_IMAGE = float(os.environ.get("BENCH_MS_PER_IMAGE", "40"))


@app.task(name="labelhub.predictions.gpu.presegment_images", acks_late=True)
def presegment_images(image_ids: list[int]) -> None:
    time.sleep(MS_PER_IMAGE * len(image_ids) / 1000)  # stand-in for the batched encoder and decoder
    with app.connection_for_write() as conn:
        conn.default_channel.client.incrby("bench:done", len(image_ids))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_workers(n: int, env: dict) -> list[subprocess.Popen]:
    return [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "--workdir",
                str(HERE),
                "-A",
                "gpu_workers",
                "worker",
                "-Q",
                "gpu",
                "--pool",
                "solo",
                "-n",
                f"gpu{i}@bench",
                "-l",
                "WARNING",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for i in range(n)
    ]


def wait_ready(n: int, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        replies = app.control.ping(timeout=1.0) or []
        if len(replies) >= n:
            return
    raise RuntimeError(f"only {len(replies)} of {n} workers answered")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", default="1,2,4,8,16")
    parser.add_argument("--ms-per-image", type=float, default=40.0)
    parser.add_argument("--batches-per-worker", type=int, default=6)
    args = parser.parse_args()
    batch = max(1, lh.LABELHUB_SAM_BATCH_SIZE)
    port = free_port()
    redis = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--maxmemory-policy",
            "noeviction",
        ],
        stdout=subprocess.DEVNULL,
    )
    broker = f"redis://127.0.0.1:{port}/0"
    app.conf.broker_url = broker
    env = {**os.environ, "BENCH_BROKER_URL": broker, "BENCH_MS_PER_IMAGE": str(args.ms_per_image)}
    print(f"machine: {os.cpu_count()} CPU cores {platform.machine()}; load at start {os.getloadavg()}")
    print(f"stand-in compute {args.ms_per_image:g} ms/image, {batch} images per message, one broker")
    print(f"{'N':>3} {'images':>7} {'seconds':>8} {'images/s':>9} {'efficiency':>10}   load")
    single = None
    try:
        time.sleep(0.5)
        for n in [int(x) for x in args.workers.split(",")]:
            workers = start_workers(n, env)
            try:
                wait_ready(n)
                with app.connection_for_write() as conn:
                    client = conn.default_channel.client
                    client.set("bench:done", 0)
                    messages = n * args.batches_per_worker
                    total = messages * batch
                    started = time.perf_counter()
                    for m in range(messages):
                        presegment_images.delay(list(range(m * batch, (m + 1) * batch)))
                    while int(client.get("bench:done") or 0) < total:
                        time.sleep(0.005)
                    elapsed = time.perf_counter() - started
                rate = total / elapsed
                single = single or rate / n
                print(
                    f"{n:>3} {total:>7} {elapsed:>8.2f} {rate:>9.1f} {rate / (n * single):>10.2f}   "
                    f"{os.getloadavg()[0]:.1f}"
                )
            finally:
                for w in workers:
                    w.send_signal(signal.SIGTERM)
                for w in workers:
                    w.wait(60)
        print(f"ideal one worker: {1000 / args.ms_per_image:.1f} images/s")
    finally:
        redis.terminate()
        redis.wait(10)


if __name__ == "__main__":
    main()
