"""SAM's image-encoder attention with one fused ``scaled_dot_product_attention`` call: the decomposed
relative-position bias folded into the query and key (no ``(B, heads, L, L)`` bias tensor), its indices
built once on the model's device. Used by the optimized path of :mod:`workers.sam.predictor`.

``torch`` / ``segment_anything`` are imported lazily (inside functions).
"""

from __future__ import annotations

import contextlib
import types
from collections.abc import Iterator
from typing import Any

__all__ = ["attention_modules", "rel_pos_on_device", "sdpa_attention", "sdpa_attention_forward"]

_INDEX_CACHE: dict[tuple[Any, ...], Any] = {}


def _cached(key: tuple[Any, ...], make: Any) -> Any:
    value = _INDEX_CACHE.get(key)
    if value is None:
        value = _INDEX_CACHE[key] = make()
    return value


def rel_pos_on_device(q_size: int, k_size: int, rel_pos: Any) -> Any:
    """``segment_anything``'s ``get_rel_pos`` with its index tensor built once on ``rel_pos``'s device
    (the stock one builds it on the CPU every call: a host-to-device copy and sync per layer).
    Returns ``(q_size, k_size, C)``."""
    import torch
    import torch.nn.functional as F

    max_rel_dist = 2 * max(q_size, k_size) - 1
    if rel_pos.shape[0] != max_rel_dist:  # not the case for SAM's own sizes
        rel_pos = (
            F.interpolate(
                rel_pos.reshape(1, rel_pos.shape[0], -1).permute(0, 2, 1), size=max_rel_dist, mode="linear"
            )
            .reshape(-1, max_rel_dist)
            .permute(1, 0)
        )

    def make() -> Any:
        q = torch.arange(q_size, device=rel_pos.device)[:, None] * max(k_size / q_size, 1.0)
        k = torch.arange(k_size, device=rel_pos.device)[None, :] * max(q_size / k_size, 1.0)
        return ((q - k) + (k_size - 1) * max(q_size / k_size, 1.0)).long()

    return rel_pos[_cached(("rel", q_size, k_size, str(rel_pos.device)), make)]


def _key_one_hot(h: int, w: int, pad: int, like: Any) -> Any:
    """``(h*w, h + w + pad)``: key token ``(i, j)`` -> one-hot of its row ``i`` and of its column ``j``."""
    import torch

    def make() -> Any:
        rows = torch.arange(h * w, device=like.device)
        out = torch.zeros(h * w, h + w + pad, device=like.device, dtype=like.dtype)
        out[rows, rows // w] = 1
        out[rows, h + rows % w] = 1
        return out

    return _cached(("onehot", h, w, pad, str(like.device), like.dtype), make)


def sdpa_attention_forward(self: Any, x: Any, fold: bool | None = None) -> Any:
    """Drop-in replacement for ``image_encoder.Attention.forward`` with one fused SDPA call.

    The decomposed relative-position bias ``rel_h[q, kh] + rel_w[q, kw]`` is a dot product of the
    query's ``(rel_h, rel_w)`` rows with the key's one-hot ``(row, column)`` code, so it rides along
    as extra query/key channels (divided by the softmax scale, which SDPA multiplies back): the
    ``(B, heads, L, L)`` bias is never built (512 MiB per image per ViT-H global layer in bf16) and
    SDPA may pick a fused kernel. Extra channels are zero-padded to a multiple of 8 (fused-kernel
    alignment). The value keeps its own head size. ``fold=None`` folds on CUDA only: CPU SDPA kernels
    need equal query/value head sizes and fall back to a slower path (``benchmarks/sam_attention.py``:
    1.7x slower than the dense bias at 48x48 tokens), so on a CPU the bias is passed densely.

    Args:
        x: ``(B, H, W, C)`` tokens.
    Returns:
        ``(B, H, W, C)``; equal to the stock forward up to floating-point rounding.
    """
    import torch
    import torch.nn.functional as F

    B, H, W, _ = x.shape
    n = self.num_heads
    qkv = self.qkv(x).reshape(B, H * W, 3, n, -1).permute(2, 0, 3, 1, 4)
    q, k, v = qkv.unbind(0)  # (B, n, L, c)
    c = q.shape[-1]
    scale = c**-0.5
    if self.use_rel_pos:
        rh = rel_pos_on_device(H, H, self.rel_pos_h).to(q.dtype)
        rw = rel_pos_on_device(W, W, self.rel_pos_w).to(q.dtype)
        r_q = q.reshape(B, n, H, W, c)
        rel_h = torch.einsum("bnhwc,hkc->bnhwk", r_q, rh).reshape(B, n, H * W, H)
        rel_w = torch.einsum("bnhwc,wkc->bnhwk", r_q, rw).reshape(B, n, H * W, W)
        if fold if fold is not None else x.is_cuda:
            pad = (-(c + H + W)) % 8
            parts = [q, rel_h / scale, rel_w / scale]
            if pad:
                parts.append(q.new_zeros(B, n, H * W, pad))
            q = torch.cat(parts, dim=-1)
            k = torch.cat([k, _key_one_hot(H, W, pad, k).expand(B, n, -1, -1)], dim=-1)
        else:  # CPU: its SDPA kernels need equal q/v head sizes; the dense bias is cheaper there
            bias = (rel_h.reshape(B, n, H, W, H)[..., None] + rel_w.reshape(B, n, H, W, 1, W)).reshape(
                B, n, H * W, H * W
            )
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=scale)
            return self.proj(out.view(B, n, H, W, -1).permute(0, 2, 3, 1, 4).reshape(B, H, W, -1))
    out = F.scaled_dot_product_attention(q, k, v, scale=scale)
    out = out.view(B, n, H, W, -1).permute(0, 2, 3, 1, 4).reshape(B, H, W, -1)
    return self.proj(out)


def attention_modules(module: Any) -> list[Any]:
    from segment_anything.modeling.image_encoder import Attention

    return [m for m in module.modules() if isinstance(m, Attention)]


@contextlib.contextmanager
def sdpa_attention(model: Any, enabled: bool = True) -> Iterator[None]:
    """Temporarily bind :func:`sdpa_attention_forward` to the encoder's Attention instances."""
    if not enabled:
        yield
        return
    mods = [m for m in attention_modules(model.image_encoder) if "forward" not in m.__dict__]
    for m in mods:
        m.forward = types.MethodType(sdpa_attention_forward, m)
    try:
        yield
    finally:
        for m in mods:
            del m.forward
