"""Shared helpers for the ``benchmarks/sam_*.py`` scripts (not part of the product)."""

from __future__ import annotations

import os
import platform
import resource
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def shared_data_dir() -> Path:
    """``$LABELHUB_SHARED_DATA`` or ``<repo>/../shared/data``."""
    env = os.environ.get("LABELHUB_SHARED_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


def load_rgb(path: Path) -> np.ndarray:
    """Read an image file as RGB uint8 (H, W, 3) (format sniffed from content, not extension)."""
    import cv2

    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise OSError(f"cannot decode image {path}")
    return np.ascontiguousarray(bgr[..., ::-1])


def grabcut_pairs() -> list[tuple[str, Path, Path]]:
    """(stem, image path, mask path) for the GrabCut set, sorted by stem."""
    root = shared_data_dir() / "grabcut"
    masks = {p.stem: p for p in (root / "masks").glob("*")}
    out = []
    for p in sorted((root / "images").glob("*")):
        if p.stem in masks:
            out.append((p.stem, p, masks[p.stem]))
    return out


def synthetic_image(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Deterministic RGB uint8 test image (smooth gradient + ellipse + noise)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([xx * 255 // max(1, w - 1), yy * 255 // max(1, h - 1), np.full_like(xx, 90)], -1)
    inside = ((xx - w * 0.5) / (w * 0.25)) ** 2 + ((yy - h * 0.5) / (h * 0.3)) ** 2 < 1
    img[inside] = (220, 40, 40)
    img = img + rng.integers(-10, 10, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def machine() -> str:
    """One-line description of the machine (CPU count, arch, GPU name if any)."""
    desc = f"{os.cpu_count()} CPU cores {platform.machine()}"
    try:
        import torch

        if torch.cuda.is_available():
            desc += f", GPU {torch.cuda.get_device_name(0)}"
        else:
            desc += ", no GPU"
        desc += f", torch {torch.__version__}"
    except ImportError:  # pragma: no cover
        pass
    return desc


def peak_rss_mib() -> float:
    """Peak resident set size of this process in MiB (Linux ru_maxrss is KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
