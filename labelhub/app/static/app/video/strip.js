// The frame strip: one row per track over the task's frames, a mark per frame that has a shape
// (filled: keyframe, light: propagated), the current frame highlighted. Click a cell to go there.
import { h } from "../dom.js";

export function frameStrip({ start, stop, tracks, frame, selected, onPick }) {
  const count = stop - start;
  const width = 100 / count;
  const rows = tracks.map((t) =>
    h("div", { class: "vstrip-row" + (t.id === selected ? " selected" : ""), "data-track": t.id },
      h("span", { class: "vstrip-name" }, t.id),
      h("div", { class: "vstrip-cells" },
        ...t.shapes.map((s) => h("span", {
          class: "vstrip-mark " + (s.keyframe ? "key" : "prop") + (s.outside ? " outside" : ""),
          "data-frame": s.frame,
          title: `frame ${s.frame}: ${s.keyframe ? "keyframe" : `propagated by ${s.model?.name || "?"}`}`,
          style: { left: `${(s.frame - start) * width}%`, width: `${width}%` },
        })))));
  const ruler = h("div", { class: "vstrip-cells vstrip-ruler", onclick: (e) => {
    const r = e.currentTarget.getBoundingClientRect();
    onPick(start + Math.min(count - 1, Math.max(0, Math.floor(((e.clientX - r.left) / r.width) * count))));
  } }, h("span", { class: "vstrip-now", style: { left: `${(frame - start) * width}%`, width: `${Math.max(width, 0.4)}%` } }));
  return h("div", { class: "vstrip", "aria-label": "Frames" }, h("div", { class: "vstrip-row" }, h("span", { class: "vstrip-name" }, "frames"), ruler), ...rows);
}
