// COCO RLE (column-major counts, pycocotools' compressed string) <-> a Uint8Array mask (row-major,
// index y * width + x). The server stores and exports exactly these strings.

export function decodeCounts(s) {
  const counts = [];
  let p = 0;
  while (p < s.length) {
    let x = 0, k = 0, more = 1, c = 0;
    while (more) {
      c = s.charCodeAt(p) - 48;
      x |= (c & 0x1f) << (5 * k);
      more = c & 0x20;
      p += 1;
      k += 1;
      if (!more && c & 0x10) x |= -1 << (5 * k);
    }
    if (counts.length > 2) x += counts[counts.length - 2];
    counts.push(x);
  }
  return counts;
}

export function encodeCounts(counts) {
  let s = "";
  for (let i = 0; i < counts.length; i++) {
    let x = counts[i];
    if (i > 2) x -= counts[i - 2];
    let more = 1;
    while (more) {
      let c = x & 0x1f;
      x >>= 5;
      more = c & 0x10 ? x !== -1 : x !== 0;
      if (more) c |= 0x20;
      s += String.fromCharCode(c + 48);
    }
  }
  return s;
}

/** {size: [h, w], counts} -> Uint8Array(h * w), row-major. */
export function rleDecode(rle) {
  const [h, w] = rle.size;
  const counts = typeof rle.counts === "string" ? decodeCounts(rle.counts) : rle.counts;
  const mask = new Uint8Array(h * w);
  let pos = 0, value = 0;
  for (const n of counts) {
    if (value) {
      for (let i = pos; i < pos + n; i++) {
        const x = (i / h) | 0;
        mask[(i - x * h) * w + x] = 1;
      }
    }
    pos += n;
    value ^= 1;
  }
  return mask;
}

/** Uint8Array(h * w) row-major -> {size: [h, w], counts: string}. */
export function rleEncode(mask, h, w) {
  const counts = [];
  let value = 0, run = 0;
  for (let x = 0; x < w; x++) {
    for (let y = 0; y < h; y++) {
      const v = mask[y * w + x] ? 1 : 0;
      if (v !== value) {
        counts.push(run);
        run = 0;
        value = v;
      }
      run += 1;
    }
  }
  counts.push(run);
  return { size: [h, w], counts: encodeCounts(counts) };
}
