"""One global-attention layer of SAM's image encoder, three ways: stock (matmul + dense rel-pos bias
+ softmax), SDPA with the dense bias as ``attn_mask`` (the previous optimized path) and SDPA with the
bias folded into query/key channels (``sdpa_attention_forward``: no ``(B, heads, L, L)`` tensor).

A seeded ``segment_anything`` ``Attention`` module (ViT-B sizes: 768 channels, 12 heads; ``--vit-h``:
1280, 16) on a ``--grid`` x ``--grid`` token map (SAM's own is 64x64; small grids on a CPU). Prints
milliseconds per forward (best of ``--reps``), the bytes of the dense bias the folded path never
builds, and the largest difference from stock.

Usage: ``.venv/bin/python benchmarks/sam_attention.py --grid 16,24,32`` (CPU) or
``python3 benchmarks/sam_attention.py --grid 32,64 --device cuda --dtype bf16`` (GPU)
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import types
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def dense_bias_forward(self, x):
    """SDPA with the full decomposed bias materialised as attn_mask (what the code did before)."""
    import torch
    import torch.nn.functional as F

    from workers.sam.attention import rel_pos_on_device

    B, H, W, _ = x.shape
    n = self.num_heads
    q, k, v = self.qkv(x).reshape(B, H * W, 3, n, -1).permute(2, 0, 3, 1, 4).unbind(0)
    c = q.shape[-1]
    r_q = q.reshape(B, n, H, W, c)
    rel_h = torch.einsum("bnhwc,hkc->bnhwk", r_q, rel_pos_on_device(H, H, self.rel_pos_h).to(q.dtype))
    rel_w = torch.einsum("bnhwc,wkc->bnhwk", r_q, rel_pos_on_device(W, W, self.rel_pos_w).to(q.dtype))
    bias = (rel_h[..., :, None] + rel_w[..., None, :]).reshape(B, n, H * W, H * W)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
    return self.proj(out.view(B, n, H, W, -1).permute(0, 2, 3, 1, 4).reshape(B, H, W, -1))


def main() -> None:
    import torch
    from segment_anything.modeling.image_encoder import Attention

    from workers.sam.attention import sdpa_attention_forward

    ap = argparse.ArgumentParser()
    ap.add_argument("--grid", default="16,24,32")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"])
    ap.add_argument("--vit-h", action="store_true")
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    dim, heads = (1280, 16) if args.vit_h else (768, 12)
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    print(f"torch {torch.__version__}, {args.device}, {args.dtype}, {dim} channels, {heads} heads, "
          f"batch {args.batch}, threads {torch.get_num_threads()}, load {os.getloadavg()[0]:.2f}")  # fmt: skip
    for g in (int(v) for v in args.grid.split(",")):
        torch.manual_seed(0)
        attn = Attention(dim, heads, qkv_bias=True, use_rel_pos=True, input_size=(g, g))
        with torch.no_grad():
            attn.rel_pos_h.normal_(0, 0.02)
            attn.rel_pos_w.normal_(0, 0.02)
        attn = attn.to(args.device, dtype).eval()
        x = torch.randn(args.batch, g, g, dim, device=args.device, dtype=dtype)
        ways = {
            "stock": attn.forward,
            "sdpa+dense bias": types.MethodType(dense_bias_forward, attn),
            "sdpa folded bias": types.MethodType(
                lambda self, y: sdpa_attention_forward(self, y, fold=True), attn
            ),
        }
        with torch.inference_mode():
            ref = ways["stock"](x).float()
            line = []
            for name, fn in ways.items():
                fn(x)
                best = float("inf")
                for _ in range(args.reps):
                    if args.device.startswith("cuda"):
                        torch.cuda.synchronize()
                    t = time.perf_counter()
                    out = fn(x)
                    if args.device.startswith("cuda"):
                        torch.cuda.synchronize()
                    best = min(best, time.perf_counter() - t)
                err = (out.float() - ref).abs().max().item()
                line.append(f"{name} {best * 1000:8.1f} ms (max diff {err:.1e})")
        bias_mib = args.batch * heads * (g * g) ** 2 * (2 if dtype == torch.bfloat16 else 4) / 2**20
        print(f"grid {g}x{g} (L={g * g}): " + " | ".join(line) + f" | dense bias {bias_mib:.0f} MiB")


if __name__ == "__main__":
    main()
