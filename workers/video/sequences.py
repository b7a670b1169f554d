"""Sequences with known ground truth for measuring propagation: a real object (an image and its
exact mask, e.g. from the GrabCut set) moving, scaling and turning over real video frames, and a
deforming variant (a smooth non-rigid warp of the object that changes over time). The masks are exact
because the object is composited by them."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass
class Sequence_:
    frames: list[np.ndarray]  # RGB uint8 (H, W, 3)
    masks: list[np.ndarray]  # bool (H, W)


def object_cutout(image: np.ndarray, mask: np.ndarray, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Crop the object to its mask's box and scale it to `height` pixels tall."""
    ys, xs = np.nonzero(mask)
    crop = image[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    cm = mask[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1].astype(np.uint8) * 255
    s = height / crop.shape[0]
    size = (max(4, round(crop.shape[1] * s)), height)
    return cv2.resize(crop, size, interpolation=cv2.INTER_AREA), cv2.resize(cm, size) >= 128


def generate(
    backgrounds: Sequence[np.ndarray],
    obj: np.ndarray,
    obj_mask: np.ndarray,
    *,
    length: int = 31,
    seed: int = 0,
    deform: bool = False,
) -> Sequence_:
    """`length` frames of size backgrounds[0]; the object starts near the centre-left and moves along
    a gentle curve (3-7 px/frame), scales by up to +-30% and turns by up to +-30 degrees by the last
    frame; `deform` adds a travelling sine warp (amplitude up to 6% of the object's size)."""
    rng = np.random.default_rng(seed)
    h, w = backgrounds[0].shape[:2]
    oh, ow = obj_mask.shape
    speed = rng.uniform(3, 7)
    heading = rng.uniform(-0.6, 0.6)
    curve = rng.uniform(-0.02, 0.02)
    scale_end = rng.uniform(0.7, 1.3)
    angle_end = rng.uniform(-30, 30)
    cx, cy = w * 0.4, h * 0.5
    frames, masks = [], []
    for t in range(length):
        f = t / max(1, length - 1)
        bg = backgrounds[t % len(backgrounds)]
        obj_t = obj
        mask_t: np.ndarray = obj_mask.astype(np.uint8) * 255
        if deform:
            amp = 0.06 * min(oh, ow) * math.sin(math.pi * f)
            yy, xx = np.mgrid[0:oh, 0:ow].astype(np.float32)
            mx = xx + amp * np.sin(2 * math.pi * (yy / oh) + 3 * f)
            my = yy + amp * np.sin(2 * math.pi * (xx / ow) + 2 * f)
            obj_t = cv2.remap(obj, mx, my, cv2.INTER_LINEAR, borderValue=0)
            mask_t = cv2.remap(mask_t, mx, my, cv2.INTER_LINEAR, borderValue=0)
        scale = 1 + (scale_end - 1) * f
        angle = angle_end * f
        m = cv2.getRotationMatrix2D((ow / 2, oh / 2), angle, scale)
        m[0, 2] += cx - ow / 2
        m[1, 2] += cy - oh / 2
        warped = cv2.warpAffine(obj_t, m, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)
        wm = cv2.warpAffine(mask_t, m, (w, h), flags=cv2.INTER_LINEAR, borderValue=0) >= 128
        frame = bg.copy()
        frame[wm] = warped[wm]
        frames.append(frame)
        masks.append(wm)
        heading += curve
        cx += speed * math.cos(heading)
        cy += speed * math.sin(heading)
    return Sequence_(frames, masks)
