// Ctrl+C / Ctrl+V / Ctrl+D: a region kept for this browser session, pasted in place (also on the next
// image, as CVAT and Label Studio do) as a new human region.
import { announce } from "./dom.js";
import { regionName } from "./panel.js";

const CLIPBOARD_KEY = "lh.clipboard";

/** A region as the clipboard keeps it: its class and shape, not its id nor the AI's prediction and score
 * (a pasted region is a person's). */
function clipOf(region, view) {
  const { id, prediction_id, score, ...shape } = structuredClone(region); // eslint-disable-line no-unused-vars
  return { region: shape, size: [view.height, view.width] };
}

export function copy(s) {
  const region = s.editor.regions[s.selected];
  if (!region) { announce("Select a region to copy."); return; }
  sessionStorage.setItem(CLIPBOARD_KEY, JSON.stringify(clipOf(region, s.view)));
  announce(`Copied ${regionName(region, s.selected)}.`);
}

export function paste(s, kept = null) {
  if (!s.editing) return;
  let copied = kept;
  if (!copied) {
    try { copied = JSON.parse(sessionStorage.getItem(CLIPBOARD_KEY) || "null"); } catch { copied = null; }
  }
  if (!copied) { announce("Nothing copied yet (Ctrl+C copies the selected region)."); return; }
  const { region, size } = copied;
  const [h, w] = [s.view.height, s.view.width];
  if (!s.schema.some((c) => c.name === region.label)) { announce(`This project has no class "${region.label}".`, "error"); return; }
  const fits = region.kind === "mask"
    ? region.rle?.size?.[0] === h && region.rle?.size?.[1] === w
    : (region.polygons || []).every((p) => [p.exterior, ...(p.holes || [])].every((ring) => ring.every(([x, y]) => x >= 0 && y >= 0 && x <= w && y <= h)));
  if (!fits) { announce(`The copied region (from a ${size[1]}x${size[0]} image) does not fit this ${w}x${h} image.`, "error"); return; }
  s.editor.checkpoint();
  s.editor.regions.push({ ...structuredClone(region), id: s.editor.newId(), source: "human" });
  s.selected = s.editor.regions.length - 1;
  s.editor.changed();
  announce(`Pasted ${regionName(s.editor.regions[s.selected], s.selected)}.`);
}

export function duplicate(s) {
  const region = s.editor.regions[s.selected];
  if (!region) { announce("Select a region to duplicate."); return; }
  paste(s, clipOf(region, s.view));
}
