"""A small synthetic image set for the demo: shapes with holes on a textured background."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


def synthetic_images(
    count: int = 6, *, seed: int = 0, size: tuple[int, int] = (480, 360)
) -> list[tuple[str, bytes]]:
    """`count` PNG images as (name, bytes): discs, rings and polygons in distinct colours over noise."""
    rng = np.random.default_rng(seed)
    out = []
    width, height = size
    for index in range(count):
        base = rng.integers(40, 90, size=(height, width, 3), dtype=np.uint8)
        img = Image.fromarray(base).filter(ImageFilter.GaussianBlur(2))
        draw = ImageDraw.Draw(img)
        for _ in range(int(rng.integers(2, 5))):
            color = tuple(int(c) for c in rng.integers(120, 255, size=3))
            cx, cy = int(rng.integers(60, width - 60)), int(rng.integers(60, height - 60))
            r = int(rng.integers(25, 55))
            shape = int(rng.integers(0, 3))
            if shape == 0:
                draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=color)
            elif shape == 1:  # a ring: a disc with a hole
                draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=color)
                draw.ellipse(
                    [cx - r // 2, cy - r // 2, cx + r // 2, cy + r // 2],
                    fill=tuple(int(v) for v in base[cy, cx]),
                )
            else:
                angles = np.sort(rng.uniform(0, 2 * np.pi, size=int(rng.integers(5, 9))))
                radii = rng.uniform(0.6, 1.0, size=angles.size) * r
                points = [
                    (cx + float(a) * np.cos(t), cy + float(a) * np.sin(t))
                    for a, t in zip(radii, angles, strict=True)
                ]
                draw.polygon(points, fill=color)
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        out.append((f"synthetic-{index:02d}.png", buf.getvalue()))
    return out
