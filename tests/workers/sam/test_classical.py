"""Classical backend behaviour on a synthetic object (exact ground truth known)."""

from __future__ import annotations

import numpy as np

from tests.workers.sam._helpers import synthetic_image, synthetic_object
from workers.sam.classical import ClassicalBackend


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.logical_and(a, b).sum() / np.logical_or(a, b).sum())


def test_grabcut_box_and_clicks_recover_the_object():
    h, w = 200, 260
    img, gt = synthetic_image(h, w, seed=3), synthetic_object(h, w)
    backend = ClassicalBackend()
    [emb] = backend.embed([img])
    ys, xs = np.nonzero(gt)
    box = [xs.min() - 5, ys.min() - 5, xs.max() + 6, ys.max() + 6]
    assert _iou(backend.predict(emb, box=box).mask, gt) > 0.9
    click = backend.predict(emb, points=[[w / 2, h / 2]], point_labels=[1])
    assert click.mask[h // 2, w // 2]
    assert _iou(click.mask, gt) > 0.9
    # a negative click on the background stays background
    res = backend.predict(emb, points=[[w / 2, h / 2], [5, 5]], point_labels=[1, 0])
    assert not res.mask[5, 5]
    assert 0.0 <= res.score <= 1.0


def test_low_res_logits_round_trip_the_mask():
    from workers.sam.backend import logits_to_mask

    h, w = 200, 260
    img = synthetic_image(h, w, seed=3)
    backend = ClassicalBackend()
    [emb] = backend.embed([img])
    res = backend.predict(emb, points=[[w / 2, h / 2]], point_labels=[1])
    assert _iou(logits_to_mask(res.low_res_logits, (h, w)), res.mask) > 0.95


def test_automatic_separates_the_object():
    h, w = 200, 260
    img, gt = synthetic_image(h, w, seed=3), synthetic_object(h, w)
    masks = ClassicalBackend().automatic(img)
    best = max(_iou(m.mask, gt) for m in masks)
    assert best > 0.9


def test_downscaled_grabcut_agrees_with_full_resolution():
    """GrabCut on a working copy (long side 256) then upsampled ~= GrabCut at full resolution."""
    h, w = 300, 400
    img, gt = synthetic_image(h, w, seed=4), synthetic_object(h, w)
    fast, full = ClassicalBackend(), ClassicalBackend(work_size=0)
    assert fast.work_size == 256
    [emb] = fast.embed([img])
    prompt = {"points": [[w / 2, h / 2], [w * 0.05, h * 0.05]], "point_labels": [1, 0]}
    a, b = fast.predict(emb, **prompt), full.predict(emb, **prompt)
    assert a.mask.shape == (h, w) and a.mask.dtype == np.bool_
    assert _iou(a.mask, b.mask) > 0.97
    assert _iou(a.mask, gt) > 0.95
    assert a.mask[h // 2, w // 2] and not a.mask[int(h * 0.05), int(w * 0.05)]
    # the previous mask fed back as low-res logits keeps the answer stable
    again = fast.predict(emb, **prompt, mask_input=a.low_res_logits)
    assert _iou(again.mask, a.mask) > 0.97
