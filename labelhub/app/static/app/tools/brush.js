// Brush and eraser on the selected mask (mixed into Tools): a polygon becomes a mask when painted; a
// stroke is one undo step.
import { announce } from "../dom.js";
import { rleDecode, rleEncode } from "../rle.js";
import { rings } from "../view.js";

/** A polygon region rasterised to a mask (pixel centres inside, even-odd), for brushing. */
export function polygonToMask(region, w, h) {
  const canvas = new OffscreenCanvas(w, h);
  const ctx = canvas.getContext("2d");
  ctx.beginPath();
  for (const ring of rings(region)) {
    ring.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
    ctx.closePath();
  }
  ctx.fillStyle = "#fff";
  ctx.fill("evenodd");
  const data = ctx.getImageData(0, 0, w, h).data;
  const m = new Uint8Array(w * h);
  for (let i = 0; i < m.length; i++) m[i] = data[4 * i + 3] > 127 ? 1 : 0;
  return m;
}

export const brushing = {
  startStroke(p) {
    const { width: w, height: h } = this.view;
    let index = this.s.selected;
    let region = this.editor.regions[index];
    const label = region ? region.label : this.s.currentLabel();
    if (!this.classTakesMasks(label)) {
      // The server refuses a mask on a polygon-only class; say so before any paint.
      announce(`The class ${label} is drawn with polygons only: use the polygon or segment tool.`, "error");
      return;
    }
    this.editor.checkpoint();
    if (!region) {
      if (this.tool === "eraser") { this.editor.undoStack.pop(); return; }
      region = { id: this.editor.newId(), label: this.s.currentLabel(), kind: "mask", polygons: [], rle: rleEncode(new Uint8Array(w * h), h, w), source: "human" };
      this.editor.regions.push(region);
      index = this.editor.regions.length - 1;
      this.s.selected = index;
    }
    const mask = region.kind === "mask" && region.rle ? rleDecode(region.rle) : polygonToMask(region, w, h);
    this.stroke = { index, mask, value: this.tool === "brush" ? 1 : 0, last: null };
    this.paint(p);
  },

  paint(p) {
    const { mask, value } = this.stroke;
    const { width: w, height: h } = this.view;
    const r = this.brushRadius;
    const from = this.stroke.last || p;
    const steps = Math.max(1, Math.ceil(Math.hypot(p.x - from.x, p.y - from.y) / (r / 2)));
    for (let s = 1; s <= steps; s++) {
      const cx = from.x + ((p.x - from.x) * s) / steps, cy = from.y + ((p.y - from.y) * s) / steps;
      for (let y = Math.max(0, Math.floor(cy - r)); y < Math.min(h, Math.ceil(cy + r)); y++) {
        for (let x = Math.max(0, Math.floor(cx - r)); x < Math.min(w, Math.ceil(cx + r)); x++) {
          if ((x + 0.5 - cx) ** 2 + (y + 0.5 - cy) ** 2 <= r * r) mask[y * w + x] = value;
        }
      }
    }
    this.stroke.last = p;
    const region = this.editor.regions[this.stroke.index];
    region.kind = "mask";
    delete region.polygons;
    // Encoding the whole mask costs O(pixels): at most every 40 ms while painting, and once at the end.
    const now = performance.now();
    if (!this.stroke.encodedAt || now - this.stroke.encodedAt > 40) {
      region.rle = rleEncode(mask, h, w);
      this.view.masks.set(region, mask);
      this.stroke.encodedAt = now;
    }
  },

  endStroke() {
    const { mask, index } = this.stroke;
    const region = this.editor.regions[index];
    region.rle = rleEncode(mask, this.view.height, this.view.width);
    this.view.masks.set(region, mask);
    this.stroke = null;
    this.editor.changed();
    this.redraw();
  },
};
