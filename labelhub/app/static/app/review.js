// Review issues: pins on the image (comments sent with Reject: the store's "issues" slice) and the
// task's comments ("comments", "showResolved": resolve, reopen, show). The issues list is rebuilt only
// when an issue is added or removed (a comment's text is kept in place as it is typed), so a comment
// being typed is never redrawn away; its text box takes the keys (no shortcut fires while it has focus).
import * as api from "./api.js";
import { announce, errorText, h } from "./dom.js";
import { regionName } from "./panel.js";
import { regionBounds } from "./view.js";

export class Review {
  constructor(s) {
    this.s = s; // the task screen: store, editor, view, mine, select()
    this.store = s.store;
    // The "Comment on selected region" button follows the selection (the list itself is not rebuilt).
    this.store.subscribe("issue-target", ["selected"], ({ selected }) => {
      if (this.targetButton) this.targetButton.disabled = selected < 0;
    }, { now: false });
  }

  get pending() { return this.store.get("issues"); } // comments to send with Reject: {region_id | x, y, text}
  get showResolved() { return this.store.get("showResolved"); }

  commentPoint(c) {
    if (c.x != null) return { x: c.x, y: c.y };
    const region = this.s.editor.regions.find((r) => r.id === c.region_id);
    const b = region && regionBounds(region);
    return b ? { x: b.x0, y: b.y0 } : null;
  }

  pins() {
    const pins = [];
    this.store.get("comments").forEach((c, i) => {
      if (c.resolved && !this.showResolved) return;
      const p = this.commentPoint(c);
      if (p) pins.push({ ...p, n: i + 1, resolved: c.resolved, onClick: () => this.focusComment(c) });
    });
    this.pending.forEach((c, i) => {
      const p = this.commentPoint(c);
      if (p) pins.push({ ...p, n: `+${i + 1}`, resolved: false, onClick: () => this.focusIssue(i) });
    });
    return pins;
  }

  focusComment(c) {
    const p = this.commentPoint(c);
    if (c.region_id) {
      const i = this.s.editor.regions.findIndex((r) => r.id === c.region_id);
      if (i >= 0) { this.s.select(i); this.s.zoomToSelected(); return; }
    }
    if (p) this.s.view.zoomTo({ x0: p.x - 40, y0: p.y - 40, x1: p.x + 40, y1: p.y + 40 });
  }

  focusIssue(i) {
    this.s.side.querySelectorAll(".issues textarea")[i]?.focus();
  }

  async resolveComment(c, resolved) {
    try {
      Object.assign(c, await api.patch(`comments/${c.id}/`, { resolved }));
      announce(resolved ? "Comment resolved" : "Comment reopened");
      this.store.touch("comments");
    } catch (err) {
      announce(errorText(err), "error");
    }
  }

  /** A new pin: its comment box gets the focus at once (typing never reaches the shortcuts). */
  addPin(x, y, regionId) {
    this.pending.push(regionId ? { region_id: regionId, text: "" } : { x: Math.round(x * 100) / 100, y: Math.round(y * 100) / 100, text: "" });
    this.store.touch("issues");
    this.store.flush(); // the new comment box exists now
    this.focusIssue(this.pending.length - 1);
  }

  remove(i) {
    this.pending.splice(i, 1);
    this.store.touch("issues");
  }

  panel() {
    if (!this.s.mine) return null;
    const { regions } = this.s.editor;
    const list = h("ol", { class: "issues", "aria-label": "Issues to send with Reject" });
    this.pending.forEach((c, i) => {
      const at = regions.findIndex((r) => r.id === c.region_id);
      const where = c.region_id ? `region ${regionName(regions[at] || { label: "?" }, at)}` : `point ${Math.round(c.x)}, ${Math.round(c.y)}`;
      list.append(h("li", {},
        h("label", {}, `+${i + 1} on ${where}`,
          h("textarea", { rows: 2, "aria-label": `Issue ${i + 1} text`, value: c.text, oninput: (e) => { c.text = e.target.value; } })),
        h("button", { onclick: () => this.remove(i) }, "Remove")));
    });
    return h("section", { class: "panel" }, h("h2", {}, "Issues"),
      h("p", { class: "muted" }, "Pin tool (I): click a region or a point, then type. Or:"),
      (this.targetButton = h("button", { disabled: this.s.selected < 0, onclick: () => this.addPin(0, 0, this.s.editor.regions[this.s.selected].id) }, "Comment on selected region")),
      list);
  }

  /** The comments to send with Reject, or null (and the reason said) when there is none with text. */
  rejection() {
    const comments = this.pending.filter((c) => c.text.trim());
    if (!comments.length) {
      announce("A rejection needs at least one issue with text: pin one with the issue tool (I) and describe it.", "error");
      return null;
    }
    return comments;
  }
}
