// Mouse tools on the canvas: select (and vertex editing), polygon, click-to-segment (points and box),
// brush and eraser. Each finished gesture is one undo step. The tool in hand and the drawing under way
// are the store's "tool" and "draft" slices (the toolbar and the canvas follow them); a draft changed
// in place is redrawn with redraw().
import * as api from "./api.js";
import { announce, errorText } from "./dom.js";
import { regionContains, rings } from "./view.js";
import { rleDecode, rleEncode } from "./rle.js";
import { decode as browserDecode, maskToLogits } from "./samdecode.js";

export const PREVIEW_KEY = "lh.samPreview"; // the View panel's "mask under the cursor" toggle: "off" or on
const HOVER_MS = 50; // the pointer rests this long before its mask is decoded

// The tools (their keys are in keymap.js: "<name>-tool").
export const TOOLS = {
  select: { title: "Select and edit vertices" },
  segment: { title: "Click to segment: left click object, right click background" },
  box: { title: "Box to segment" },
  polygon: { title: "Draw a polygon (click vertices; N or Enter finishes)" },
  brush: { title: "Brush (paint the selected mask)" },
  eraser: { title: "Eraser (erase from the selected mask)" },
  pin: { title: "Pin an issue to a point or region (review)" },
};

function distToSegment(px, py, [ax, ay], [bx, by]) {
  const dx = bx - ax, dy = by - ay;
  const t = Math.max(0, Math.min(1, ((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy || 1)));
  return { d: Math.hypot(px - (ax + t * dx), py - (ay + t * dy)), x: ax + t * dx, y: ay + t * dy };
}

function ringAt(region, pi, ri) {
  const poly = region.polygons[pi];
  return ri === 0 ? poly.exterior : poly.holes[ri - 1];
}

/** A polygon region rasterised to a mask (pixel centres inside, even-odd), for brushing. */
function polygonToMask(region, w, h) {
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

export class Tools {
  constructor(screen) {
    this.s = screen; // {store, view, editor, selected, select(i), currentLabel, readOnly, addPin(x,y,regionId)}
    this.brushRadius = 12;
    this.segment = null; // {regionId, clicks, labels, maskInputId}
    const el = screen.view.container;
    el.addEventListener("mousedown", (e) => this.down(e));
    el.addEventListener("contextmenu", (e) => e.preventDefault());
    el.addEventListener("dblclick", (e) => this.dblclick(e));
    this._move = (e) => this.move(e);
    this._up = (e) => this.up(e);
    window.addEventListener("mousemove", this._move);
    window.addEventListener("mouseup", this._up);
    el.addEventListener("mouseleave", () => this.clearPreview());
    this._keyup = (e) => {
      if (e.key !== "Control" || !this.segment?.held) return;
      const seg = this.segment;
      seg.held = false;
      this.clickedAt = performance.now();
      this.runSegment({ points: seg.clicks, point_labels: seg.labels }, false);
    };
    window.addEventListener("keyup", this._keyup);
    this.preview = null; // {x, y, out}: the browser's mask for a positive click at the resting cursor
  }

  destroy() {
    window.removeEventListener("mousemove", this._move);
    window.removeEventListener("mouseup", this._up);
    window.removeEventListener("keyup", this._keyup);
  }

  get view() { return this.s.view; }
  get editor() { return this.s.editor; }
  get tool() { return this.s.store.get("tool"); }
  set tool(name) { this.s.store.set({ tool: name }); }
  get draft() { return this.s.store.get("draft"); }
  set draft(d) { this.s.store.set({ draft: d }); }

  /** The draft changed in place (a point added, a box dragged, the brush moved): the canvas redraws. */
  redraw() { this.s.store.touch("draft"); }

  use(tool) {
    this.finish();
    this.clearPreview();
    this.tool = tool;
    if (tool === "segment" || tool === "box") this.s.decoder?.load(); // the browser decoder, in the background
    this.view.container.dataset.tool = tool;
  }

  /** Finish the current drawing (N, Enter, tool change). */
  finish() {
    if (this.tool === "polygon" && this.draft?.points?.length >= 3) {
      const points = this.draft.points;
      this.editor.checkpoint();
      this.editor.regions.push({
        id: this.editor.newId(), label: this.s.currentLabel(), kind: "polygon",
        polygons: [{ exterior: points, holes: [] }], source: "human",
      });
      this.s.selected = this.editor.regions.length - 1;
      this.editor.changed();
    }
    this.draft = null;
    this.segment = null;
    this.redraw();
  }

  cancel() {
    // Esc drops the region the clicks were building, or gives back the shape of the one they refined.
    for (let i = 0; i < (this.segment?.steps || 0); i++) this.editor.undo();
    this.draft = null;
    this.segment = null;
    this.redraw();
  }

  hit(x, y) {
    const { regions } = this.editor;
    for (let i = regions.length - 1; i >= 0; i--) {
      if (this.s.shownHidden.has(regions[i].id)) continue;
      if (regionContains(regions[i], x, y, this.view.masks)) return i;
    }
    return -1;
  }

  down(e) {
    if (e.button === 1 || e.altKey) return;
    if (e.target.closest && !e.target.closest("canvas")) return;
    const p = this.view.pointer(e);
    // Vertex handles (Konva) take their own drags.
    const shape = this.view.stage.getIntersection(this.view.stage.getPointerPosition() || { x: -1, y: -1 });
    if (shape && (shape.name() === "vertex" || shape.getParent()?.name() === "pin")) return;
    const ro = this.s.readOnly;
    if (this.tool === "pin") {
      if (e.button !== 0) return;
      e.preventDefault(); // the mousedown would focus the canvas after the pin focused its comment box
      const i = this.hit(p.x, p.y);
      this.s.addPin(p.x, p.y, i >= 0 ? this.editor.regions[i].id : "");
      return;
    }
    if (ro || this.tool === "select") {
      if (e.button !== 0) return;
      if (!ro && this.tryInsertVertex(p)) return;
      this.s.select(this.hit(p.x, p.y));
      return;
    }
    if (this.tool === "polygon") {
      if (e.button !== 0) return;
      this.draft = this.draft || { points: [] };
      const first = this.draft.points[0];
      if (first && this.draft.points.length >= 3 && Math.hypot(first[0] - p.x, first[1] - p.y) * this.view.scale < 8) {
        this.finish();
        return;
      }
      this.draft.points.push([this.clampX(p.x), this.clampY(p.y)]);
      this.redraw();
      return;
    }
    if (this.tool === "segment") {
      e.preventDefault();
      this.segmentClick(p, e.button === 2 ? 0 : 1, e.ctrlKey, e.shiftKey);
      return;
    }
    if (this.tool === "box") {
      this.draft = { box: [p.x, p.y, p.x, p.y] };
      return;
    }
    if (this.tool === "brush" || this.tool === "eraser") {
      this.startStroke(p);
    }
  }

  clampX(x) { return Math.min(this.view.width, Math.max(0, x)); }
  clampY(y) { return Math.min(this.view.height, Math.max(0, y)); }

  move(e) {
    if (this.tool === "segment" && !e.buttons && e.target.closest?.("canvas")) this.hover(this.view.pointer(e));
    if (this.tool === "box" && this.draft?.box && e.buttons & 1) {
      const p = this.view.pointer(e);
      this.draft.box[2] = p.x;
      this.draft.box[3] = p.y;
      this.redraw();
    } else if ((this.tool === "brush" || this.tool === "eraser") && e.target.closest?.("canvas")) {
      const p = this.view.pointer(e);
      if (this.stroke) this.paint(p);
      this.draft = { brush: { x: p.x, y: p.y, r: this.brushRadius } };
      this.redraw();
    }
  }

  up() {
    if (this.tool === "box" && this.draft?.box) {
      const [x0, y0, x1, y1] = this.draft.box;
      this.draft = null;
      const box = [Math.min(x0, x1), Math.min(y0, y1), Math.max(x0, x1), Math.max(y0, y1)].map((v, i) => (i % 2 ? this.clampY(v) : this.clampX(v)));
      if (box[2] - box[0] > 2 && box[3] - box[1] > 2) this.runSegment({ box }, true);
      this.redraw();
    }
    if (this.stroke) this.endStroke();
  }

  dblclick(e) {
    if (this.tool !== "polygon" || !this.draft) return;
    e.preventDefault();
    this.finish();
  }

  /** A click on an edge of the selected polygon inserts a vertex there. */
  tryInsertVertex(p) {
    const i = this.s.selected;
    const region = this.editor.regions[i];
    if (!region || region.kind !== "polygon" || this.s.locked.has(region.id)) return false;
    const tol = 6 / this.view.scale;
    let best = null;
    region.polygons.forEach((poly, pi) => {
      [poly.exterior, ...(poly.holes || [])].forEach((ring, ri) => {
        ring.forEach((a, vi) => {
          const b = ring[(vi + 1) % ring.length];
          const r = distToSegment(p.x, p.y, a, b);
          const nearVertex = Math.hypot(a[0] - p.x, a[1] - p.y) < tol || Math.hypot(b[0] - p.x, b[1] - p.y) < tol;
          if (r.d < tol && !nearVertex && (!best || r.d < best.d)) best = { ...r, pi, ri, vi };
        });
      });
    });
    if (!best) return false;
    this.editor.checkpoint();
    ringAt(region, best.pi, best.ri).splice(best.vi + 1, 0, [best.x, best.y]);
    this.editor.changed();
    this.redraw();
    return true;
  }

  vertexDrag(v, xy, phase) {
    const region = this.editor.regions[v.index];
    if (phase === "start") { this.editor.checkpoint(); return; }
    const ring = ringAt(region, v.pi, v.ri);
    ring[v.vi] = xy;
    if (phase === "move") this.s.renderLight(v.index);
    else { this.editor.changed(); this.redraw(); }
  }

  vertexDelete(v) {
    const region = this.editor.regions[v.index];
    const ring = ringAt(region, v.pi, v.ri);
    if (ring.length <= 3) { announce("A ring keeps at least three vertices."); return; }
    this.editor.checkpoint();
    ring.splice(v.vi, 1);
    this.editor.changed();
    this.redraw();
  }

  // --- the mask under the cursor (SAM's demo): decoded in the browser while the pointer rests -----------
  previewOn() {
    return localStorage.getItem(PREVIEW_KEY) !== "off" && !this.s.readOnly && !this.segment?.clicks?.length &&
      Boolean(this.s.decoder?.browserChosen());
  }

  /** The pointer moved over the image with the segment tool: decode there once it rests (50 ms), one
   * decode at a time, always the latest position. */
  hover(p) {
    clearTimeout(this.hoverTimer);
    if (!this.previewOn()) { if (this.preview) this.clearPreview(); return; }
    this.hoverTimer = setTimeout(() => { this.hoverAt = p; if (!this.hoverBusy) this.runPreview(); }, HOVER_MS);
  }

  async runPreview() {
    this.hoverBusy = true;
    try {
      while (this.hoverAt) {
        const { x, y } = this.hoverAt;
        this.hoverAt = null;
        let out;
        try {
          out = await browserDecode(this.s.task.image, { points: [[x, y]], point_labels: [1] }, null);
        } catch { return; } // the click path reports decoder errors; a preview just stops
        if (!this.previewOn() || this.tool !== "segment") continue;
        this.preview = { x, y, out };
        this.view.setPreview(out.mask.includes(1) ? out.mask : null);
        document.body.dataset.previewAt = `${x},${y}`;
        document.body.dataset.previewDone = String(Number(document.body.dataset.previewDone || 0) + 1);
      }
    } finally {
      this.hoverBusy = false;
    }
  }

  clearPreview() {
    clearTimeout(this.hoverTimer);
    this.hoverAt = null;
    if (!this.preview) return;
    this.preview = null;
    this.view.setPreview(null);
  }

  // --- click to segment: clicks accumulate on one region until N / Enter / Esc -----------------------
  /** The region a new chain of clicks corrects: the selected region when the click is inside it, else
   * the region under the click (topmost, shown, not locked). None: a new region. */
  refineTarget(p) {
    const { regions } = this.editor;
    const sel = regions[this.s.selected];
    if (sel && !this.s.locked.has(sel.id) && regionContains(sel, p.x, p.y, this.view.masks)) return sel;
    const i = this.hit(p.x, p.y);
    return i >= 0 && !this.s.locked.has(regions[i].id) ? regions[i] : null;
  }

  /** A region's current shape as a full-size mask (the prompt's context when refining it). */
  regionMask(region) {
    const { width: w, height: h } = this.view;
    if (region.kind === "mask" && region.rle) return this.view.masks.get(region) || rleDecode(region.rle);
    return polygonToMask(region, w, h);
  }

  segmentClick(p, label, hold = false, fresh = false) {
    this.clickedAt = performance.now();
    // The first positive click where the preview was decoded: that answer is this click's (the same
    // prompt to the same decoder), so it is taken at once.
    const shown = this.preview;
    this.clearPreview();
    const chained = Boolean(this.segment);
    let seg = this.segment;
    if (!seg) {
      seg = { clicks: [], labels: [], maskInputId: null, regionId: null, steps: 0 };
      // A click on a region corrects it (its id kept); Shift+click always starts a new region.
      const target = fresh ? null : this.refineTarget(p);
      if (target) {
        const mask = this.regionMask(target);
        if (mask.includes(1)) {
          seg.regionId = target.id;
          seg.label = target.label;
          seg.refine = { mask, rle: rleEncode(mask, this.view.height, this.view.width) };
        }
      }
    }
    const reuse = shown && !hold && label === 1 && !chained && !seg.refine && shown.x === p.x && shown.y === p.y ? shown.out : null;
    seg.clicks.push([p.x, p.y]);
    seg.labels.push(label);
    this.segment = seg;
    this.draft = { clicks: seg.clicks, labels: seg.labels };
    this.redraw();
    // Ctrl held (CVAT): the points gather, and are decoded together when Ctrl is released.
    seg.held = hold;
    if (hold) { announce(`${seg.clicks.length} point(s): release Ctrl to segment`); return; }
    this.runSegment({ points: seg.clicks, point_labels: seg.labels }, false, reuse);
  }

  async runSegment(prompt, fromBox, reuse = null) {
    const seg = fromBox ? { clicks: [], labels: [], maskInputId: null, regionId: null, steps: 0 } : this.segment;
    if (fromBox) this.segment = seg;
    const body = { ...prompt };
    // prompt.candidate (M): the same single click again, another of SAM's candidates, no previous mask
    const cycling = prompt.candidate != null;
    if (seg.maskInputId && !cycling) body.mask_input_id = seg.maskInputId;
    else if (seg.refine && !cycling) body.mask_rle = seg.refine.rle; // the region's shape, refined by the clicks
    if (seg.box) body.box = seg.box;
    if (fromBox) seg.box = prompt.box;
    const started = fromBox ? performance.now() : this.clickedAt;
    const seq = (this.seq = (this.seq || 0) + 1);
    const decoder = this.s.decoder;
    const service = this.s.interactiveService;
    if (service) { // the project's model service answers on the server, for the current class
      seg.path = "server";
      Object.assign(body, { service: service.id, label: this.s.currentLabel() });
      delete body.candidate;
    }
    // A chain of clicks stays where its first click was decoded: its previous mask lives there.
    // A gigapixel image: the server segments the view window (the chain keeps its first click's window).
    const pyramid = this.s.view.pyramid;
    if (pyramid) seg.window = seg.window || pyramid.viewWindow();
    if (!seg.path) seg.path = reuse ? "browser" : pyramid ? "server" : decoder.pick();
    const path = seg.path;
    const warm = decoder.state === "ready";
    announce(path === "browser" && !warm ? "Preparing this image for fast clicks (once per page)…" : "Segmenting…");
    let out;
    try {
      if (reuse) {
        out = reuse;
      } else if (path === "browser") {
        const previous = seg.lowRes || (seg.refine ? maskToLogits(seg.refine.mask, this.view.height, this.view.width) : null);
        out = await browserDecode(this.s.task.image, { points: prompt.points, point_labels: prompt.point_labels, box: seg.box, candidate: prompt.candidate }, cycling ? null : previous);
      } else {
        out = await api.post(`images/${this.s.task.image}/segment/`, pyramid ? { ...body, window: seg.window } : body);
      }
    } catch (err) {
      if (path === "browser" && decoder.mode === "auto" && !seg.lowRes) {
        decoder.state = "unavailable"; // auto falls back on the server for good on this page
        decoder.error = errorText(err);
        seg.path = "server";
        return this.runSegment(prompt, false);
      }
      if (path === "browser" && !seg.lowRes) seg.path = null; // the next click asks again
      announce(`Could not segment there: ${errorText(err)}`, "error");
      return;
    }
    if (seq !== this.seq || this.segment !== seg) return; // a newer click or a cancel superseded this answer
    seg.candidates = out.candidates || 1;
    seg.candidate = out.candidate || 0;
    // A class drawn as polygons only: the browser's mask becomes the polygons the server would have
    // answered for it (one simplifier and bound, polygonize/), so the click still costs no server decode.
    if (path === "browser" && !this.classTakesMasks(seg.label) && out.mask.includes(1)) {
      const [h, w] = out.size;
      try {
        out.polygons = (await api.post(`images/${this.s.task.image}/polygonize/`, { rle: rleEncode(out.mask, h, w) })).polygons;
      } catch (err) {
        announce(`Could not turn the mask into polygons: ${errorText(err)}`, "error");
        return;
      }
      if (seq !== this.seq || this.segment !== seg) return;
    }
    const inHand = performance.now() - started;
    // Timed from the click to the mask in hand; a first browser click that loaded the decoder and a
    // server answer that computed the embedding are one-off costs, not what a click costs.
    if (reuse) { decoder.last = { path: "preview", ms: inHand }; decoder.onChange?.(); } // not a decode's cost
    else if (path === "browser" ? warm : out.embedding !== "computed") decoder.record(path, inHand);
    else { decoder.last = { path, ms: inHand }; decoder.onChange?.(); }
    document.body.dataset.segmentDecoder = path;
    let shape;
    if (path === "browser") {
      seg.lowRes = out.lowRes;
      const [h, w] = out.size;
      if (out.polygons) shape = out.polygons.length ? { kind: "polygon", polygons: out.polygons } : null;
      else shape = out.mask.includes(1) ? { kind: "mask", rle: rleEncode(out.mask, h, w), mask: out.mask } : null;
    } else {
      seg.maskInputId = out.mask_input_id;
      const polygons = out.polygons.map((p) => ({ exterior: p.exterior, holes: p.holes || [] }));
      shape = polygons.length ? { kind: "polygon", polygons } : null;
    }
    if (!shape) {
      announce("No object found there: add a click, or try a box.");
      document.body.dataset.segmentDone = String(Number(document.body.dataset.segmentDone || 0) + 1);
      decoder.onChange?.();
      return;
    }
    const { regions } = this.editor;
    let index = regions.findIndex((r) => r.id === seg.regionId);
    this.editor.checkpoint();
    seg.steps += 1;
    if (index < 0) {
      seg.regionId = this.editor.newId();
      seg.created = true;
      regions.push({ id: seg.regionId, label: this.s.currentLabel(), kind: shape.kind, source: "human" });
      index = regions.length - 1;
    }
    const region = regions[index];
    region.kind = shape.kind;
    if (shape.kind === "mask") {
      delete region.polygons;
      region.rle = shape.rle;
      this.view.masks.set(region, shape.mask);
    } else {
      delete region.rle;
      region.polygons = shape.polygons;
    }
    this.s.selected = index;
    this.editor.changed();
    this.redraw();
    // Konva draws on the next animation frame: the mask is on screen when that frame has run.
    requestAnimationFrame(() => {
      const ms = Math.round(performance.now() - started);
      document.body.dataset.segmentDrawnMs = String(ms);
      document.body.dataset.segmentDone = String(Number(document.body.dataset.segmentDone || 0) + 1);
      const which = seg.candidates > 1 ? ` (mask ${seg.candidate + 1} of ${seg.candidates}: M for the next)` : "";
      const what = seg.refine ? `${seg.label} corrected` : "New region";
      announce(`${what} in ${ms} ms${which}.`);
    });
  }

  /** M: the region's single positive click answered by the next of SAM's candidate masks (best first,
   * by predicted IoU), as SAM's predictor gives three for an ambiguous click. */
  cycleCandidate() {
    const seg = this.segment;
    if (!seg || seg.clicks.length !== 1 || seg.labels[0] !== 1 || seg.box || !(seg.candidates > 1)) {
      announce("Other masks: only right after a single positive click (SAM gives three for it).");
      return;
    }
    this.clickedAt = performance.now();
    this.runSegment({ points: seg.clicks, point_labels: seg.labels, candidate: (seg.candidate + 1) % seg.candidates }, false);
  }

  classTakesMasks(label = null) {
    const cls = this.s.schema.find((c) => c.name === (label || this.s.currentLabel()));
    return !cls?.kinds || cls.kinds.includes("mask");
  }

  // --- brush and eraser on the selected mask (a polygon becomes a mask when painted) -----------------
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
  }

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
  }

  endStroke() {
    const { mask, index } = this.stroke;
    const region = this.editor.regions[index];
    region.rle = rleEncode(mask, this.view.height, this.view.width);
    this.view.masks.set(region, mask);
    this.stroke = null;
    this.editor.changed();
    this.redraw();
  }
}
