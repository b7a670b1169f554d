"""Segmentation metrics against hand-computed cases and against independent references kept here
(plain loops and brute-force pairwise distances)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from workers.train.effort import vertex_edits
from workers.train.metrics import boundary, boundary_f1, dice, iou, pixel_accuracy, segmentation_scores


def reference_boundary(mask: np.ndarray) -> np.ndarray:
    h, w = mask.shape
    out = np.zeros_like(mask, dtype=bool)
    for r in range(h):
        for c in range(w):
            if not mask[r, c]:
                continue
            for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1)):
                rr, cc = r + dr, c + dc
                if 0 <= rr < h and 0 <= cc < w and not mask[rr, cc]:
                    out[r, c] = True
    return out


def reference_bf1(pred: np.ndarray, truth: np.ndarray, tol: float) -> float:
    bp, bt = np.argwhere(reference_boundary(pred)), np.argwhere(reference_boundary(truth))
    if len(bp) == 0 and len(bt) == 0:
        return 1.0 if pred.any() == truth.any() else 0.0
    if len(bp) == 0 or len(bt) == 0:
        return 0.0
    d = np.sqrt(((bp[:, None, :] - bt[None, :, :]) ** 2).sum(-1))
    precision = np.mean(d.min(1) <= tol)
    recall = np.mean(d.min(0) <= tol)
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def reference_dice_iou(pred, truth):
    tp = fp = fn = 0
    for p, t in zip(pred.ravel(), truth.ravel(), strict=True):
        tp += bool(p and t)
        fp += bool(p and not t)
        fn += bool(t and not p)
    dice_ = 1.0 if tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn)
    iou_ = 1.0 if tp + fp + fn == 0 else tp / (tp + fp + fn)
    return dice_, iou_


def test_hand_computed_squares():
    truth = np.zeros((10, 10), bool)
    truth[2:6, 2:6] = True  # 16 px
    pred = np.zeros((10, 10), bool)
    pred[3:7, 2:6] = True  # 16 px, 12 shared
    assert dice(pred, truth) == pytest.approx(24 / 32)
    assert iou(pred, truth) == pytest.approx(12 / 20)
    assert pixel_accuracy(pred, truth) == pytest.approx(92 / 100)
    # Boundaries: 12 px each. Shifted one row: every boundary pixel is within 1 px of the other's.
    assert boundary(truth).sum() == 12
    assert boundary_f1(pred, truth, tolerance=1) == pytest.approx(1.0)
    # Tolerance 0: only boundary pixels both masks share count. Pred's boundary (rows 3..6) meets
    # truth's (rows 2..5) at columns 2 and 5 of rows 3, 4 and 5: 6 of 12 each way, so P = R = F1 = 0.5.
    assert boundary_f1(pred, truth, tolerance=0) == pytest.approx(reference_bf1(pred, truth, 0))
    assert boundary_f1(pred, truth, tolerance=0) == pytest.approx(0.5)


def test_empty_and_disjoint_conventions():
    empty = np.zeros((5, 5), bool)
    full = np.ones((5, 5), bool)
    assert dice(empty, empty) == iou(empty, empty) == boundary_f1(empty, empty) == 1.0
    assert dice(empty, full) == iou(empty, full) == boundary_f1(empty, full) == 0.0
    with pytest.raises(ValueError):
        dice(np.zeros((2, 3)), np.zeros((3, 2)))


def test_per_class_scores_of_label_maps():
    truth = np.array([[0, 1, 1], [0, 2, 2], [0, 0, 2]])
    pred = np.array([[0, 1, 0], [0, 2, 2], [0, 2, 2]])
    out = segmentation_scores(pred, truth, classes=[1, 2], tolerance=1)
    assert out["pixel_accuracy"] == pytest.approx(7 / 9)
    assert out["per_class"][1]["dice"] == pytest.approx(2 / 3)
    assert out["per_class"][2]["iou"] == pytest.approx(3 / 4)
    assert out["dice"] == pytest.approx((2 / 3 + 6 / 7) / 2)


masks = arrays(np.bool_, st.tuples(st.integers(1, 14), st.integers(1, 14)))


@settings(max_examples=150, deadline=None)
@given(data=st.data(), tol=st.sampled_from([0.0, 1.0, 1.5, 2.0, 3.0]))
def test_against_reference_implementations(data, tol):
    truth = data.draw(masks)
    pred = data.draw(arrays(np.bool_, truth.shape))
    d, j = reference_dice_iou(pred, truth)
    assert dice(pred, truth) == pytest.approx(d)
    assert iou(pred, truth) == pytest.approx(j)
    assert np.array_equal(boundary(pred), reference_boundary(pred))
    assert boundary_f1(pred, truth, tolerance=tol) == pytest.approx(reference_bf1(pred, truth, tol), abs=1e-9)


def test_vertex_edits_counts_moves_adds_and_deletes():
    square = [{"exterior": [[2, 2], [12, 2], [12, 12], [2, 12]], "holes": []}]
    assert vertex_edits(square, square, height=20, width=20)["total"] == 0
    # A vertex in the middle of an accepted edge needs nothing; one corner 5 px out is a move (it is off
    # the accepted outline, and the accepted corner it replaced is away from the pre-label's outline).
    pre = [{"exterior": [[2, 2], [7, 2], [12, 2], [26, 26], [2, 12]], "holes": []}]
    out = vertex_edits(pre, square, height=30, width=30, tolerance=2)
    assert (out["moves"], out["adds"], out["deletes"], out["total"]) == (1, 0, 0, 1)
    # A pre-label far from everything: its 4 vertices move onto the 4 accepted ones.
    far = [{"exterior": [[15, 15], [19, 15], [19, 19], [15, 19]], "holes": []}]
    assert vertex_edits(far, square, height=20, width=20)["moves"] == 4
    # Nothing pre-labelled: every accepted vertex is added; nothing accepted: every vertex deleted.
    assert vertex_edits([], square, height=20, width=20) == {
        "moves": 0,
        "adds": 4,
        "deletes": 0,
        "total": 4,
        "prelabel_vertices": 0,
        "accepted_vertices": 4,
    }
    assert vertex_edits(far, [], height=20, width=20)["deletes"] == 4
    # The image frame is an outline: a full-image label's corners are on it.
    frame = [{"exterior": [[0, 0], [20, 0], [20, 20], [0, 20]], "holes": []}]
    assert vertex_edits(frame, frame, height=20, width=20)["total"] == 0
