"""Data helpers for the SAM worker tests (real GrabCut images when present, else synthetic)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[3]


def shared_data_dir() -> Path:
    env = os.environ.get("LABELHUB_SHARED_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


def grabcut_dir() -> Path:
    return shared_data_dir() / "grabcut"


def load_rgb(path: Path) -> np.ndarray:
    import cv2

    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert bgr is not None, f"cannot decode {path}"
    return np.ascontiguousarray(bgr[..., ::-1])


def synthetic_image(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Gradient background + a red ellipse (the 'object') + noise; RGB uint8."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([xx * 200 // max(1, w - 1), yy * 200 // max(1, h - 1), np.full_like(xx, 90)], -1)
    img[synthetic_object(h, w)] = (230, 30, 30)
    return np.clip(img + rng.integers(-8, 8, img.shape), 0, 255).astype(np.uint8)


def synthetic_object(h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return ((xx - w * 0.5) / (w * 0.25)) ** 2 + ((yy - h * 0.5) / (h * 0.3)) ** 2 < 1
