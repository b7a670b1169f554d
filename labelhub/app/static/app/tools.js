// Mouse tools on the canvas: select (and vertex editing, tools/vertices.js), polygon, click-to-segment
// (points and box, tools/segment.js; the mask under the cursor, tools/preview.js), brush and eraser
// (tools/brush.js). Each finished gesture is one undo step. The tool in hand and the drawing under way
// are the store's "tool" and "draft" slices (the toolbar and the canvas follow them); a draft changed
// in place is redrawn with redraw().
import { regionContains } from "./view.js";
import { brushing } from "./tools/brush.js";
import { samPreview } from "./tools/preview.js";
import { segmenting } from "./tools/segment.js";
import { vertexEditing } from "./tools/vertices.js";

export { PREVIEW_KEY } from "./tools/preview.js";

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

  classTakesMasks(label = null) {
    const cls = this.s.schema.find((c) => c.name === (label || this.s.currentLabel()));
    return !cls?.kinds || cls.kinds.includes("mask");
  }
}

// Each tool's own gestures: vertex editing (select), the mask under the cursor and click to segment
// (segment, box), brush and eraser.
Object.assign(Tools.prototype, vertexEditing, samPreview, segmenting, brushing);
