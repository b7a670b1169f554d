"""A click decoded on ONE CPU core: ONNX Runtime vs the PyTorch eager decoder, in one run.

SAM ``--model`` (vit_b by default; the decoder is the same size for every model) with seeded random
weights and a seeded fp16 embedding of a 480x640 image: the time is real, the masks mean nothing,
only their agreement between the two decoders is reported (IoU of the full-size masks).

Each click goes through ``SamBackend.predict`` end to end (prompt checks, coordinate transform,
decoder, token choice, upscaling to the image, threshold), alternating the two decoders so both see
the same machine load: one positive click (multimask) and, every other click, a follow-up with a
second point and the previous low-res logits as ``mask_input``. ``torch.set_num_threads(1)`` and
``intra_op_num_threads=1``. Printed: wall time, and this thread's CPU time (both decoders compute on
the calling thread at one thread: the one-core cost, which other jobs on a shared machine inflate less).

Usage: ``.venv/bin/python benchmarks/onnx_decode.py --clicks 200``
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
from _sam_common import machine


def main() -> None:
    import torch

    from workers.sam.interface import Embedding, input_size_for
    from workers.sam.predictor import SamBackend
    from workers.sam.registry import load_sam

    p = argparse.ArgumentParser()
    p.add_argument("--model", default="vit_b")
    p.add_argument("--clicks", type=int, default=200)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    loaded = load_sam(args.model, None, device="cpu", seed=0)
    with tempfile.TemporaryDirectory() as onnx_dir:
        t = time.perf_counter()
        onnx = SamBackend(
            loaded, optimized=False, decoder="onnx", onnx_dir=onnx_dir, onnx_threads=args.threads
        )
        onnx.warm_up()
        export_s = time.perf_counter() - t
        torch_b = SamBackend(loaded, optimized=False, decoder="torch")
        h, w = 480, 640
        data = np.random.default_rng(0).normal(0, 1, (256, 64, 64)).astype(np.float16)
        emb = Embedding(torch_b.model_name, torch_b.checkpoint_sha256, (h, w), input_size_for((h, w)), data)
        rng = np.random.default_rng(1)
        times: dict[str, list[float]] = {"onnx": [], "torch": []}
        cpu: dict[str, list[float]] = {"onnx": [], "torch": []}  # this thread's CPU time: one core's work
        ious: list[float] = []
        for i in range(args.clicks + 5):
            pt = [float(rng.uniform(0, w)), float(rng.uniform(0, h))]
            pt2 = [float(rng.uniform(0, w)), float(rng.uniform(0, h))]
            masks = {}
            order = (("onnx", onnx), ("torch", torch_b)) if i % 2 else (("torch", torch_b), ("onnx", onnx))
            for name, backend in order:
                t, c = time.perf_counter(), time.thread_time()
                res = backend.predict(emb, points=[pt], point_labels=[1])
                dt, dc = time.perf_counter() - t, time.thread_time() - c
                if i % 2:  # a follow-up click (same points for both decoders) refining the first one
                    t, c = time.perf_counter(), time.thread_time()
                    res = backend.predict(
                        emb, points=[pt, pt2], point_labels=[1, 0], mask_input=res.low_res_logits
                    )
                    dt, dc = time.perf_counter() - t, time.thread_time() - c
                if i >= 5:
                    times[name].append(dt)
                    cpu[name].append(dc)
                masks[name] = res.mask
            union = (masks["onnx"] | masks["torch"]).sum()
            if i >= 5 and union:
                ious.append(float((masks["onnx"] & masks["torch"]).sum() / union))
    print(f"machine: {machine()}, load average {os.getloadavg()[0]:.2f} (start of run)")
    print(
        f"SAM {args.model} decoder, random weights, {args.threads} thread(s), {args.clicks} clicks per decoder"
    )
    print(f"ONNX export + session: {export_s:.1f} s (once per model and checkpoint; cached)")
    for name, values in times.items():
        a, c = np.asarray(values) * 1000, np.asarray(cpu[name]) * 1000
        print(
            f"{name:5s}  wall p50 {np.percentile(a, 50):7.2f} ms  p95 {np.percentile(a, 95):7.2f} ms"
            f"  | thread CPU p50 {np.percentile(c, 50):7.2f} ms  p95 {np.percentile(c, 95):7.2f} ms"
        )
    ratio = np.percentile(times["torch"], 50) / np.percentile(times["onnx"], 50)
    ratio_cpu = np.percentile(cpu["torch"], 50) / np.percentile(cpu["onnx"], 50)
    print(f"torch / onnx p50: {ratio:.2f}x wall, {ratio_cpu:.2f}x CPU")
    print(f"mask IoU onnx vs torch: min {min(ious):.4f}  mean {np.mean(ious):.4f} over {len(ious)} clicks")
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
