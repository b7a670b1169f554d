"""CPU per request of the three requests `vs_label_studio.py` times, in-process: the whole Django stack
(every middleware, URL resolution, DRF's dispatch, the view, rendering) called as the development
server calls it (the WSGI handler, one new SQLite connection per request as in its one-thread-per-request
server), on the embedded SQLite default with the same 5,000 tasks as that benchmark.

    GET /api/v1/tasks/?project=P&page=K&page_size=50      list
    GET /api/v1/tasks/{id}/annotation/                     read
    PUT /api/v1/tasks/{id}/annotation/                     update (the revision read first, not timed)

Printed: per request, the p50 of `time.process_time` (CPU of this process) and of wall time, in ms.
``--compare OLD_ROOT`` runs the same measurement on another checkout (e.g. ``git archive`` of main) in
alternation with this one, in separate processes, so that both see the machine's load alike and only
their ratio means something on a shared machine. ``--profile list|read|update`` prints cProfile's top
functions instead.

Usage: .venv/bin/python benchmarks/request_cpu.py [--tasks 5000] [--calls 200] [--compare /tmp/old]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _seed(root: Path, var_dir: Path, tasks: int) -> dict:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from vs_label_studio import LH_SEED  # the same tasks as the benchmark beside Label Studio

    env = {**os.environ, "LABELHUB_VAR_DIR": str(var_dir), "PYTHONPATH": str(root),
           "DJANGO_SETTINGS_MODULE": "labelhub.settings"}  # fmt: skip
    for name in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"):
        env.pop(name, None)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=root, env=env, check=True)
    out = subprocess.run([sys.executable, "-c", LH_SEED, str(tasks)], cwd=root, env=env, check=True,
                         capture_output=True, text=True)  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def _measure(setup: dict, calls: int, profile: str | None) -> dict:
    """In the child process: django set up on the seeded database; the three requests `calls` times."""
    import django

    django.setup()
    from django.core.wsgi import get_wsgi_application

    app = get_wsgi_application()
    auth = f"Token {setup['token']}"

    def call(method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        path, _, query = path.partition("?")
        environ = {
            "REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query, "SCRIPT_NAME": "",
            "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": "127.0.0.1:8000", "HTTP_AUTHORIZATION": auth,
            "HTTP_ACCEPT_ENCODING": "identity", "HTTP_USER_AGENT": "Python-urllib/3.11",
            "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(body)),
            "wsgi.input": io.BytesIO(body), "wsgi.errors": sys.stderr, "wsgi.url_scheme": "http",
            "wsgi.version": (1, 0), "wsgi.multithread": True, "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }  # fmt: skip
        status: list[str] = []
        chunks = app(environ, lambda s, h, exc_info=None: status.append(s))
        data = b"".join(chunks)
        if hasattr(chunks, "close"):
            chunks.close()  # request_finished: the connection closes, as after each dev-server request
        code = int(status[0].split()[0])
        if code >= 400:
            raise SystemExit(f"{method} {path}: {status[0]} {data[:300]!r}")
        return code, data

    rng = random.Random(0)
    ids, pid = setup["tasks"], setup["project"]
    pages = max(1, len(ids) // 50)
    polygon = [[10.0, 10.0], [40.0, 12.0], [42.0, 45.0], [12.0, 40.0]]

    def op_list():
        return lambda: call("GET", f"/api/v1/tasks/?project={pid}&page={rng.randint(1, pages)}&page_size=50")

    def op_read():
        return lambda: call("GET", f"/api/v1/tasks/{rng.choice(ids)}/annotation/")

    fresh = iter(rng.sample(ids, len(ids)))  # each update on another task: prepared ones never go stale

    def op_update():
        task_id = next(fresh)
        current = json.loads(call("GET", f"/api/v1/tasks/{task_id}/annotation/")[1])
        region = {"id": f"r{task_id}", "label": "cat", "kind": "polygon", "source": "human",
                  "polygons": [{"exterior": [[x + rng.random(), y] for x, y in polygon], "holes": []}]}
        body = json.dumps({"revision": current["revision"], "regions": [region]}).encode()
        return lambda: call("PUT", f"/api/v1/tasks/{task_id}/annotation/", body)

    ops = {"list": op_list, "read": op_read, "update": op_update}
    for make in ops.values():  # warm: imports, URL resolver, caches
        for _ in range(10):
            make()()
    if profile:
        import cProfile
        import pstats

        prepared = [ops[profile]() for _ in range(calls)]
        profiler = cProfile.Profile()
        profiler.enable()
        for run in prepared:
            run()
        profiler.disable()
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(70)
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(40)
        return {}
    figures: dict = {}
    for name, make in ops.items():
        cpu, wall = [], []
        for _ in range(calls):
            run = make()
            c0, w0 = time.process_time(), time.perf_counter()
            run()
            cpu.append((time.process_time() - c0) * 1000)
            wall.append((time.perf_counter() - w0) * 1000)
        figures[name] = {"cpu_p50": statistics.median(cpu), "wall_p50": statistics.median(wall)}
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=5000)
    parser.add_argument("--calls", type=int, default=200, help="requests of each kind per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="alternations with --compare")
    parser.add_argument("--compare", type=Path, help="another checkout to measure in alternation (before)")
    parser.add_argument("--profile", choices=["list", "read", "update"])
    parser.add_argument("--var", type=Path, help="keep the seeded databases here and reuse them (default: a "
                        "temporary folder, removed at the end)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:  # a measurement in this process, on the checkout it was started in
        setup = json.loads(args.child)
        print(json.dumps(_measure(setup, args.calls, args.profile)))
        return

    roots = {"this": ROOT} | ({"before": args.compare.resolve()} if args.compare else {})
    work = args.var or Path(tempfile.mkdtemp(prefix="request-cpu-"))
    try:
        _run(args, roots, work)
    finally:
        if not args.var:
            shutil.rmtree(work, ignore_errors=True)


def _run(args, roots: dict, work: Path) -> None:
    setups = {}
    for name, root in roots.items():
        saved = work / name / f"setup-{args.tasks}.json"
        if not saved.exists():
            shutil.rmtree(work / name, ignore_errors=True)
            (work / name).mkdir(parents=True)
            saved.write_text(json.dumps(_seed(root, work / name, args.tasks)))
        setups[name] = json.loads(saved.read_text())
    results: dict = {name: {} for name in roots}
    for _ in range(1 if args.profile else args.rounds):
        for name, root in reversed(roots.items()):
            env = {**os.environ, "LABELHUB_VAR_DIR": str(work / name), "PYTHONPATH": str(root),
                   "DJANGO_SETTINGS_MODULE": "labelhub.settings", "LABELHUB_THROTTLE_WRITE": ""}  # fmt: skip
            for var in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"):
                env.pop(var, None)
            child = [sys.executable, str(Path(__file__).resolve()), "--calls", str(args.calls),
                     "--child", json.dumps(setups[name])] + (["--profile", args.profile] if args.profile else [])  # fmt: skip
            out = subprocess.run(child, cwd=root, env=env, check=True, stdout=subprocess.PIPE, text=True)
            for op, figure in json.loads(out.stdout.strip().splitlines()[-1]).items():
                results[name].setdefault(op, []).append(figure)
    if args.profile:
        return
    load = os.getloadavg()
    print(f"{args.tasks} tasks, {args.calls} requests per op x {args.rounds} rounds; load "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; ms per request, median of the rounds' p50s")  # fmt: skip
    for op in ("list", "read", "update"):
        row = []
        for name in roots:
            cpu = statistics.median(f["cpu_p50"] for f in results[name][op])
            wall = statistics.median(f["wall_p50"] for f in results[name][op])
            row.append(f"{name}: cpu {cpu:6.2f} wall {wall:6.2f}")
        print(f"{op:<7} " + "   ".join(row))


if __name__ == "__main__":
    main()
