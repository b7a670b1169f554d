"""Safe image decoding: what the bytes are, how large they are, and whether they decode in full."""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image as PILImage

from labelhub.core.errors import DomainError

ACCEPTED_FORMATS = {"JPEG", "PNG", "BMP", "TIFF", "WEBP"}
EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "BMP": "bmp", "TIFF": "tif", "WEBP": "webp"}


@dataclass(frozen=True)
class DecodedImage:
    width: int
    height: int
    format: str
    sha256: str
    size_bytes: int


def image_inspect(data: bytes, *, max_pixels: int, max_bytes: int, field: str = "files") -> DecodedImage:
    """Check that `data` is one whole image within the limits; raise DomainError naming `field` if not."""
    if len(data) > max_bytes:
        raise DomainError(
            f"File is {len(data)} bytes; the limit is {max_bytes}.", field=field, code="file_too_large"
        )
    if not data:
        raise DomainError("File is empty.", field=field, code="not_an_image")
    # Pillow's own bomb check (89.5 MP by default) would otherwise fire before a larger configured limit
    PILImage.MAX_IMAGE_PIXELS = max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", PILImage.DecompressionBombWarning)
            with PILImage.open(io.BytesIO(data)) as img:
                fmt = img.format
                width, height = img.size
                if width * height > max_pixels:
                    raise DomainError(
                        f"Image is {width}x{height} = {width * height} pixels; the limit is {max_pixels}.",
                        field=field,
                        code="image_too_large",
                    )
                if fmt not in ACCEPTED_FORMATS:
                    raise DomainError(
                        f"Format {fmt} is not accepted; use one of {sorted(ACCEPTED_FORMATS)}.",
                        field=field,
                        code="unsupported_format",
                    )
                img.load()  # decodes every byte: a truncated or corrupt file fails here
    except DomainError:
        raise
    except (PILImage.DecompressionBombError, PILImage.DecompressionBombWarning) as exc:
        raise DomainError(
            f"Image exceeds the pixel limit: {exc}", field=field, code="image_too_large"
        ) from exc
    except PILImage.UnidentifiedImageError as exc:
        raise DomainError("File is not an image.", field=field, code="not_an_image") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise DomainError(f"Image is truncated or corrupt: {exc}", field=field, code="corrupt_image") from exc
    if width < 1 or height < 1:
        raise DomainError("Image has no pixels.", field=field, code="corrupt_image")
    return DecodedImage(width, height, fmt, hashlib.sha256(data).hexdigest(), len(data))


def image_to_rgb_array(data: bytes) -> np.ndarray:
    """Decode to an HxWx3 uint8 RGB array (EXIF orientation is not applied: pixels as stored)."""
    with PILImage.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("RGB"))


def image_to_rgb_array_bounded(data: bytes, *, max_side: int) -> tuple[np.ndarray, tuple[float, float]]:
    """Decode to an HxWx3 uint8 RGB array whose long side is at most `max_side`, and the factors
    (full width / array width, full height / array height) that map its coordinates back. Larger images
    go through Pillow's `thumbnail`, which decodes a JPEG at 1/2, 1/4 or 1/8 size (`draft`) and shrinks
    with `reduce` before resampling, so the full-size array is never built for a JPEG (a PNG is decoded
    once at full size by Pillow, 3 bytes a pixel, then reduced)."""
    with PILImage.open(io.BytesIO(data)) as img:
        full_w, full_h = img.size
        if max(full_w, full_h) > max_side:
            img.thumbnail((max_side, max_side), reducing_gap=2.0)
        rgb = np.asarray(img.convert("RGB"))
    return rgb, (full_w / rgb.shape[1], full_h / rgb.shape[0])


def thumbnail_jpeg(data: bytes, *, size: int = 256) -> bytes:
    with PILImage.open(io.BytesIO(data)) as img:
        img = img.convert("RGB")
        img.thumbnail((size, size))
        out = io.BytesIO()
        img.save(out, format="JPEG", quality=80)
        return out.getvalue()
