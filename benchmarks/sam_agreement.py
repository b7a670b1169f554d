"""Optimized SAM path vs the stock fp32 segment_anything path, same seeded weights.

Reference: ``segment_anything.SamPredictor`` (fp32, manual attention, one image at a time).
Candidates: ``SamBackend`` batched embedding with fused SDPA in fp32, and in bf16 autocast.
Reports embedding cosine similarity / max abs error and the IoU between decoder masks for the
same prompts (single-mask output). Random weights: this measures numerical agreement only.

Usage: ``python benchmarks/sam_agreement.py --model vit_b --images 2 --prompts 10 [--no-bf16]``
"""

from __future__ import annotations

import argparse

import numpy as np
from _sam_common import grabcut_pairs, load_rgb, machine, synthetic_image

from workers.sam.predictor import SamBackend
from workers.sam.registry import load_sam


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="vit_b")
    ap.add_argument("--images", type=int, default=2)
    ap.add_argument("--prompts", type=int, default=10)
    ap.add_argument("--no-bf16", action="store_true")
    args = ap.parse_args()
    import torch
    from segment_anything import SamPredictor

    pairs = grabcut_pairs()
    images = [load_rgb(p[1]) for p in pairs[: args.images]]
    while len(images) < args.images:
        images.append(synthetic_image(400, 600, seed=len(images)))
    loaded = load_sam(args.model, None, seed=0)
    print(
        f"machine: {machine()}; model {args.model} random-seed-0; images {len(images)} "
        f"({'GrabCut' if pairs else 'synthetic'}), prompts/image {args.prompts}"
    )
    predictor = SamPredictor(loaded.model)
    refs = []
    with torch.inference_mode():
        for im in images:
            predictor.set_image(im)
            refs.append((predictor.get_image_embedding()[0].float().cpu().numpy(), predictor.input_size))
    rng = np.random.default_rng(0)
    configs = [("sdpa-fp32", "fp32")] + ([] if args.no_bf16 else [("sdpa-bf16", "bf16")])
    for name, dtype in configs:
        backend = SamBackend(loaded, optimized=True, dtype=dtype, max_batch=len(images))
        embs = backend.embed(images)  # one batched encoder call
        coss, errs, ious = [], [], []
        for im, emb, (ref, in_size) in zip(images, embs, refs, strict=True):
            a, b = ref.ravel().astype(np.float64), emb.data.astype(np.float64).ravel()
            coss.append(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
            errs.append(np.abs(a - b).max() / np.abs(a).max())
            # reuse the reference features (no second stock encoder run)
            predictor.features = torch.as_tensor(ref)[None].to(loaded.device)
            predictor.input_size, predictor.original_size, predictor.is_image_set = (
                in_size,
                im.shape[:2],
                True,
            )
            h, w = im.shape[:2]
            for _ in range(args.prompts):
                pts = rng.uniform([0, 0], [w, h], size=(int(rng.integers(1, 4)), 2))
                lab = rng.integers(0, 2, len(pts))
                lab[0] = 1
                m_ref, _, _ = predictor.predict(point_coords=pts, point_labels=lab, multimask_output=False)
                res = backend.predict(emb, points=pts, point_labels=lab, multimask_output=False)
                union = np.logical_or(m_ref[0], res.mask).sum()
                ious.append(np.logical_and(m_ref[0], res.mask).sum() / union if union else 1.0)
        print(
            f"{name}: embedding cosine min {min(coss):.6f} mean {np.mean(coss):.6f}; "
            f"max |err|/max|ref| {max(errs):.2e}; decoder mask IoU vs stock "
            f"min {min(ious):.4f} mean {np.mean(ious):.4f} over {len(ious)} prompts",
            flush=True,
        )


if __name__ == "__main__":
    main()
