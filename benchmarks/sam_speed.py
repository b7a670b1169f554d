"""SAM speed: image-encoder throughput and prompt-decoder latency per model type and precision.

Random seeded weights (speed does not depend on weight values). Auto-detects CUDA; on GPU reports
``torch.cuda.max_memory_allocated`` per configuration, on CPU the process peak RSS.

Configurations: ``stock`` (fp32, segment_anything manual attention), ``sdpa`` (fp32 + fused SDPA),
``bf16`` (bf16 autocast + SDPA), ``compile`` (bf16 + SDPA + torch.compile; only with --compile).

Usage: ``python benchmarks/sam_speed.py --models vit_b,vit_h --configs stock,sdpa,bf16 \
--batch 1 --iters 3 --warmup 1 --prompts 20``
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from _sam_common import machine, peak_rss_mib, synthetic_image

from workers.sam.predictor import SamBackend
from workers.sam.registry import load_sam

CONFIGS = {
    "stock": {"optimized": False, "dtype": "fp32"},
    "sdpa": {"optimized": True, "dtype": "fp32"},
    "bf16": {"optimized": True, "dtype": "bf16"},
    "compile": {"optimized": True, "dtype": "bf16", "compile": True},
}


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def bench(model_type: str, config: str, args: argparse.Namespace) -> None:
    import torch

    loaded = load_sam(model_type, None, seed=0)
    backend = SamBackend(loaded, max_batch=args.batch, **CONFIGS[config])
    dev = loaded.device
    images = [synthetic_image(480, 640, seed=i) for i in range(args.batch)]
    if dev.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    for _ in range(args.warmup):
        backend.embed(images)
    _sync(dev)
    t0 = time.perf_counter()
    for _ in range(args.iters):
        embs = backend.embed(images)
    _sync(dev)
    enc_s = time.perf_counter() - t0
    ips = args.iters * args.batch / enc_s
    emb = embs[0]
    h, w = emb.original_size
    for _ in range(3):  # warm-up: first calls pay one-off allocations / kernel selection
        backend.predict(emb, points=[[w / 2, h / 2]], point_labels=[1])
    calls = backend.encoder_calls
    rng = np.random.default_rng(0)
    prompts = []
    for i in range(args.prompts):
        n = 1 + i % 5
        prompts.append((rng.uniform([0, 0], [w, h], size=(n, 2)), np.ones(n, int)))
    # (a) the full interactive step: features fp16->fp32 tensor, prompt encoder + mask decoder,
    #     upscale of the chosen logits to the original size, threshold, numpy conversion
    lat, prev = [], None
    for pts, lab in prompts:
        _sync(dev)
        t = time.perf_counter()
        res = backend.predict(emb, points=pts, point_labels=lab, mask_input=prev)
        _sync(dev)
        lat.append(time.perf_counter() - t)
        prev = res.low_res_logits
    assert backend.encoder_calls == calls, "predict must not run the encoder"
    # (b) prompt encoder + mask decoder alone, on a ready feature tensor (no upscale, no copies)
    dec = []
    with torch.inference_mode():
        feats = backend.features(emb)
        for pts, lab in prompts:
            coords = torch.as_tensor(
                backend.transform.apply_coords(pts, emb.original_size), dtype=torch.float, device=dev
            )[None]
            labels = torch.as_tensor(lab, dtype=torch.int, device=dev)[None]
            _sync(dev)
            t = time.perf_counter()
            backend.decode(feats, emb, coords, labels, None, None, False)
            _sync(dev)
            dec.append(time.perf_counter() - t)
    mem = (
        f"peak GPU mem {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB"
        if dev.startswith("cuda")
        else f"peak RSS {peak_rss_mib() / 1024:.2f} GiB (process, cumulative)"
    )
    print(
        f"{model_type:6s} {config:8s} batch {args.batch}: encoder {ips:.4f} img/s "
        f"({1000 / ips:.0f} ms/img); predict() median {1000 * np.median(lat):.1f} ms/prompt "
        f"(p90 {1000 * np.percentile(lat, 90):.1f}); decoder alone median {1000 * np.median(dec):.1f} ms "
        f"(p90 {1000 * np.percentile(dec, 90):.1f}); {mem}; load avg {_load()}",
        flush=True,
    )
    del backend, loaded
    if dev.startswith("cuda"):
        torch.cuda.empty_cache()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="vit_b")
    ap.add_argument("--configs", default="stock,sdpa,bf16")
    ap.add_argument("--compile", action="store_true", help="also run the torch.compile config")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--prompts", type=int, default=20)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    args = ap.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    configs = [c for c in args.configs.split(",") if c]
    if args.compile and "compile" not in configs:
        configs.append("compile")
    print(f"machine: {machine()}, torch threads {torch.get_num_threads()}, load avg {_load()}")
    print(f"iters {args.iters} (+{args.warmup} warm-up), 640x480 synthetic images, {args.prompts} prompts")
    for mt in args.models.split(","):
        for cfg in configs:
            bench(mt, cfg, args)


if __name__ == "__main__":
    main()
