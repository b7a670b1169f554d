"""Segment Anything on a GPU: encoder throughput, agreement with stock fp32, server-side click
decoding and "everything" mode, optimized vs stock, in one run. No Django: only ``workers/sam``,
``segment_anything`` and PyTorch (+ numpy, OpenCV, torchvision, which segment_anything needs).

Seeded random weights (``load_sam(..., seed=0)``): the speed and the agreement between the two paths
are real, the masks mean nothing (never report their quality). Every line names the model, the card
and the torch version.

Per model (``--models vit_b,vit_h``):

* encoder images/s on a ready device batch (preprocessing excluded): stock fp32 at batch 1 and
  optimized (fused attention without the dense bias, bf16 weights, ``--compile``: torch.compile at a
  fixed batch) at ``--batch``; and end to end through ``SamBackend.embed`` from uint8 host images
  (on-device resize/normalisation, fp16 features back on the host);
* agreement on ``--agree`` images: embedding cosine (optimized vs stock fp32, same input tensor) and
  mask IoU of the stock decoder's masks on the two embeddings for a 4x4 grid of clicks;
* click decode on the device (``SamBackend.predict``, PyTorch decoder): p50 / p95 ms;
* everything mode (``SamBackend.automatic``, 32x32 grid) seconds per image, optimized vs stock.

GPU command (the device tool; ``segment_anything`` copied into ``.gpu_carry``, see docs/benchmarks.md):
    PYTHONUNBUFFERED=1 PYTHONPATH=.gpu_carry:. python3 benchmarks/gpu_sam.py --models vit_b,vit_h --compile
CPU smoke run (proves the script works; figures meaningless for the GPU targets):
    .venv/bin/python benchmarks/gpu_sam.py --device cpu --models vit_b --batch 1 --iters 1 --warmup 0 \
        --agree 1 --clicks 5 --no-everything
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _images(n: int, seed: int = 0) -> list[np.ndarray]:
    """Synthetic RGB images of mixed sizes (landscape and portrait, like a real upload)."""
    rng = np.random.default_rng(seed)
    sizes = [(480, 640), (768, 1024), (1024, 683), (600, 800)]
    out = []
    for i in range(n):
        h, w = sizes[i % len(sizes)]
        yy, xx = np.mgrid[0:h, 0:w]
        img = np.stack([xx * 255 // w, yy * 255 // h, np.full_like(xx, 90)], -1).astype(np.int16)
        for _ in range(6):  # a few ellipses, so the masks have edges to follow
            cy, cx, ry, rx = (
                rng.uniform(0.1, 0.9) * h,
                rng.uniform(0.1, 0.9) * w,
                rng.uniform(20, h / 4),
                rng.uniform(20, w / 4),
            )
            img[((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 < 1] = rng.integers(0, 255, 3)
        img += rng.integers(-8, 8, img.shape, dtype=np.int16)
        out.append(np.clip(img, 0, 255).astype(np.uint8))
    return out


def _rate(fn, n_images: int, iters: int, warmup: int, device: str) -> float:
    for _ in range(warmup):
        fn()
    _sync(device)
    t = time.perf_counter()
    for _ in range(iters):
        fn()
    _sync(device)
    return n_images * iters / (time.perf_counter() - t)


def _pct(values: list[float]) -> str:
    a = np.asarray(values) * 1000
    return f"p50 {np.percentile(a, 50):.2f} ms  p95 {np.percentile(a, 95):.2f} ms"


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def bench_model(model_type: str, args: argparse.Namespace, card: str) -> dict:
    import torch

    from workers.sam.interface import Embedding, input_size_for
    from workers.sam.predictor import SamBackend
    from workers.sam.registry import load_sam

    dev = args.device
    t0 = time.perf_counter()
    loaded = load_sam(model_type, None, device=dev, seed=0)
    stock = SamBackend(loaded, optimized=False, max_batch=1)
    fast = SamBackend(loaded, optimized=True, compile=args.compile, dtype=args.dtype, max_batch=args.batch)
    print(f"[{model_type}] loaded in {time.perf_counter() - t0:.1f} s on {card}", flush=True)
    if args.compile:
        t = time.perf_counter()
        fast.warm_up()
        _sync(dev)
        print(
            f"[{model_type}] torch.compile warm-up (batch {args.batch}): {time.perf_counter() - t:.1f} s",
            flush=True,
        )
    res: dict = {"model": model_type, "card": card, "torch": torch.__version__, "batch": args.batch,
                 "dtype": fast.dtype, "compile": args.compile}  # fmt: skip
    imgs = _images(max(args.batch, args.agree))

    # encoder alone, on a batch already on the device
    with torch.inference_mode():
        x1 = fast._batch_on_device(imgs[:1], 1)
        xb = fast._batch_on_device(imgs[: args.batch], args.batch).to(fast._enc_dtype)
    if not args.skip_stock_speed:
        with torch.inference_mode():
            res["stock_fp32_b1_img_s"] = _rate(
                lambda: loaded.model.image_encoder(x1), 1, args.iters, args.warmup, dev
            )
        print(f"[{model_type}] stock fp32 batch 1: {res['stock_fp32_b1_img_s']:.3g} img/s", flush=True)
    with torch.inference_mode():
        res["optimized_img_s"] = _rate(lambda: fast._encoder(xb), args.batch, args.iters, args.warmup, dev)
    print(
        f"[{model_type}] optimized {fast.dtype} batch {args.batch}: {res['optimized_img_s']:.3g} img/s",
        flush=True,
    )
    batch_imgs = imgs[: args.batch]
    res["embed_end_to_end_img_s"] = _rate(
        lambda: fast.embed(batch_imgs), args.batch, args.iters, args.warmup, dev
    )
    print(
        f"[{model_type}] SamBackend.embed from uint8 host images: {res['embed_end_to_end_img_s']:.3g} img/s",
        flush=True,
    )
    if dev.startswith("cuda"):
        res["peak_gpu_mib"] = round(torch.cuda.max_memory_allocated() / 2**20)

    # agreement with stock fp32 on the same input tensor
    cosines, ious = [], []
    for im in imgs[: args.agree]:
        with torch.inference_mode():
            x = fast._batch_on_device([im], 1)
            ref = loaded.model.image_encoder(x).float()
            out = (
                fast._encoder(x.to(fast._enc_dtype)).float() if not fast.compiled else fast.encode_batch([im])
            )
        a, b = ref.flatten().double(), out.flatten().double()
        cosines.append(float(a @ b / (a.norm() * b.norm())))
        h, w = im.shape[:2]
        sizes = ((h, w), input_size_for((h, w)))
        e_ref = Embedding(stock.model_name, stock.checkpoint_sha256, *sizes, ref[0].half().cpu().numpy())
        e_out = Embedding(stock.model_name, stock.checkpoint_sha256, *sizes, out[0].half().cpu().numpy())
        for gy in np.linspace(0.1, 0.9, 4):
            for gx in np.linspace(0.1, 0.9, 4):
                kw = {"points": [[gx * w, gy * h]], "point_labels": [1]}
                m_ref = stock.predict(e_ref, **kw).mask
                m_out = stock.predict(e_out, **kw).mask
                if m_ref.any() or m_out.any():
                    ious.append(_iou(m_ref, m_out))
    res["embedding_cosine_min"] = round(min(cosines), 6)
    res["mask_iou_min"] = round(min(ious), 4) if ious else None
    res["mask_iou_mean"] = round(float(np.mean(ious)), 4) if ious else None
    print(f"[{model_type}] vs stock fp32: cosine min {res['embedding_cosine_min']}, mask IoU min {res['mask_iou_min']} "
          f"mean {res['mask_iou_mean']} over {len(ious)} clicks", flush=True)  # fmt: skip

    # click decoding on the device
    emb = fast.embed(imgs[:1])[0]
    h, w = emb.original_size
    rng = np.random.default_rng(1)
    times = []
    for i in range(args.clicks + 3):
        pt = [[float(rng.uniform(0, w)), float(rng.uniform(0, h))]]
        _sync(dev)
        t = time.perf_counter()
        fast.predict(emb, points=pt, point_labels=[1])
        _sync(dev)
        if i >= 3:
            times.append(time.perf_counter() - t)
    res["decode_p50_ms"] = round(float(np.percentile(times, 50)) * 1000, 2)
    res["decode_p95_ms"] = round(float(np.percentile(times, 95)) * 1000, 2)
    print(f"[{model_type}] click decode ({fast.decoder}, on {dev}): {_pct(times)}", flush=True)

    if args.everything:
        for name, backend in (("optimized", fast), ("stock", stock)):
            e = backend.embed(imgs[:1])[0]
            backend.automatic(e, points_per_side=8)  # warm-up
            _sync(dev)
            t = time.perf_counter()
            masks = backend.automatic(e)
            _sync(dev)
            res[f"everything_{name}_s"] = round(time.perf_counter() - t, 3)
            print(
                f"[{model_type}] everything mode {name}: {res[f'everything_{name}_s']:.3f} s/image, {len(masks)} masks",
                flush=True,
            )
    return res


def main() -> None:
    import torch

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="vit_b,vit_h")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--dtype", default=None, choices=[None, "fp32", "bf16"])
    p.add_argument("--compile", action="store_true")
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--agree", type=int, default=2, help="images for the agreement check")
    p.add_argument("--clicks", type=int, default=50)
    p.add_argument("--no-everything", dest="everything", action="store_false")
    p.add_argument("--skip-stock-speed", action="store_true")
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args()
    if args.device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = False  # the stock reference stays true fp32
        card = torch.cuda.get_device_name(0)
    else:
        card = "CPU (no GPU): these figures do not measure the GPU targets"
    print(f"torch {torch.__version__}, device {args.device}: {card}", flush=True)
    results = []
    for model in (m.strip() for m in args.models.split(",") if m.strip()):
        results.append(bench_model(model, args, card))
        if args.device.startswith("cuda"):  # the next model starts from an empty card
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
    print(json.dumps(results, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
