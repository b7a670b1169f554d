"""The demo's images: photographs that scikit-image ships in its package (no download), each under a
licence that allows it (from the docstrings of skimage.data, scikit-image 0.26):

- astronaut: NASA, "no known copyright restrictions, released into the public domain";
- chelsea (a cat): CC0 by the photographer, Stefan van der Walt;
- coffee: CC0 by the photographer, Rachel Michetti;
- rocket: SpaceX, released into the public domain;
- coins (Greek coins from Pompeii, Brooklyn Museum): "no known copyright restrictions";
- camera (a cameraman): CC0 by the photographer, Lav Varshney.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "coins", "camera")


def sample_photographs(count: int = 6) -> list[tuple[str, bytes]]:
    """Up to `count` of skimage's sample photographs as (name, PNG bytes)."""
    from skimage import data

    out = []
    for name in PHOTOS[:count]:
        pixels = np.asarray(getattr(data, name)())
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, format="PNG")
        out.append((f"{name}.png", buf.getvalue()))
    return out
