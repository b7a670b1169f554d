"""Label Studio's brush RLE (the thi.ng rle-pack bit stream of an RGBA image, as Label Studio's
frontend and label-studio-converter's `brush.encode_rle` / `decode_rle` write and read it), both ways.

Written here rather than imported from label-studio-converter: that package pins pandas, lxml, nltk and
an old Pillow range for its other converters, and its decoder walks a Python string of bits per value
(too slow for a worker). Tests check this module against the converter's functions both ways.
"""

from __future__ import annotations

import numpy as np

RLE_SIZES = (3, 4, 8, 16)  # bits of a run length, chosen per run by a 2-bit index (Label Studio's)
WORD = 8


def brush_encode(mask: np.ndarray) -> list[int]:
    """Label Studio's brush RLE of a boolean (h, w) mask: the RGBA image flattened (each pixel's four
    values 255 inside, 0 outside) as a thi.ng rle-pack stream: a 32-bit value count, the word size - 1
    (5 bits), the four run-length sizes - 1 (4 bits each), then one record per run of equal values:
    bit 1, a 2-bit size index, the run length - 1 in that many bits, the 8-bit value. Bytes, the last
    padded with 0 bits."""
    flat = np.asarray(mask, dtype=bool).ravel()
    n = flat.size * 4
    bits = [f"{n:032b}", f"{WORD - 1:05b}", *(f"{s - 1:04b}" for s in RLE_SIZES)]
    if flat.size:
        change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
        starts = np.concatenate([[0], change])
        lengths = np.diff(np.concatenate([starts, [flat.size]])) * 4
        for start, length in zip(starts.tolist(), lengths.tolist(), strict=True):
            value = "11111111" if flat[start] else "00000000"
            while length > 0:
                run = min(length, 1 << RLE_SIZES[-1])
                size = next(k for k, s in enumerate(RLE_SIZES) if run - 1 < (1 << s))
                bits.append(f"1{size:02b}{run - 1:0{RLE_SIZES[size]}b}{value}")
                length -= run
    text = "".join(bits)
    text += "0" * (-len(text) % 8)
    return list(int(text, 2).to_bytes(len(text) // 8, "big"))


def brush_decode(rle: list[int], height: int, width: int) -> np.ndarray:
    """The boolean (height, width) mask of a Label Studio brush RLE (alpha channel >= 128); ValueError
    when it is not one (a wrong count, a truncated stream)."""
    if not isinstance(rle, list) or not all(isinstance(v, int) and 0 <= v < 256 for v in rle):
        raise ValueError("rle is a list of bytes (integers 0..255)")
    bits = "".join(f"{v:08b}" for v in rle)
    pos = 0

    def read(k: int) -> int:
        nonlocal pos
        if pos + k > len(bits):
            raise ValueError("the stream ends early")
        value = int(bits[pos : pos + k], 2) if k else 0
        pos += k
        return value

    num = read(32)
    if num != height * width * 4:
        raise ValueError(f"it holds {num} values; a {width}x{height} RGBA image has {height * width * 4}")
    word = read(5) + 1
    sizes = [read(4) + 1 for _ in range(4)]
    out = np.zeros(num, dtype=np.uint8)
    i = 0
    while i < num:
        repeat = read(1)
        j = min(i + 1 + read(sizes[read(2)]), num)
        if repeat:
            out[i:j] = read(word)
        else:
            for t in range(i, j):
                out[t] = read(word)
        i = j
    return out.reshape(height, width, 4)[:, :, 3] >= 128
