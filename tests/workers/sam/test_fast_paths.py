"""The fast paths against stock segment_anything on the same seeded random weights: the ONNX Runtime
decoder, the attention without a dense bias, on-device preprocessing and bf16 weights.

Cost on the 2-core dev box: the vit_b fixture (~3 s, shared with the other SAM tests), one decoder
export (~3 s) and a tiny encoder (128 px, 2 blocks); nothing here runs SAM's encoder at 1024 px.
Random weights: these check agreement between paths, never mask quality.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def _cos(a, b) -> float:
    a = np.asarray(a, np.float64).ravel()
    b = np.asarray(b, np.float64).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.fixture(scope="module")
def onnx_pair(sam_loaded, tmp_path_factory):
    """(torch-decoding backend, onnx-decoding backend) on one model, and a seeded fp16 embedding."""
    from workers.sam.interface import Embedding
    from workers.sam.predictor import SamBackend

    torch_backend = SamBackend(sam_loaded, optimized=False)
    onnx_backend = SamBackend(
        sam_loaded, optimized=False, decoder="onnx", onnx_dir=tmp_path_factory.mktemp("onnx")
    )
    rng = np.random.default_rng(0)
    emb = Embedding(
        model_name="sam-vit_b",
        checkpoint_sha256=sam_loaded.checkpoint_sha256,
        original_size=(300, 400),
        input_size=(768, 1024),
        data=rng.normal(0, 1, (256, 64, 64)).astype(np.float16),
    )
    return torch_backend, onnx_backend, emb


PROMPTS = [
    {"points": [[200, 150]], "point_labels": [1]},  # one click: multimask, best of 3
    {"points": [[200, 150], [60, 40]], "point_labels": [1, 0]},
    {"box": [80, 60, 320, 240]},
    {"points": [[200, 150]], "point_labels": [1], "box": [80, 60, 320, 240]},
    {"points": [[10.5, 290.5]], "point_labels": [1], "multimask_output": False},
]


@pytest.mark.parametrize("prompt", PROMPTS)
def test_onnx_decoder_agrees_with_pytorch(onnx_pair, prompt):
    torch_backend, onnx_backend, emb = onnx_pair
    ref = torch_backend.predict(emb, **prompt)
    out = onnx_backend.predict(emb, **prompt)
    assert out.mask.shape == ref.mask.shape == (300, 400)
    assert 0 < ref.mask.sum() < ref.mask.size  # a real mask, so IoU can fail
    assert _iou(out.mask, ref.mask) >= 0.99
    assert abs(out.score - ref.score) < 1e-3
    np.testing.assert_allclose(out.low_res_logits, ref.low_res_logits, atol=1e-2, rtol=1e-3)
    assert (out.model_name, out.checkpoint_sha256) == (ref.model_name, ref.checkpoint_sha256)


def test_onnx_follow_up_click_with_mask_input(onnx_pair):
    torch_backend, onnx_backend, emb = onnx_pair
    first = torch_backend.predict(emb, points=[[200, 150]], point_labels=[1])
    prompt = {"points": [[200, 150], [300, 100]], "point_labels": [1, 1], "mask_input": first.low_res_logits}
    ref = torch_backend.predict(emb, **prompt)
    out = onnx_backend.predict(emb, **prompt)
    assert 0 < ref.mask.sum() < ref.mask.size
    assert _iou(out.mask, ref.mask) >= 0.99


@pytest.mark.parametrize("points", [1, 2, 5])
@pytest.mark.parametrize("with_mask", [False, True])
def test_lean_export_graph_computes_what_the_stock_decoder_does(sam_loaded, points, with_mask):
    """The exported graph's PyTorch module (squeezed batch, head-free image attention, upscaling as
    GEMMs) against stock ``SamOnnxModel`` on the same weights: logits equal to float rounding."""
    from segment_anything.utils.onnx import SamOnnxModel

    from workers.sam.onnx_decoder import _wrapper

    g = torch.Generator().manual_seed(points * 10 + with_mask)
    emb = torch.randn(1, 256, 64, 64, generator=g)
    coords = torch.rand(1, points + 1, 2, generator=g) * 1024
    labels = torch.tensor([[1.0] * (points - 1) + [0.0, -1.0]])
    mask = torch.randn(1, 1, 256, 256, generator=g) * 4
    has = torch.tensor([1.0 if with_mask else 0.0])
    stock = SamOnnxModel(sam_loaded.model, return_single_mask=False).eval()
    with torch.no_grad():
        sparse = stock._embed_points(coords, labels)
        dense = stock._embed_masks(mask, has)
        ref_masks, ref_iou = sam_loaded.model.mask_decoder.predict_masks(
            image_embeddings=emb,
            image_pe=sam_loaded.model.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
        )
        masks, iou = _wrapper(sam_loaded.model)(emb, coords, labels, mask, has)
    assert masks.shape == ref_masks.shape == (1, 4, 256, 256)
    scale = float(ref_masks.abs().max())
    assert float(ref_masks.std()) > 0.05 * scale > 0  # varied logits: a layout error cannot hide
    torch.testing.assert_close(masks, ref_masks, atol=1e-5 * scale, rtol=1e-4)
    torch.testing.assert_close(iou, ref_iou, atol=1e-5, rtol=1e-5)


def test_onnx_decoder_converts_one_embedding_once(onnx_pair):
    """A labeler's clicks on one image reuse the fp32 copy of its fp16 embedding; another embedding
    (or an fp32 one) is never served from that copy."""
    _, onnx_backend, emb = onnx_pair
    dec = onnx_backend.onnx_decoder()
    first = dec._features_fp32(emb.data)
    assert dec._features_fp32(emb.data) is first
    np.testing.assert_array_equal(first[0], emb.data.astype(np.float32))
    other = emb.data.copy()
    other[0, 0, 0] += 1
    assert dec._features_fp32(other)[0, 0, 0, 0] == np.float32(other[0, 0, 0])
    fp32 = np.ascontiguousarray(emb.data, np.float32)
    assert np.shares_memory(dec._features_fp32(fp32), fp32)


def test_onnx_decoder_is_exported_once_per_model_and_checkpoint(onnx_pair, sam_loaded):
    from workers.sam.onnx_decoder import onnx_decoder_path
    from workers.sam.predictor import SamBackend

    _, onnx_backend, _ = onnx_pair
    path = onnx_backend.onnx_decoder_path()
    assert path == onnx_decoder_path(onnx_backend.onnx_dir, "vit_b", sam_loaded.checkpoint_sha256)
    mtime = path.stat().st_mtime_ns
    again = SamBackend(sam_loaded, optimized=False, decoder="onnx", onnx_dir=onnx_backend.onnx_dir)
    assert again.onnx_decoder_path() == path and path.stat().st_mtime_ns == mtime  # reused
    assert onnx_decoder_path(onnx_backend.onnx_dir, "vit_b", "0" * 64) != path  # another checkpoint
    assert onnx_decoder_path(onnx_backend.onnx_dir, "vit_b", "unverified:/x/y.pth").name.isascii()


def test_upscale_matches_sam_postprocess(sam_loaded):
    from workers.sam.onnx_decoder import upscale_logits

    low = torch.randn(1, 1, 256, 256, generator=torch.Generator().manual_seed(1))
    ref = sam_loaded.model.postprocess_masks(low, (683, 1024), (480, 720))[0, 0].numpy()
    out = upscale_logits(low[0, 0].numpy(), (683, 1024), (480, 720))
    np.testing.assert_allclose(out, ref, atol=1e-4)


@pytest.fixture(scope="module")
def tiny_encoder():
    """SAM's ImageEncoderViT at 128 px (8x8 tokens), one windowed and one global block, seeded."""
    from segment_anything.modeling.image_encoder import ImageEncoderViT

    torch.manual_seed(0)
    enc = ImageEncoderViT(
        img_size=128, patch_size=16, embed_dim=96, depth=2, num_heads=3, window_size=4,
        global_attn_indexes=(1,), use_rel_pos=True, out_chans=256,
    )  # fmt: skip
    with torch.no_grad():
        for name, p in enc.named_parameters():
            if name.endswith(("rel_pos_h", "rel_pos_w", "pos_embed")):
                p.normal_(0.0, 0.02)
    return enc.eval()


def test_rel_pos_on_device_equals_stock():
    from segment_anything.modeling.image_encoder import get_rel_pos

    from workers.sam.attention import rel_pos_on_device

    table = torch.randn(27, 16)
    torch.testing.assert_close(rel_pos_on_device(14, 14, table), get_rel_pos(14, 14, table), rtol=0, atol=0)


def test_attention_without_dense_bias_matches_stock(tiny_encoder):
    import copy
    import types

    from workers.sam.attention import attention_modules, sdpa_attention_forward

    x = torch.randn(2, 3, 128, 128, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        ref = tiny_encoder(x)
    for fold in (True, False):  # folded into q/k (the CUDA path), dense attn_mask (the CPU path)
        fast = copy.deepcopy(tiny_encoder)
        for m in attention_modules(fast):
            m.forward = types.MethodType(lambda self, y, fold=fold: sdpa_attention_forward(self, y, fold), m)
        with torch.inference_mode():
            out = fast(x)
            fast.to(torch.bfloat16)
            out_bf16 = fast(x.to(torch.bfloat16)).float()
        torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)
        assert _cos(out_bf16, ref) >= 0.99


def test_on_device_preprocessing_matches_stock(sam_loaded, test_images):
    from workers.sam.predictor import SamBackend

    fast = SamBackend(sam_loaded, optimized=True, max_batch=2)
    stock = SamBackend(sam_loaded, optimized=False)
    batch = fast._batch_on_device(test_images[:2], 3)
    assert batch.shape == (3, 3, 1024, 1024) and not batch[2].any()  # the padded row stays zero
    for i, im in enumerate(test_images[:2]):
        ref, (h, w) = stock._preprocess(im)
        assert (h, w) == fast.transform.get_preprocess_shape(*im.shape[:2], 1024)
        assert _cos(batch[i], ref) >= 0.999
        # stock rounds the resized image to uint8 levels; ours too, so most pixels agree exactly
        same = (batch[i, :, :h, :w] - ref[:, :h, :w]).abs() < 1e-3
        assert same.float().mean() > 0.5
