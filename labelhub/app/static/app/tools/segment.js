// Click to segment (mixed into Tools): clicks accumulate on one region until N / Enter / Esc, a box
// prompts SAM too, M cycles the candidates of a single click. Decoded in the browser or on the server
// (samdecode.js's DecodeChooser), or by the project's interactive model service.
import * as api from "../api.js";
import { announce, errorText } from "../dom.js";
import { rleDecode, rleEncode } from "../rle.js";
import { decode as browserDecode, maskToLogits } from "../samdecode.js";
import { regionContains } from "../view.js";
import { polygonToMask } from "./brush.js";

export const segmenting = {
  /** The region a new chain of clicks corrects: the selected region when the click is inside it, else
   * the region under the click (topmost, shown, not locked). None: a new region. */
  refineTarget(p) {
    const { regions } = this.editor;
    const sel = regions[this.s.selected];
    if (sel && !this.s.locked.has(sel.id) && regionContains(sel, p.x, p.y, this.view.masks)) return sel;
    const i = this.hit(p.x, p.y);
    return i >= 0 && !this.s.locked.has(regions[i].id) ? regions[i] : null;
  },

  /** A region's current shape as a full-size mask (the prompt's context when refining it). */
  regionMask(region) {
    const { width: w, height: h } = this.view;
    if (region.kind === "mask" && region.rle) return this.view.masks.get(region) || rleDecode(region.rle);
    return polygonToMask(region, w, h);
  },

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
  },

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
  },

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
  },
};
