"""Gigapixel images: a cheap look at a large file (size, then header, never the pixels), its tile
pyramid (libvips), and Deep Zoom tiles and view windows read from that pyramid.

A pyramid is a tiled multi-resolution TIFF. A slide or scene that already is one (libvips, SVS,
pyramidal GeoTIFF: tiled levels, each at most 4.5x smaller than the one above, the smallest at most
4096 px) is stored as it is and its levels are served directly; any other large image (big JPEG/PNG, a
strip TIFF, one level only) gets a pyramid built by `pyramid_build` on the cpu queue. Tiles are read on
request from the pyramid's file, on the filesystem or through ranged reads on S3, so a tile costs one or
a few compressed tiles of the nearest level, whatever the image's size.

Deep Zoom levels: level N = ceil(log2(max(width, height))) is full resolution, level L is 2^(N-L)
times smaller (ceil), cut into `tile` x `tile` tiles without overlap.
"""

from __future__ import annotations

import ctypes
import hashlib
import io
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from labelhub.core.errors import DomainError

MAGIC = {
    b"\xff\xd8\xff": "JPEG",
    b"\x89PNG\r\n\x1a\n": "PNG",
    b"II*\x00": "TIFF",
    b"MM\x00*": "TIFF",
    b"II+\x00": "TIFF",  # BigTIFF
    b"MM\x00+": "TIFF",
}
MAX_LEVEL_STEP = 4.5  # SVS levels are 4x apart
MAX_SMALLEST_LEVEL = 4096


@dataclass(frozen=True)
class Level:
    page: int
    width: int
    height: int


@dataclass(frozen=True)
class PyramidInfo:
    width: int
    height: int
    format: str
    sha256: str
    size_bytes: int
    levels: tuple[Level, ...]  # the source's usable levels (empty: a pyramid must be built)


def sniff_format(head: bytes) -> str | None:
    for magic, fmt in MAGIC.items():
        if head.startswith(magic):
            return fmt
    return None


def _tiff_levels(fh, *, field: str) -> tuple[int, int, tuple[Level, ...]]:
    """(width, height, usable levels) of a TIFF from its directories only (no pixel is decoded)."""
    import tifffile

    try:
        with tifffile.TiffFile(fh) as tif:
            series = tif.series[0]
            pages = [lvl.keyframe for lvl in series.levels]
            first = pages[0]
            width, height = int(first.imagewidth), int(first.imagelength)
            levels = []
            for page in pages:
                if not isinstance(page.index, int) or not page.is_tiled:
                    levels = []
                    break
                levels.append(Level(page.index, int(page.imagewidth), int(page.imagelength)))
    except DomainError:
        raise
    except Exception as exc:  # tifffile raises many kinds on a damaged file
        raise DomainError(f"The TIFF cannot be read: {exc}", field=field, code="corrupt_image") from exc
    if width < 1 or height < 1:
        raise DomainError("Image has no pixels.", field=field, code="corrupt_image")
    if len(levels) < 2:
        return width, height, ()
    for upper, lower in zip(levels, levels[1:], strict=False):
        step_x, step_y = upper.width / max(lower.width, 1), upper.height / max(lower.height, 1)
        if not (1.0 < step_x <= MAX_LEVEL_STEP and abs(step_x - step_y) <= 0.02 * step_x + 2 / lower.height):
            raise DomainError(
                f"The pyramid's level {lower.width}x{lower.height} is not a reduction of "
                f"{upper.width}x{upper.height}.",
                field=field,
                code="bad_pyramid",
            )
    if max(levels[-1].width, levels[-1].height) > MAX_SMALLEST_LEVEL:
        return width, height, ()
    return width, height, tuple(levels)


def _vips_rgb(img):
    """3-band sRGB uint8 (alpha flattened on white, grey and 16-bit converted)."""
    if img.hasalpha():
        img = img.flatten(background=[255] * (img.bands - 1))
    if img.interpretation not in ("srgb",) or img.format != "uchar":
        img = img.colourspace("srgb")
    if img.bands > 3:
        img = img[0:3]
    if img.format != "uchar":
        img = img.cast("uchar")
    return img


def _check_readable(path: Path, levels: tuple[Level, ...], *, field: str) -> None:
    """Decode the smallest level in full and the first and last tile of the largest: a truncated file
    or a damaged tile table fails here, at a cost of a few tiles."""
    import pyvips

    try:
        top = pyvips.Image.new_from_file(str(path), page=levels[0].page, access="random", fail_on="error")
        top.crop(0, 0, 1, 1).avg()
        top.crop(top.width - 1, top.height - 1, 1, 1).avg()
        pyvips.Image.new_from_file(str(path), page=levels[-1].page, fail_on="error").avg()
    except pyvips.Error as exc:
        raise DomainError(
            f"The pyramid is damaged: {str(exc).strip()[:300]}", field=field, code="corrupt_image"
        ) from exc


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(4 * 1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def pyramid_probe(
    path: Path, *, max_image_pixels: int, max_image_bytes: int, max_pixels: int, max_bytes: int, field: str
) -> PyramidInfo | None:
    """Whether the server-side file `path` is a gigapixel image (None: an ordinary one, handled as any
    upload). Checks in order of cost: file size, magic bytes, header (TIFF directories / libvips header),
    pixel count, then the pyramid's levels and a few of its tiles; the SHA-256 last. Raises DomainError
    (400) naming `field`."""
    import pyvips

    size = path.stat().st_size
    if size > max_bytes:
        raise DomainError(
            f"File is {size} bytes; the limit for large images is {max_bytes}.",
            field=field,
            code="file_too_large",
        )
    with path.open("rb") as fh:
        fmt = sniff_format(fh.read(16))
        if fmt == "TIFF":
            fh.seek(0)
            width, height, levels = _tiff_levels(fh, field=field)
    if fmt is None:
        if size > max_image_bytes:
            raise DomainError("File is not a JPEG, PNG or TIFF image.", field=field, code="not_an_image")
        return None  # small: the ordinary checks say what it is
    if fmt != "TIFF":
        try:
            header = pyvips.Image.new_from_file(str(path), access="sequential")
        except pyvips.Error as exc:
            raise DomainError(
                f"Image header cannot be read: {str(exc).strip()[:300]}", field=field, code="corrupt_image"
            ) from exc
        width, height, levels = header.width, header.height, ()
    pixels = width * height
    if pixels <= max_image_pixels and size <= max_image_bytes:
        return None
    if pixels > max_pixels:
        raise DomainError(
            f"Image is {width}x{height} = {pixels} pixels; the limit for large images is {max_pixels}.",
            field=field,
            code="image_too_large",
        )
    if levels:
        _check_readable(path, levels, field=field)
    return PyramidInfo(width, height, fmt, file_sha256(path), size, levels)


def pyramid_build(source: Path, out: Path, *, tile: int, progress=None) -> None:
    """Write `source`'s tile pyramid to `out`: a BigTIFF of JPEG tiles, each level half the one above,
    streamed by libvips (memory bounded by a few rows of tiles, never the image). `progress(percent)`
    is called as it goes."""
    import pyvips

    img = _vips_rgb(pyvips.Image.new_from_file(str(source), access="sequential"))
    if progress is not None:
        img.set_progress(True)
        img.signal_connect("eval", lambda _image, state: progress(state.percent))
    img.tiffsave(
        str(out),
        tile=True,
        pyramid=True,
        compression="jpeg",
        Q=85,
        tile_width=tile,
        tile_height=tile,
        bigtiff=True,
    )


# --- reading ----------------------------------------------------------------------------------------
class S3RangeFile(io.RawIOBase):
    """A seekable read-only file over an S3 object: each read is a ranged GET of whole blocks, the last
    few kept, so the TIFF directories and a tile's bytes are all that leave S3 for a tile."""

    BLOCK = 512 * 1024

    def __init__(self, client, bucket: str, key: str, size: int, blocks: int = 32) -> None:
        self.client, self.bucket, self.key, self.size = client, bucket, key, size
        self.pos = 0
        self.cache: OrderedDict[int, bytes] = OrderedDict()
        self.max_blocks = blocks

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self.pos, 2: self.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def _block(self, index: int) -> bytes:
        if index in self.cache:
            self.cache.move_to_end(index)
            return self.cache[index]
        start = index * self.BLOCK
        end = min(self.size, start + self.BLOCK) - 1
        data = self.client.get_object(Bucket=self.bucket, Key=self.key, Range=f"bytes={start}-{end}")[
            "Body"
        ].read()
        self.cache[index] = data
        while len(self.cache) > self.max_blocks:
            self.cache.popitem(last=False)
        return data

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = self.size - self.pos
        n = max(0, min(n, self.size - self.pos))
        out = bytearray()
        while n > 0:
            index, offset = divmod(self.pos, self.BLOCK)
            chunk = self._block(index)[offset : offset + n]
            if not chunk:
                break
            out += chunk
            self.pos += len(chunk)
            n -= len(chunk)
        return bytes(out)

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def dzi_levels(width: int, height: int) -> int:
    """Index of the full-resolution Deep Zoom level (levels 0..N)."""
    return max(0, math.ceil(math.log2(max(width, height, 1))))


def dzi_xml(*, width: int, height: int, tile: int, fmt: str = "jpg") -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<Image xmlns="http://schemas.microsoft.com/deepzoom/2008" TileSize="{tile}" Overlap="0" '
        f'Format="{fmt}"><Size Width="{width}" Height="{height}"/></Image>\n'
    )


class PyramidReader:
    """Reads regions of a stored pyramid at any scale, from the nearest level at or above it (or at most
    LEVEL_SLACK_PX pixels smaller on a side, see `region`)."""

    LEVEL_SLACK_PX = 1.0

    def __init__(self, opener, width: int, height: int) -> None:
        import tifffile

        self.opener = opener  # () -> a path (str) or a seekable binary file
        self.width, self.height = width, height
        target = opener()
        with tifffile.TiffFile(target) as tif:
            keyframes = [lvl.keyframe for lvl in tif.series[0].levels]
            self.levels = [Level(p.index, int(p.imagewidth), int(p.imagelength)) for p in keyframes]
        self._pages: dict[int, object] = {}
        self._lock = threading.Lock()

    def _page(self, page: int):
        import pyvips

        with self._lock:
            img = self._pages.get(page)
            if img is None:
                target = self.opener()
                if isinstance(target, str):
                    img = pyvips.Image.new_from_file(target, page=page, access="random")
                else:
                    img = pyvips.Image.new_from_source(_vips_source(target), "", page=page, access="random")
                img = _vips_rgb(img)
                self._pages[page] = img
            return img

    def region(self, x0: float, y0: float, x1: float, y1: float, out_w: int, out_h: int):
        """The full-resolution rectangle [x0, x1) x [y0, y1) as a libvips image of out_w x out_h."""
        scale = max((x1 - x0) / out_w, (y1 - y0) / out_h)
        level = self.levels[0]
        need_w, need_h = self.width / scale, self.height / scale  # the image's size at the output scale
        for candidate in self.levels:
            # a stored level at least as fine as the output, or short of it by the rounding of its size
            # (libvips halves sizes down, Deep Zoom rounds up: 781 px against 782): the level above would
            # be read at twice the pixels and shrunk, for the same picture
            slack = self.LEVEL_SLACK_PX + 1e-4
            if candidate.width >= need_w - slack and candidate.height >= need_h - slack:
                level = candidate
        dx, dy = self.width / level.width, self.height / level.height
        page = self._page(level.page)
        fx0, fy0, fx1, fy1 = x0 / dx, y0 / dy, x1 / dx, y1 / dy  # in the level's pixels
        cx0, cy0 = int(math.floor(fx0)), int(math.floor(fy0))
        cx1 = min(page.width, max(cx0 + 1, int(math.ceil(fx1))))
        cy1 = min(page.height, max(cy0 + 1, int(math.ceil(fy1))))
        crop = page.crop(cx0, cy0, cx1 - cx0, cy1 - cy0)
        hscale, vscale = out_w / max(fx1 - fx0, 1e-9), out_h / max(fy1 - fy0, 1e-9)
        ox, oy = 0, 0
        if abs(hscale - 1) > 1e-6 or abs(vscale - 1) > 1e-6:
            crop = crop.resize(hscale, vscale=vscale)
            # the crop began at a whole level pixel: skip the fraction before x0, y0 (at output scale)
            ox, oy = round((fx0 - cx0) * hscale), round((fy0 - cy0) * vscale)
        ox, oy = min(ox, max(0, crop.width - 1)), min(oy, max(0, crop.height - 1))
        crop = crop.crop(ox, oy, min(crop.width - ox, out_w), min(crop.height - oy, out_h))
        if crop.width != out_w or crop.height != out_h:
            crop = crop.embed(0, 0, out_w, out_h, extend="copy")
        return crop

    def tile_jpeg(self, level: int, col: int, row: int, tile: int) -> bytes | None:
        """The Deep Zoom tile as JPEG bytes, or None when (level, col, row) is outside the image."""
        top = dzi_levels(self.width, self.height)
        if not 0 <= level <= top or col < 0 or row < 0:
            return None
        scale = 2 ** (top - level)
        level_w, level_h = math.ceil(self.width / scale), math.ceil(self.height / scale)
        tx0, ty0 = col * tile, row * tile
        if tx0 >= level_w or ty0 >= level_h:
            return None
        tx1, ty1 = min(tx0 + tile, level_w), min(ty0 + tile, level_h)
        # the level is the whole image resized to level_w x level_h: these are its exact factors
        sx, sy = self.width / level_w, self.height / level_h
        img = self.region(tx0 * sx, ty0 * sy, tx1 * sx, ty1 * sy, tx1 - tx0, ty1 - ty0)
        return img.jpegsave_buffer(Q=85, keep="none")

    def pixels(self, x0: float, y0: float, x1: float, y1: float, out_w: int, out_h: int) -> np.ndarray:
        """RGB uint8 array (out_h, out_w, 3) of the full-resolution rectangle [x0, x1) x [y0, y1)."""
        img = self.region(x0, y0, x1, y1, out_w, out_h)
        array = np.ndarray(
            buffer=img.write_to_memory(), dtype=np.uint8, shape=(img.height, img.width, img.bands)
        )
        return np.ascontiguousarray(array[..., :3])

    def window(self, x: int, y: int, w: int, h: int, *, max_side: int) -> tuple[np.ndarray, float]:
        """RGB pixels of the full-resolution window, its long side at most `max_side`, and the scale
        (full-resolution pixels per array pixel)."""
        scale = max(1.0, max(w, h) / max_side)
        out_w, out_h = max(1, round(w / scale)), max(1, round(h / scale))
        return self.pixels(x, y, x + w, y + h, out_w, out_h), w / out_w


_TRIM = None


def release_freed_memory() -> None:
    """Hand the C heap's freed pages back to the system (glibc's ``malloc_trim``; elsewhere nothing).
    libvips decodes tiles in its worker threads, whose malloc arenas keep the freed buffers: a long run
    of window reads (a slide pre-labelled tile by tile) grew by ~0.5 MiB per 1 MP window without this,
    and stays flat with it (a few ms a call)."""
    global _TRIM
    if _TRIM is None:
        try:
            _TRIM = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):
            _TRIM = False
    if _TRIM:
        _TRIM(0)


def _vips_source(fh):
    import pyvips

    source = pyvips.SourceCustom()
    source.on_read(lambda size: fh.read(size))
    source.on_seek(lambda offset, whence: fh.seek(offset, whence))
    return source


_READERS: OrderedDict[str, PyramidReader] = OrderedDict()
_READERS_LOCK = threading.Lock()


def pyramid_reader(image) -> PyramidReader:
    """The process's reader of `image`'s pyramid (a few kept open)."""
    from labelhub.core.downloads import _key, is_s3

    field = image.pyramid
    key = f"{field.name}:{image.sha256}"
    with _READERS_LOCK:
        reader = _READERS.get(key)
        if reader is not None:
            _READERS.move_to_end(key)
            return reader
    storage = field.storage
    if is_s3(storage):
        client = storage.connection.meta.client
        s3_key = _key(storage, field.name)
        size = client.head_object(Bucket=storage.bucket_name, Key=s3_key)["ContentLength"]

        def opener():  # a handle of its own for each level read
            return S3RangeFile(client, storage.bucket_name, s3_key, size)
    else:
        path = storage.path(field.name)

        def opener():
            return path

    reader = PyramidReader(opener, image.width, image.height)
    with _READERS_LOCK:
        _READERS[key] = reader
        while len(_READERS) > 8:
            _READERS.popitem(last=False)
    return reader
