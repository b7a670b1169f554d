// Gigapixel images in the Konva view: Deep Zoom tiles drawn under the regions at the zoom in view, and
// regions drawn with a spatial index and levels of detail so that 10,000 of them pan smoothly.
// Coordinates stay full-resolution image pixels everywhere (the view's stage transform maps them).
import Konva from "konva";
import { classColor, rings } from "../view.js";

const CELL = 1024; // spatial index cell, in image pixels at the scale of the index (see below)
const MAX_TILES_CACHED = 600;

/** A ready pyramid gets tiles drawn in `view` (true), an ordinary image nothing (false). `image`: the
 * image row when the caller has it (the task screen reads it beside the task's other requests). */
export async function attachPyramid(view, imageId, image = null) {
  if (!image) {
    const response = await fetch(`/api/v1/images/${imageId}/`, { credentials: "same-origin" });
    if (!response.ok) return false;
    image = await response.json();
  }
  if (!image.pyramid_status) return false;
  view.pyramid = new TileLayer(view, imageId, image);
  installRegionLod(view);
  // a zoom redraws the regions (view.redraw); the tiles of the new zoom must follow
  const redraw = view.redraw.bind(view);
  view.redraw = () => { redraw(); view.imageLayer.batchDraw(); };
  view.fit();
  return true;
}

class TileLayer {
  constructor(view, imageId, image) {
    this.view = view;
    this.imageId = imageId;
    this.ready = image.pyramid_status === "ready";
    this.tile = 256;
    this.top = Math.ceil(Math.log2(Math.max(view.width, view.height)));
    this.cache = new Map(); // "level/col_row" -> HTMLImageElement (insertion order = age)
    const layer = this;
    this.shape = new Konva.Shape({
      listening: false,
      perfectDrawEnabled: false,
      sceneFunc(ctx) { layer.draw(ctx._context); },
    });
    view.imageLayer.add(this.shape); // nothing is drawn while the pyramid is built (pyramid_status)
  }

  levelSize(level) {
    const s = 2 ** (this.top - level);
    return [Math.ceil(this.view.width / s), Math.ceil(this.view.height / s)];
  }

  /** The tile image if loaded; starts loading it otherwise. */
  get(level, col, row) {
    const key = `${level}/${col}_${row}`;
    let img = this.cache.get(key);
    if (!img) {
      img = new window.Image();
      img.decoding = "async";
      img.onload = () => { img.ok = true; this.view.imageLayer.batchDraw(); };
      img.src = `/api/v1/images/${this.imageId}/tiles/${level}/${col}_${row}.jpg`;
      this.cache.set(key, img);
      if (this.cache.size > MAX_TILES_CACHED) this.cache.delete(this.cache.keys().next().value);
    }
    return img.ok ? img : null;
  }

  /** Image-pixel rectangle in view. */
  visible() {
    const v = this.view;
    const a = v.toImage(0, 0), b = v.toImage(v.stage.width(), v.stage.height());
    return { x0: Math.max(0, a.x), y0: Math.max(0, a.y), x1: Math.min(v.width, b.x), y1: Math.min(v.height, b.y) };
  }

  /** The view window a click segments (segment/'s `window`): whole image pixels, inside the image. */
  viewWindow() {
    const b = this.visible();
    const x = Math.max(0, Math.floor(b.x0)), y = Math.max(0, Math.floor(b.y0));
    const w = Math.max(1, Math.min(this.view.width - x, Math.ceil(b.x1) - x));
    const h = Math.max(1, Math.min(this.view.height - y, Math.ceil(b.y1) - y));
    return { x, y, width: w, height: h };
  }

  draw(c) {
    if (!this.ready) return;
    const scale = this.view.scale * (window.devicePixelRatio || 1);
    // the level whose pixels are at least as fine as the screen's
    const level = Math.max(0, Math.min(this.top, this.top + Math.ceil(Math.log2(Math.max(scale, 1e-6)))));
    const box = this.visible();
    if (box.x1 <= box.x0 || box.y1 <= box.y0) return;
    // coarser levels first, as placeholders under the tiles still loading (at most 3 levels up); the
    // level 2 up (1/16 of the tiles, one or a few for the view) is requested before the view's own, so
    // the view is never blank while its tiles come
    const placeholder = Math.max(0, level - 2);
    if (placeholder < level) this.drawLevel(c, placeholder, box, false, true);
    for (let l = Math.max(0, level - 3); l <= level; l++) this.drawLevel(c, l, box, l === level);
  }

  /** Draws the level's tiles in `box` that are loaded; `load`: requests the others, the view's centre
   * first (the browser sends requests in this order); `loadOnly`: requests without drawing. */
  drawLevel(c, level, box, load, loadOnly = false) {
    const [lw, lh] = this.levelSize(level);
    const fx = this.view.width / lw, fy = this.view.height / lh;
    const t = this.tile;
    const c0 = Math.floor(box.x0 / fx / t), c1 = Math.min(Math.ceil(lw / t) - 1, Math.floor(box.x1 / fx / t));
    const r0 = Math.floor(box.y0 / fy / t), r1 = Math.min(Math.ceil(lh / t) - 1, Math.floor(box.y1 / fy / t));
    const mc = (c0 + c1) / 2, mr = (r0 + r1) / 2;
    const cells = [];
    for (let row = r0; row <= r1; row++) for (let col = c0; col <= c1; col++) cells.push([col, row]);
    if (load || loadOnly) cells.sort((a, b) => Math.hypot(a[0] - mc, a[1] - mr) - Math.hypot(b[0] - mc, b[1] - mr));
    for (const [col, row] of cells) {
      const key = `${level}/${col}_${row}`;
      const img = load || loadOnly ? this.get(level, col, row) : (this.cache.get(key)?.ok ? this.cache.get(key) : null);
      if (!img || loadOnly) continue;
      const x = col * t * fx, y = row * t * fy;
      c.drawImage(img, x, y, img.naturalWidth * fx, img.naturalHeight * fy);
    }
  }
}

// --- regions: spatial index and levels of detail ----------------------------------------------------
function boundsOf(region) {
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (const ring of rings(region)) for (const [x, y] of ring) {
    if (x < x0) x0 = x; if (y < y0) y0 = y; if (x > x1) x1 = x; if (y > y1) y1 = y;
  }
  return x0 === Infinity ? null : { x0, y0, x1, y1 };
}

/** A grid over the image: cell -> indices of the regions whose bounds touch it. Rebuilt when the
 * regions array changes (a new state), not on pan or zoom. */
function buildIndex(regions, width, height) {
  const cell = Math.max(CELL, Math.ceil(Math.max(width, height) / 256));
  const cols = Math.ceil(width / cell), rows = Math.ceil(height / cell);
  const cells = new Map();
  const bounds = regions.map(boundsOf);
  bounds.forEach((b, i) => {
    if (!b) return;
    for (let r = Math.max(0, Math.floor(b.y0 / cell)); r <= Math.min(rows - 1, Math.floor(b.y1 / cell)); r++) {
      for (let c = Math.max(0, Math.floor(b.x0 / cell)); c <= Math.min(cols - 1, Math.floor(b.x1 / cell)); c++) {
        const k = r * cols + c;
        let list = cells.get(k);
        if (!list) cells.set(k, (list = []));
        list.push(i);
      }
    }
  });
  return { regions, bounds, cells, cell, cols, rows };
}

function inView(index, box) {
  const { cell, cols, rows, cells } = index;
  const seen = new Set();
  for (let r = Math.max(0, Math.floor(box.y0 / cell)); r <= Math.min(rows - 1, Math.floor(box.y1 / cell)); r++) {
    for (let c = Math.max(0, Math.floor(box.x0 / cell)); c <= Math.min(cols - 1, Math.floor(box.x1 / cell)); c++) {
      for (const i of cells.get(r * cols + c) || []) seen.add(i);
    }
  }
  return seen;
}

/** Replace the view's region drawing: one shape draws only the regions in view; a region smaller than
 * 4 screen pixels is a dot, one under 40 a box-simplified outline (every k-th vertex), larger ones whole;
 * the selected region always whole (its vertex handles are the view's own, on it alone). */
function installRegionLod(view) {
  let index = null;
  const shape = new Konva.Shape({
    listening: false,
    perfectDrawEnabled: false,
    sceneFunc(ctx) {
      const state = view.state;
      if (!state) return;
      if (!index) index = buildIndex(state.regions, view.width, view.height);
      drawRegions(ctx._context, view, index, state);
    },
  });
  view.regionLayer.add(shape);
  // called when the regions change (an edit, a new state), not on pan or zoom: the index is rebuilt
  view.renderRegions = function renderRegions() {
    index = null;
    this.regionLayer.batchDraw();
  };
}

const BITMAP_MAX = 4096; // zoomed out this far, the regions are drawn once per zoom into a bitmap

function drawRegions(c, view, index, state) {
  const { selected = -1 } = state;
  const s = view.scale;
  if (view.width * s <= BITMAP_MAX && view.height * s <= BITMAP_MAX) {
    // the whole image fits a bitmap at this zoom: every region but the selected one drawn once (per
    // zoom and per edit), so a pan frame is one drawImage whatever the number of regions
    if (!index.bitmap || index.bitmapScale !== s) {
      const canvas = document.createElement("canvas");
      canvas.width = Math.max(1, Math.ceil(view.width * s));
      canvas.height = Math.max(1, Math.ceil(view.height * s));
      const cc = canvas.getContext("2d");
      cc.scale(s, s);
      drawUnselected(cc, view, index, state, { x0: 0, y0: 0, x1: view.width, y1: view.height });
      index.bitmap = canvas;
      index.bitmapScale = s;
    }
    c.drawImage(index.bitmap, 0, 0, view.width, view.height);
  } else {
    drawUnselected(c, view, index, state, view.pyramid.visible());
  }
  drawSelected(c, view, index, state, selected);
}

function drawUnselected(c, view, index, state, box) {
  const { selected = -1, hidden = new Set() } = state;
  const s = view.scale;
  const ids = inView(index, box);
  const byColor = new Map();
  for (const i of ids) {
    const region = index.regions[i];
    const b = index.bounds[i];
    if (!b || hidden.has(region.id) || i === selected) continue;
    if (b.x1 < box.x0 || b.x0 > box.x1 || b.y1 < box.y0 || b.y0 > box.y1) continue;
    const color = classColor(view.schema, region.label);
    let list = byColor.get(color);
    if (!list) byColor.set(color, (list = []));
    list.push(i);
  }
  // one path per class colour: a few fills and strokes per frame, whatever the count
  for (const [color, list] of byColor) {
    c.beginPath();
    for (const i of list) {
      const b = index.bounds[i];
      const side = Math.max(b.x1 - b.x0, b.y1 - b.y0) * s;
      if (side < 4) {
        c.rect(b.x0, b.y0, Math.max(b.x1 - b.x0, 2 / s), Math.max(b.y1 - b.y0, 2 / s));
        continue;
      }
      const step = side < 40 ? Math.max(1, Math.floor(rings(index.regions[i])[0].length / 8)) : 1;
      for (const ring of rings(index.regions[i])) {
        for (let k = 0; k < ring.length; k += step) (k ? c.lineTo(ring[k][0], ring[k][1]) : c.moveTo(ring[k][0], ring[k][1]));
        c.closePath();
      }
    }
    c.globalAlpha = view.fillOpacity;
    c.fillStyle = color;
    c.fill("evenodd");
    c.globalAlpha = 1;
    c.lineWidth = 1.5 / s;
    c.strokeStyle = color;
    c.stroke();
  }
}

function drawSelected(c, view, index, state, selected) {
  const { hidden = new Set() } = state;
  const s = view.scale;
  const sel = index.regions[selected];
  if (sel && !hidden.has(sel.id)) {
    const color = classColor(view.schema, sel.label);
    c.beginPath();
    for (const ring of rings(sel)) {
      ring.forEach(([x, y], k) => (k ? c.lineTo(x, y) : c.moveTo(x, y)));
      c.closePath();
    }
    c.globalAlpha = view.selectedOpacity;
    c.fillStyle = color;
    c.fill("evenodd");
    c.globalAlpha = 1;
    c.lineWidth = 5 / s;
    c.strokeStyle = "rgba(0,0,0,0.7)";
    c.stroke();
    c.lineWidth = 3 / s;
    c.strokeStyle = color;
    c.stroke();
  }
}
