"""Shared interface suite, run against SAM vit_b (seeded random weights) and the classical backend.

Nothing here asserts mask *quality* for SAM (random weights); it asserts shapes, dtypes,
provenance, caching behaviour (no encoder call in predict), validation and serialization.
"""

from __future__ import annotations

import numpy as np
import pytest

from workers.sam import (
    AutoMask,
    Embedding,
    EmbeddingMismatchError,
    ImageError,
    PromptError,
    PromptResult,
    SegmentationBackend,
)
from workers.sam.interface import LOW_RES, mask_bbox_xywh


def _check_result(res: PromptResult, backend, size: tuple[int, int]) -> None:
    assert isinstance(res, PromptResult)
    assert res.mask.shape == size and res.mask.dtype == np.bool_
    assert res.low_res_logits.shape == (1, LOW_RES, LOW_RES)
    assert res.low_res_logits.dtype == np.float32
    assert np.isfinite(res.score)
    assert res.model_name == backend.model_name
    assert res.checkpoint_sha256 == backend.checkpoint_sha256


def test_backend_satisfies_protocol(embedded):
    backend = embedded[0]
    assert isinstance(backend, SegmentationBackend)
    assert backend.model_name in ("sam-vit_b", "classical-grabcut")
    expected = "random-seed-0" if backend.model_name.startswith("sam") else "none"
    assert backend.checkpoint_sha256 == expected


def test_embed_is_batched_and_records_provenance(embedded, test_images):
    backend, embs, calls, n_images = embedded
    assert calls == 1 and n_images == len(test_images) == len(embs)
    for img, emb in zip(test_images, embs, strict=True):
        assert emb.original_size == img.shape[:2]
        assert emb.model_name == backend.model_name
        assert emb.checkpoint_sha256 == backend.checkpoint_sha256
    if backend.model_name.startswith("sam"):
        for img, emb in zip(test_images, embs, strict=True):
            assert emb.data.shape == (256, 64, 64) and emb.data.dtype == np.float16
            assert max(emb.input_size) == 1024
            h, w = img.shape[:2]
            assert abs(emb.input_size[0] / emb.input_size[1] - h / w) < 0.01
        # different images -> different embeddings (the batch is not mixed up)
        assert not np.array_equal(embs[0].data, embs[1].data)


def test_embedding_bytes_round_trip(embedded):
    backend, embs, *_ = embedded
    for emb in embs:
        blob = emb.to_bytes()
        assert emb.nbytes == len(blob)
        back = Embedding.from_bytes(blob)
        assert back.original_size == emb.original_size and back.input_size == emb.input_size
        assert back.model_name == emb.model_name and back.checkpoint_sha256 == emb.checkpoint_sha256
        np.testing.assert_array_equal(back.data, emb.data)
        if backend.model_name.startswith("sam"):
            assert 2 * 2**20 <= len(blob) < 2 * 2**20 + 4096  # fp16 features + small header
        else:
            assert len(blob) < emb.data.nbytes  # PNG-compressed image
        corrupt = bytearray(blob)
        corrupt[-10] ^= 0xFF
        with pytest.raises(EmbeddingMismatchError, match="CRC32"):
            Embedding.from_bytes(bytes(corrupt))
    with pytest.raises(EmbeddingMismatchError, match="magic"):
        Embedding.from_bytes(b"not an embedding")


def _prompts(size: tuple[int, int]) -> dict[str, dict]:
    h, w = size
    return {
        "point": {"points": [[w * 0.5, h * 0.5]], "point_labels": [1]},
        "points_pos_neg": {"points": [[w * 0.5, h * 0.5], [w * 0.05, h * 0.05]], "point_labels": [1, 0]},
        "box": {"box": [w * 0.2, h * 0.2, w * 0.8, h * 0.8]},
        "box_and_point": {
            "box": [w * 0.2, h * 0.2, w * 0.8, h * 0.8],
            "points": [[w * 0.5, h * 0.5]],
            "point_labels": [1],
        },
    }


@pytest.mark.parametrize("kind", ["point", "points_pos_neg", "box", "box_and_point"])
def test_predict_from_cached_embedding_without_encoder(embedded, kind):
    backend, embs, *_ = embedded
    for emb in embs:
        calls, n = backend.encoder_calls, backend.images_encoded
        cached = Embedding.from_bytes(emb.to_bytes())  # as a worker would get it from the cache
        res = backend.predict(cached, **_prompts(emb.original_size)[kind])
        _check_result(res, backend, emb.original_size)
        assert (backend.encoder_calls, backend.images_encoded) == (calls, n)
        # deterministic: same prompt on the original object gives the same mask
        again = backend.predict(emb, **_prompts(emb.original_size)[kind])
        np.testing.assert_array_equal(again.mask, res.mask)


def test_predict_with_previous_logits_as_mask_input(embedded):
    backend, embs, *_ = embedded
    emb = embs[0]
    h, w = emb.original_size
    first = backend.predict(emb, points=[[w / 2, h / 2]], point_labels=[1])
    calls = backend.encoder_calls
    second = backend.predict(
        emb,
        points=[[w / 2, h / 2], [2.0, 2.0]],
        point_labels=[1, 0],
        mask_input=first.low_res_logits,
    )
    _check_result(second, backend, (h, w))
    assert backend.encoder_calls == calls
    # (256, 256) without the leading 1 is accepted too
    third = backend.predict(
        emb, points=[[w / 2, h / 2]], point_labels=[1], mask_input=first.low_res_logits[0]
    )
    _check_result(third, backend, (h, w))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({}, "prompt"),
        ({"mask_input": np.zeros((1, 256, 256))}, "prompt"),
        ({"points": [[10, 10]]}, "point_labels"),
        ({"points": [[10, 10]], "point_labels": [1, 0]}, "point_labels"),
        ({"points": [[10, 10]], "point_labels": [2]}, "point_labels"),
        ({"point_labels": [1], "box": [0, 0, 5, 5]}, "point_labels"),
        ({"points": [[-1, 10]], "point_labels": [1]}, "points"),
        ({"points": [[10, 1e6]], "point_labels": [1]}, "points"),
        ({"points": [[np.nan, 1]], "point_labels": [1]}, "points"),
        ({"points": [1, 2, 3], "point_labels": [1]}, "points"),
        ({"points": np.zeros((0, 2)), "point_labels": np.zeros(0)}, "points"),
        ({"box": [10, 10, 10, 50]}, "box"),
        ({"box": [10, 50, 60, 20]}, "box"),
        ({"box": [0, 0, 5]}, "box"),
        ({"box": [0, 0, 1e6, 5]}, "box"),
        ({"box": [0, 0, 5, 5], "mask_input": np.zeros((64, 64))}, "mask_input"),
    ],
)
def test_prompt_validation(embedded, kwargs, field):
    backend, embs, *_ = embedded
    with pytest.raises(PromptError) as info:
        backend.predict(embs[0], **kwargs)
    assert info.value.field == field
    assert isinstance(info.value, ValueError)
    assert str(info.value).startswith(field + ":")


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((10, 10), np.uint8),
        np.zeros((10, 10, 4), np.uint8),
        np.zeros((10, 10, 3), np.float32),
        np.zeros((0, 10, 3), np.uint8),
        "not an array",
    ],
)
def test_image_validation(embedded, bad):
    backend, *_ = embedded
    calls = backend.encoder_calls
    with pytest.raises(ImageError) as info:
        backend.embed([bad])
    assert info.value.field == "images[0]"
    with pytest.raises(ImageError):
        backend.embed([])
    assert backend.encoder_calls == calls


def test_embedding_from_another_model_is_refused(embedded, test_images):
    backend, embs, *_ = embedded
    foreign = Embedding(
        model_name="sam-vit_h" if backend.model_name != "sam-vit_h" else "classical-grabcut",
        checkpoint_sha256="x",
        original_size=embs[0].original_size,
        input_size=embs[0].input_size,
        data=embs[0].data,
    )
    with pytest.raises(EmbeddingMismatchError, match="recompute"):
        backend.predict(foreign, points=[[1, 1]], point_labels=[1])


def test_automatic_returns_valid_masks(embedded):
    backend, embs, *_ = embedded
    emb = embs[1]
    calls = backend.encoder_calls
    if backend.model_name.startswith("sam"):
        # thresholds off: random weights give arbitrary scores; we test the pipeline, not quality
        masks = backend.automatic(emb, points_per_side=4, pred_iou_thresh=-1e9, stability_score_thresh=-1e9)
        assert masks, "with filtering disabled every grid prompt yields a candidate"
    else:
        masks = backend.automatic(emb)
        assert len(masks) >= 2  # background + ellipse at least
        total = np.zeros(emb.original_size, np.int32)
        for m in masks:
            total += m.mask
        assert total.max() == 1  # classical regions are disjoint
    assert backend.encoder_calls == calls  # reused the cached embedding
    scores = [m.score for m in masks]
    assert scores == sorted(scores, reverse=True)
    for m in masks:
        assert isinstance(m, AutoMask)
        assert m.mask.shape == emb.original_size and m.mask.dtype == np.bool_
        assert m.mask.any()
        assert m.bbox == mask_bbox_xywh(m.mask)
        assert m.model_name == backend.model_name
        assert np.isfinite(m.score)


def test_automatic_crop_layers_match_stock_mask_generator(sam_loaded, test_images):
    """Crop layers as ``SamAutomaticMaskGenerator`` computes them (same seeded weights, stock
    preprocessing, score filters and NMS off so random masks cannot empty the sets): the same masks,
    scores and boxes, in the image frame, after the same crop-edge filter. Random weights: agreement
    only, never quality."""
    from segment_anything import SamAutomaticMaskGenerator

    from workers.sam.predictor import SamBackend

    image = np.ascontiguousarray(test_images[1])  # 300x180: 1 + 4 overlapping crops
    backend = SamBackend(sam_loaded, optimized=False)
    calls = backend.encoder_calls
    ours = backend.automatic(
        image,
        points_per_side=2,
        pred_iou_thresh=-1e9,
        stability_score_thresh=0.0,
        box_nms_thresh=1.0,
        crop_nms_thresh=1.0,
        crop_n_layers=1,
    )
    assert backend.encoder_calls - calls == 5  # the whole image and four crops, each embedded once
    stock = SamAutomaticMaskGenerator(
        sam_loaded.model,
        points_per_side=2,
        pred_iou_thresh=0.0,  # 0 turns the stock filter off
        stability_score_thresh=0.0,
        box_nms_thresh=1.0,
        crop_nms_thresh=1.0,
        crop_n_layers=1,
    ).generate(image)
    assert len(stock) >= 12  # at least the whole image's 4 points x 3 masks
    assert len(ours) == len(stock)
    for s in sorted(stock, key=lambda r: -r["predicted_iou"]):
        best = max(
            ours, key=lambda m: (m.mask & s["segmentation"]).sum() / (m.mask | s["segmentation"]).sum()
        )
        iou = (best.mask & s["segmentation"]).sum() / (best.mask | s["segmentation"]).sum()
        assert iou >= 0.99
        assert abs(best.score - s["predicted_iou"]) < 1e-3
        x, y, w, h = (int(v) for v in s["bbox"])  # stock: xyxy -> xywh as x1 - x0 (last pixel excluded)
        assert best.bbox == (x, y, w + 1, h + 1)  # ours: pixels covered, as mask_bbox_xywh
    emb = backend.embed([image])[0]
    with pytest.raises(ValueError, match="source"):
        backend.automatic(emb, crop_n_layers=1)
