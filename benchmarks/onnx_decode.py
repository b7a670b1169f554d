"""A click decoded on ONE CPU core: ONNX Runtime vs the PyTorch eager decoder, in one run.

SAM ``--model`` (vit_b by default; the decoder is the same size for every model) with seeded random
weights and a seeded fp16 embedding of a 480x640 image: the time is real, the masks mean nothing,
only their agreement between the two decoders is reported (IoU of the full-size masks).

Each click goes through ``SamBackend.predict`` end to end (prompt checks, coordinate transform,
decoder, token choice, upscaling to the image, threshold), alternating the two decoders so both see
the same machine load: one positive click (multimask) and, every other click, a follow-up with a
second point and the previous low-res logits as ``mask_input``. ``torch.set_num_threads(1)`` and
``intra_op_num_threads=1``.

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

    from workers.sam.backend import Embedding, input_size_for
    from workers.sam.registry import load_sam
    from workers.sam.sam_backend import SamBackend

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
        ious: list[float] = []
        for i in range(args.clicks + 5):
            pt = [float(rng.uniform(0, w)), float(rng.uniform(0, h))]
            prompts = [{"points": [pt], "point_labels": [1]}]
            masks = {}
            for name, backend in (
                (("onnx", onnx), ("torch", torch_b)) if i % 2 else (("torch", torch_b), ("onnx", onnx))
            ):
                t = time.perf_counter()
                res = backend.predict(emb, **prompts[0])
                dt = time.perf_counter() - t
                if i % 2:  # a follow-up click refining the first one
                    t = time.perf_counter()
                    pt2 = [float(rng.uniform(0, w)), float(rng.uniform(0, h))]
                    res = backend.predict(
                        emb, points=[pt, pt2], point_labels=[1, 0], mask_input=res.low_res_logits
                    )
                    dt = time.perf_counter() - t
                if i >= 5:
                    times[name].append(dt)
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
        a = np.asarray(values) * 1000
        print(
            f"{name:5s}  p50 {np.percentile(a, 50):7.2f} ms  p95 {np.percentile(a, 95):7.2f} ms  mean {a.mean():7.2f} ms"
        )
    ratio = np.percentile(times["torch"], 50) / np.percentile(times["onnx"], 50)
    print(f"torch / onnx p50: {ratio:.2f}x")
    print(f"mask IoU onnx vs torch: min {min(ious):.4f}  mean {np.mean(ious):.4f} over {len(ious)} clicks")
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
