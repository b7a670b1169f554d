"""SAM-specific checks: optimized (batched + SDPA) path vs the stock segment_anything path."""

from __future__ import annotations

import numpy as np
import pytest
import torch  # pinned in requirements.txt: imported, never skipped


def _cos(a, b) -> float:
    a = np.asarray(a, np.float64).ravel()
    b = np.asarray(b, np.float64).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.mark.parametrize("block_index", [0, 2])  # vit_b: block 0 windowed, block 2 global
def test_sdpa_attention_matches_manual_attention(sam_loaded, block_index):
    from workers.sam.attention import sdpa_attention_forward

    block = sam_loaded.model.image_encoder.blocks[block_index]
    attn = block.attn
    assert attn.use_rel_pos and attn.rel_pos_h.abs().sum() > 0  # rel-pos bias is exercised
    side = 14 if block.window_size > 0 else 64
    # batch 1: a global block's stock attention matrix alone is 12 x 4096 x 4096 fp32 (768 MiB)
    x = torch.randn(1, side, side, attn.qkv.in_features, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        ref = attn(x)
        out = sdpa_attention_forward(attn, x)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)


def test_sdpa_patch_is_scoped(sam_loaded):
    from workers.sam.attention import attention_modules, sdpa_attention

    mods = attention_modules(sam_loaded.model)
    assert len(mods) == 12
    with sdpa_attention(sam_loaded.model):
        assert all("forward" in m.__dict__ for m in mods)
    assert not any("forward" in m.__dict__ for m in mods)


def test_optimized_batched_embedding_matches_stock_sam_predictor(sam_loaded, sam_embedded, test_images):
    """The batched SDPA embedding equals stock ``SamPredictor.set_image`` (fp32, manual attention)
    on the same seeded weights, and the decoded masks agree."""
    from segment_anything import SamPredictor

    backend, embs, *_ = sam_embedded
    predictor = SamPredictor(sam_loaded.model)
    with torch.inference_mode():
        predictor.set_image(test_images[0])
        ref = predictor.get_image_embedding()[0].float().numpy()
    assert predictor.input_size == embs[0].input_size
    assert predictor.original_size == embs[0].original_size
    cos = _cos(ref, embs[0].data)
    assert cos > 0.99, cos
    assert np.abs(ref - embs[0].data.astype(np.float32)).max() < 0.05 * np.abs(ref).max()

    h, w = embs[0].original_size
    for kwargs in (
        {"point_coords": np.array([[w * 0.5, h * 0.5]]), "point_labels": np.array([1])},
        {"box": np.array([w * 0.2, h * 0.2, w * 0.8, h * 0.8])},
    ):
        masks, scores, _ = predictor.predict(multimask_output=False, **kwargs)
        res = backend.predict(
            embs[0],
            points=kwargs.get("point_coords"),
            point_labels=kwargs.get("point_labels"),
            box=kwargs.get("box"),
            multimask_output=False,
        )
        ref_mask = masks[0]
        union = np.logical_or(ref_mask, res.mask).sum()
        agreement = np.logical_and(ref_mask, res.mask).sum() / union if union else 1.0
        assert agreement >= 0.99, agreement
        assert abs(res.score - float(scores[0])) < 1e-2


def test_stock_backend_refuses_bf16(sam_loaded):
    from workers.sam.predictor import SamBackend

    with pytest.raises(ValueError, match="fp32 only"):
        SamBackend(sam_loaded, optimized=False, dtype="bf16")
    assert SamBackend(sam_loaded, optimized=True).dtype == "fp32"  # CPU default
