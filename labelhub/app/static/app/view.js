// The canvas: the image with pan and zoom, regions drawn in class colours, vertex handles on the selected
// region, pins for comments. Everything is positioned in full-resolution image pixels (pixel corners);
// the stage transform maps them to the screen, and large images are drawn from a downscaled bitmap.
import Konva from "konva";
import { PALETTE } from "./palette.js";
import { rleDecode } from "./rle.js";

export { PALETTE };
const MAX_BITMAP_SIDE = 4096;

/** The class's colour as the project sets it (#rrggbb), else the palette's by the class's position. */
export function classColor(schema, label) {
  const i = schema.findIndex((c) => c.name === label);
  const own = i >= 0 ? schema[i].color : null;
  if (typeof own === "string" && /^#[0-9a-fA-F]{6}$/.test(own)) return own;
  return PALETTE[(i < 0 ? schema.length : i) % PALETTE.length];
}

export function rings(region) {
  const out = [];
  for (const p of region.polygons || []) {
    out.push(p.exterior);
    for (const h of p.holes || []) out.push(h);
  }
  return out;
}

function inRing(ring, x, y) {
  let inside = false;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
    const [xi, yi] = ring[i], [xj, yj] = ring[j];
    if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

/** Whether the image point (x, y) lies in the region (even-odd over all rings, or the mask pixel). */
export function regionContains(region, x, y, cache) {
  if (region.kind === "mask" && region.rle) {
    const m = cache?.get(region) || rleDecode(region.rle);
    const [h, w] = region.rle.size;
    const xi = Math.floor(x), yi = Math.floor(y);
    return xi >= 0 && yi >= 0 && xi < w && yi < h && m[yi * w + xi] === 1;
  }
  let inside = false;
  for (const ring of rings(region)) if (inRing(ring, x, y)) inside = !inside;
  return inside;
}

export function regionBounds(region) {
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (const ring of rings(region)) for (const [x, y] of ring) {
    x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x); y1 = Math.max(y1, y);
  }
  if (x0 === Infinity && region.rle) {
    const [h, w] = region.rle.size;
    const m = rleDecode(region.rle);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) if (m[y * w + x]) {
      x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x + 1); y1 = Math.max(y1, y + 1);
    }
  }
  return x0 === Infinity ? null : { x0, y0, x1, y1 };
}

export class View {
  constructor(container, { width, height, schema }) {
    this.container = container;
    this.width = width;
    this.height = height;
    this.schema = schema;
    this.fillOpacity = 0.3;
    this.selectedOpacity = 0.5;
    this.masks = new WeakMap(); // region -> decoded Uint8Array
    this.maskCanvases = new WeakMap();
    this.stage = new Konva.Stage({ container, width: container.clientWidth, height: container.clientHeight });
    this.imageLayer = new Konva.Layer({ listening: false });
    this.regionLayer = new Konva.Layer({ listening: false });
    this.previewLayer = new Konva.Layer({ listening: false });
    this.editLayer = new Konva.Layer();
    this.labelLayer = new Konva.Layer({ listening: false }); // class names: hover and selected
    this.stage.add(this.imageLayer, this.regionLayer, this.previewLayer, this.editLayer, this.labelLayer);
    this.hoverLabel = null; // {x, y, text, color}
    this._bindHover();
    this.onVertexDrag = null; // (regionIndex, ringPath, vertexIndex, x, y, phase)
    this.onVertexDelete = null;
    this._bindPanZoom();
    this._resize = new ResizeObserver(() => {
      this.stage.size({ width: container.clientWidth, height: container.clientHeight });
    });
    this._resize.observe(container);
  }

  destroy() {
    this._resize.disconnect();
    this.stage.destroy();
  }

  /** Load the image bytes; large images become a downscaled bitmap drawn at full-resolution size. */
  async loadImage(url) {
    const img = new window.Image();
    img.decoding = "async";
    img.src = url;
    await img.decode();
    let source = img;
    const side = Math.max(img.naturalWidth, img.naturalHeight);
    if (side > MAX_BITMAP_SIDE) {
      const s = MAX_BITMAP_SIDE / side;
      source = document.createElement("canvas");
      source.width = Math.round(img.naturalWidth * s);
      source.height = Math.round(img.naturalHeight * s);
      source.getContext("2d").drawImage(img, 0, 0, source.width, source.height);
    }
    this.imageNode = new Konva.Image({ image: source, x: 0, y: 0, width: this.width, height: this.height });
    this.imageLayer.add(this.imageNode);
    this.fit();
  }

  setFilters(brightness, contrast) {
    this.container.style.filter = `brightness(${brightness}) contrast(${contrast})`;
  }

  fit() {
    const sw = this.stage.width(), sh = this.stage.height();
    const s = Math.min(sw / this.width, sh / this.height) * 0.95;
    this.stage.scale({ x: s, y: s });
    this.stage.position({ x: (sw - this.width * s) / 2, y: (sh - this.height * s) / 2 });
    this.redraw();
  }

  zoomTo(b) {
    const sw = this.stage.width(), sh = this.stage.height();
    const s = Math.min(sw / (b.x1 - b.x0 + 20), sh / (b.y1 - b.y0 + 20), 40);
    this.stage.scale({ x: s, y: s });
    this.stage.position({ x: sw / 2 - ((b.x0 + b.x1) / 2) * s, y: sh / 2 - ((b.y0 + b.y1) / 2) * s });
    this.redraw();
  }

  get scale() {
    return this.stage.scaleX();
  }

  /** Screen (container) pixels -> image pixels. */
  toImage(sx, sy) {
    const p = this.stage.position();
    return { x: (sx - p.x) / this.scale, y: (sy - p.y) / this.scale };
  }

  /** Image pixels -> page coordinates (what a mouse event or Playwright's mouse uses). */
  toPage(x, y) {
    const r = this.container.getBoundingClientRect();
    const p = this.stage.position();
    return { x: r.left + p.x + x * this.scale, y: r.top + p.y + y * this.scale };
  }

  pointer(evt) {
    const r = this.container.getBoundingClientRect();
    return this.toImage(evt.clientX - r.left, evt.clientY - r.top);
  }

  _bindPanZoom() {
    const el = this.container;
    el.addEventListener("wheel", (e) => {
      e.preventDefault();
      const r = el.getBoundingClientRect();
      const sx = e.clientX - r.left, sy = e.clientY - r.top;
      const at = this.toImage(sx, sy);
      const s = Math.min(64, Math.max(0.02, this.scale * Math.exp(-e.deltaY * 0.0015)));
      this.stage.scale({ x: s, y: s });
      this.stage.position({ x: sx - at.x * s, y: sy - at.y * s });
      this.redraw();
    }, { passive: false });
    let pan = null;
    el.addEventListener("mousedown", (e) => {
      if (e.button === 1 || (e.button === 0 && e.altKey)) {
        e.preventDefault();
        e.stopImmediatePropagation();
        pan = { x: e.clientX, y: e.clientY, p: this.stage.position() };
      }
    }, true);
    window.addEventListener("mousemove", (e) => {
      if (!pan) return;
      this.stage.position({ x: pan.p.x + e.clientX - pan.x, y: pan.p.y + e.clientY - pan.y });
      this.stage.batchDraw();
    });
    window.addEventListener("mouseup", () => { pan = null; });
  }

  maskOf(region) {
    let m = this.masks.get(region);
    if (!m) { m = rleDecode(region.rle); this.masks.set(region, m); }
    return m;
  }

  /** A mask drawn as one bitmap: its fill, and its outline (the pixels on its edge) in a second bitmap,
   * dashed for the AI's regions (every other run of 3 pixels along the edge), solid for a person's. */
  _maskCanvas(region, color) {
    const key = region.rle.counts + color + region.source;
    const cached = this.maskCanvases.get(region);
    if (cached && cached.key === key) return cached.canvas;
    const [h, w] = region.rle.size;
    const m = this.maskOf(region);
    const canvas = document.createElement("canvas");
    canvas.width = w;
    canvas.height = h;
    const ctx = canvas.getContext("2d");
    const img = ctx.createImageData(w, h);
    const r = parseInt(color.slice(1, 3), 16), g = parseInt(color.slice(3, 5), 16), b = parseInt(color.slice(5, 7), 16);
    for (let i = 0; i < m.length; i++) if (m[i]) {
      img.data[4 * i] = r; img.data[4 * i + 1] = g; img.data[4 * i + 2] = b; img.data[4 * i + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
    const edge = document.createElement("canvas");
    edge.width = w;
    edge.height = h;
    const ectx = edge.getContext("2d");
    const out = ectx.createImageData(w, h);
    const dashed = region.source === "ai";
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const i = y * w + x;
        if (!m[i]) continue;
        const border = x === 0 || y === 0 || x === w - 1 || y === h - 1 || !m[i - 1] || !m[i + 1] || !m[i - w] || !m[i + w];
        if (!border || (dashed && (x + y) % 6 >= 3)) continue;
        out.data[4 * i] = r; out.data[4 * i + 1] = g; out.data[4 * i + 2] = b; out.data[4 * i + 3] = 255;
      }
    }
    ectx.putImageData(out, 0, 0);
    this.maskCanvases.set(region, { key, canvas, edge });
    return canvas;
  }

  /** The SAM mask under the cursor (Uint8Array, row-major, the image's size), or null to clear it. */
  setPreview(mask) {
    this.previewLayer.destroyChildren();
    if (mask) {
      const canvas = this._previewCanvas || (this._previewCanvas = document.createElement("canvas"));
      canvas.width = this.width;
      canvas.height = this.height;
      const ctx = canvas.getContext("2d");
      const img = ctx.createImageData(this.width, this.height);
      for (let i = 0; i < mask.length; i++) if (mask[i]) {
        img.data[4 * i] = 86; img.data[4 * i + 1] = 180; img.data[4 * i + 2] = 233; img.data[4 * i + 3] = 255;
      }
      ctx.putImageData(img, 0, 0);
      this.previewLayer.add(new Konva.Image({ image: canvas, x: 0, y: 0, width: this.width, height: this.height, opacity: 0.45 }));
    }
    this.previewLayer.batchDraw();
  }

  /** Draw every visible region; handles only on the selected one (when editable). */
  render(state) {
    this.state = state;
    this.renderRegions();
    this.renderEdit();
    this.renderLabels();
  }

  /** Regions only: cheap enough to call on every mouse move of a vertex drag (handles stay alive). */
  renderRegions() {
    const { regions, selected = -1, hidden = new Set() } = this.state;
    this.regionLayer.destroyChildren();
    const view = this;
    regions.forEach((region, index) => {
      if (hidden.has(region.id)) return;
      const color = classColor(this.schema, region.label);
      const isSel = index === selected;
      const ai = region.source === "ai";
      if (region.kind === "mask" && region.rle) {
        this.regionLayer.add(new Konva.Image({
          image: this._maskCanvas(region, color), x: 0, y: 0, width: this.width, height: this.height,
          opacity: isSel ? this.selectedOpacity : this.fillOpacity, listening: false, perfectDrawEnabled: false,
        }));
        this.regionLayer.add(new Konva.Image({
          image: this.maskCanvases.get(region).edge, x: 0, y: 0, width: this.width, height: this.height,
          opacity: 1, listening: false, perfectDrawEnabled: false, name: ai ? "mask-edge ai" : "mask-edge human",
        }));
      }
      const rs = rings(region);
      if (!rs.length) return;
      const shape = new Konva.Shape({
        listening: false,
        perfectDrawEnabled: false,
        sceneFunc(ctx) {
          const c = ctx._context;
          const s = view.scale;
          c.beginPath();
          for (const ring of rs) {
            ring.forEach(([x, y], i) => (i ? c.lineTo(x, y) : c.moveTo(x, y)));
            c.closePath();
          }
          if (region.kind !== "mask") {
            c.globalAlpha = isSel ? view.selectedOpacity : view.fillOpacity;
            c.fillStyle = color;
            c.fill("evenodd");
          }
          c.globalAlpha = 1;
          // A dark halo under the stroke, so it reads on any image; AI dashed, human solid.
          c.setLineDash([]);
          c.lineWidth = (isSel ? 5 : 4) / s;
          c.strokeStyle = "rgba(0,0,0,0.7)";
          c.stroke();
          c.setLineDash(ai ? [6 / s, 4 / s] : []);
          c.lineWidth = (isSel ? 3 : 2) / s;
          c.strokeStyle = color;
          c.stroke();
          c.setLineDash([]);
        },
      });
      this.regionLayer.add(shape);
    });
    this.regionLayer.batchDraw();
  }

  renderEdit() {
    const { regions, selected = -1, hidden = new Set(), editable = false, pins = [], draft = null, locked = new Set() } = this.state;
    this.editLayer.destroyChildren();
    for (const pin of pins) this._pin(pin);
    // Handles above pins: a pin at a region's corner must not cover the vertex under it.
    if (editable && selected >= 0 && regions[selected] && !hidden.has(regions[selected].id) && !locked.has(regions[selected].id)) {
      this._handles(regions[selected], selected);
    }
    if (draft) this._draft(draft);
    this.editLayer.batchDraw();
  }

  redraw() {
    // Past 1:1 the pixels are shown as squares (no smoothing), as an annotator needs to see edges.
    const smooth = this.scale < 1;
    for (const layer of [this.imageLayer, this.regionLayer, this.previewLayer]) layer.imageSmoothingEnabled(smooth);
    if (this.state) this.render(this.state);
    else this.stage.batchDraw();
  }

  /** The class name under the pointer (hit-tested once per animation frame). */
  _bindHover() {
    let pending = null;
    this.container.addEventListener("mousemove", (e) => {
      if (e.buttons) return;
      const first = !pending;
      pending = this.pointer(e);
      if (!first) return;
      requestAnimationFrame(() => {
        const p = pending;
        pending = null;
        if (!this.state) return;
        const { regions, hidden = new Set() } = this.state;
        let label = null;
        for (let i = regions.length - 1; i >= 0; i--) {
          const r = regions[i];
          if (hidden.has(r.id) || !regionContains(r, p.x, p.y, this.masks)) continue;
          label = { x: p.x, y: p.y, text: `${r.label}${r.source === "ai" ? " (AI)" : ""}`, color: classColor(this.schema, r.label) };
          break;
        }
        if (label?.text === this.hoverLabel?.text && label && Math.hypot(label.x - this.hoverLabel.x, label.y - this.hoverLabel.y) * this.scale < 2) return;
        this.hoverLabel = label;
        this.container.dataset.hoverLabel = label?.text || "";
        this.renderLabels();
      });
    });
    this.container.addEventListener("mouseleave", () => { this.hoverLabel = null; this.container.dataset.hoverLabel = ""; this.renderLabels(); });
  }

  _tag(x, y, text, color) {
    const s = this.scale;
    const tag = new Konva.Label({ x, y, listening: false });
    tag.add(new Konva.Tag({ fill: "rgba(0,0,0,0.75)", stroke: color, strokeWidth: 1 / s, cornerRadius: 2 / s }));
    tag.add(new Konva.Text({ text, fontSize: 12 / s, padding: 3 / s, fill: "#ffffff" }));
    this.labelLayer.add(tag);
  }

  /** Class names: on the selected region (its top-left corner) and under the pointer. */
  renderLabels() {
    this.labelLayer.destroyChildren();
    const { regions = [], selected = -1, hidden = new Set() } = this.state || {};
    const sel = regions[selected];
    if (sel && !hidden.has(sel.id)) {
      const b = regionBounds(sel);
      if (b) this._tag(b.x0, Math.max(0, b.y0 - 20 / this.scale), `${sel.label}${sel.source === "ai" ? " (AI)" : ""}`, classColor(this.schema, sel.label));
    }
    const hov = this.hoverLabel;
    if (hov && !(sel && hov.text.startsWith(sel.label) && regionContains(sel, hov.x, hov.y, this.masks))) {
      this._tag(hov.x + 12 / this.scale, hov.y + 12 / this.scale, hov.text, hov.color);
    }
    this.container.dataset.selectedLabel = sel ? sel.label : "";
    this.labelLayer.batchDraw();
  }

  _handles(region, index) {
    const r = 5 / this.scale;
    (region.polygons || []).forEach((poly, pi) => {
      [poly.exterior, ...(poly.holes || [])].forEach((ring, ri) => {
        ring.forEach(([x, y], vi) => {
          const handle = new Konva.Circle({
            x, y, radius: r, fill: "#ffffff", stroke: "#000000", strokeWidth: 1.5 / this.scale,
            draggable: true, name: "vertex", perfectDrawEnabled: false,
          });
          handle.setAttr("vertex", { index, pi, ri, vi });
          const clamp = () => {
            const p = handle.position();
            const cx = Math.min(this.width, Math.max(0, p.x)), cy = Math.min(this.height, Math.max(0, p.y));
            handle.position({ x: cx, y: cy });
            return [cx, cy];
          };
          handle.on("dragstart", () => this.onVertexDrag?.({ index, pi, ri, vi }, null, "start"));
          handle.on("dragmove", () => this.onVertexDrag?.({ index, pi, ri, vi }, clamp(), "move"));
          handle.on("dragend", () => this.onVertexDrag?.({ index, pi, ri, vi }, clamp(), "end"));
          handle.on("dblclick", (e) => { e.cancelBubble = true; this.onVertexDelete?.({ index, pi, ri, vi }); });
          handle.on("mouseenter", () => { this.container.style.cursor = "move"; });
          handle.on("mouseleave", () => { this.container.style.cursor = ""; });
          this.editLayer.add(handle);
        });
      });
    });
  }

  _pin(pin) {
    const s = this.scale;
    const group = new Konva.Group({ x: pin.x, y: pin.y, name: "pin" });
    group.add(new Konva.Circle({ radius: 9 / s, fill: pin.resolved ? "#777777" : "#D55E00", stroke: "#ffffff", strokeWidth: 2 / s }));
    group.add(new Konva.Text({ text: String(pin.n), fontSize: 11 / s, fill: "#ffffff", x: -3.5 / s, y: -5.5 / s, listening: false }));
    group.on("click", () => pin.onClick?.());
    this.editLayer.add(group);
  }

  _draft(d) {
    const s = this.scale;
    if (d.points?.length) {
      this.editLayer.add(new Konva.Line({
        points: d.points.flat(), stroke: "#ffffff", strokeWidth: 2 / s, dash: [4 / s, 3 / s],
        closed: false, listening: false,
      }));
      for (const [x, y] of d.points) this.editLayer.add(new Konva.Circle({ x, y, radius: 4 / s, fill: "#ffffff", listening: false }));
    }
    for (const [i, [x, y]] of (d.clicks || []).entries()) {
      this.editLayer.add(new Konva.Circle({
        x, y, radius: 5 / s, fill: d.labels[i] ? "#009E73" : "#D55E00", stroke: "#fff", strokeWidth: 1.5 / s, listening: false,
      }));
    }
    if (d.box) {
      const [x0, y0, x1, y1] = d.box;
      this.editLayer.add(new Konva.Rect({
        x: Math.min(x0, x1), y: Math.min(y0, y1), width: Math.abs(x1 - x0), height: Math.abs(y1 - y0),
        stroke: "#ffffff", strokeWidth: 1.5 / s, dash: [4 / s, 3 / s], listening: false,
      }));
    }
    if (d.brush) {
      this.editLayer.add(new Konva.Circle({ x: d.brush.x, y: d.brush.y, radius: d.brush.r, stroke: "#ffffff", strokeWidth: 1 / s, listening: false }));
    }
  }
}
