// The mask under the cursor (SAM's demo; mixed into Tools): with the segment tool, decoded in the
// browser while the pointer rests, and taken at once by a positive click there.
import { decode as browserDecode } from "../samdecode.js";

export const PREVIEW_KEY = "lh.samPreview"; // the View panel's "mask under the cursor" toggle: "off" or on
const HOVER_MS = 50; // the pointer rests this long before its mask is decoded

export const samPreview = {
  previewOn() {
    return localStorage.getItem(PREVIEW_KEY) !== "off" && !this.s.readOnly && !this.segment?.clicks?.length &&
      Boolean(this.s.decoder?.browserChosen());
  },

  /** The pointer moved over the image with the segment tool: decode there once it rests (50 ms), one
   * decode at a time, always the latest position. */
  hover(p) {
    clearTimeout(this.hoverTimer);
    if (!this.previewOn()) { if (this.preview) this.clearPreview(); return; }
    this.hoverTimer = setTimeout(() => { this.hoverAt = p; if (!this.hoverBusy) this.runPreview(); }, HOVER_MS);
  },

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
  },

  clearPreview() {
    clearTimeout(this.hoverTimer);
    this.hoverAt = null;
    if (!this.preview) return;
    this.preview = null;
    this.view.setPreview(null);
  },
};
