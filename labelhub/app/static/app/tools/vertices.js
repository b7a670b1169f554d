// Vertex editing with the select tool (mixed into Tools): a click on an edge of the selected polygon
// inserts a vertex, a handle dragged moves one (the regions redrawn alone while dragging), a double
// click deletes one. Each is one undo step.
import { announce } from "../dom.js";

function distToSegment(px, py, [ax, ay], [bx, by]) {
  const dx = bx - ax, dy = by - ay;
  const t = Math.max(0, Math.min(1, ((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy || 1)));
  return { d: Math.hypot(px - (ax + t * dx), py - (ay + t * dy)), x: ax + t * dx, y: ay + t * dy };
}

function ringAt(region, pi, ri) {
  const poly = region.polygons[pi];
  return ri === 0 ? poly.exterior : poly.holes[ri - 1];
}

export const vertexEditing = {
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
  },

  vertexDrag(v, xy, phase) {
    const region = this.editor.regions[v.index];
    if (phase === "start") { this.editor.checkpoint(); return; }
    const ring = ringAt(region, v.pi, v.ri);
    ring[v.vi] = xy;
    if (phase === "move") this.s.renderLight(v.index);
    else { this.editor.changed(); this.redraw(); }
  },

  vertexDelete(v) {
    const region = this.editor.regions[v.index];
    const ring = ringAt(region, v.pi, v.ri);
    if (ring.length <= 3) { announce("A ring keeps at least three vertices."); return; }
    this.editor.checkpoint();
    ring.splice(v.vi, 1);
    this.editor.changed();
    this.redraw();
  },
};
