// The shortcut sheet (F1): the keys of UI.md, as the task screen handles them.
import { h } from "./dom.js";

export const SHORTCUTS = [
  ["V", "select tool; drag a vertex, click an edge to insert one, double-click a vertex to delete it"],
  ["S", "click-to-segment: left click object, right click background; clicks refine the same region"],
  ["hold Ctrl", "segment: gather points, decode them together on release"],
  ["M", "segment: the next of SAM's three masks for a single click"],
  ["X", "box to segment"],
  ["P", "polygon: click vertices, click the first one, N or Enter to finish"],
  ["B / E, [ ]", "brush / eraser on the selected mask, brush size"],
  ["I", "review: pin an issue to a region or a point"],
  ["N, Enter", "finish the region being drawn"],
  ["Esc", "cancel drawing / deselect"],
  ["Ctrl+Z / Ctrl+Shift+Z, Ctrl+Y", "undo / redo (one step per stroke)"],
  ["Del, Backspace", "delete the selected region"],
  ["Ctrl+C / Ctrl+V, Ctrl+D", "copy / paste in place (also on the next image), duplicate"],
  ["1-9", "class for the next or the selected region"],
  ["H / Shift+H", "hide selected / all"],
  ["L", "lock selected"],
  ["Tab / Shift+Tab", "next / previous region"],
  ["Up / Down", "previous / next region in one-at-a-time mode (review)"],
  ["Z, 0", "zoom to the selected region, fit the image"],
  ["F", "release this task and take the next"],
  ["Ctrl+Enter", "submit (review: accept)"],
  ["Shift+B / Shift+C, then = or -", "brightness / contrast up or down"],
  ["wheel; middle-drag or Alt+drag", "zoom at the cursor; pan"],
  ["F1", "this sheet"],
];

export function shortcutSheet() {
  const existing = document.querySelector("dialog.shortcuts");
  if (existing) { existing.close(); existing.remove(); return; }
  const dlg = h("dialog", { class: "dialog shortcuts", "aria-label": "Keyboard shortcuts" },
    h("h2", {}, "Keyboard shortcuts"),
    h("table", {}, h("tbody", {}, SHORTCUTS.map(([k, v]) => h("tr", {}, h("th", { scope: "row" }, h("kbd", {}, k)), h("td", {}, v))))),
    h("p", { class: "muted" }, "Keys are ignored while a text field has focus."),
    h("button", { class: "primary", onclick: () => { dlg.close(); dlg.remove(); } }, "Close"));
  document.body.append(dlg);
  dlg.showModal();
  dlg.addEventListener("keydown", (e) => { if (e.key === "F1") { e.preventDefault(); dlg.close(); dlg.remove(); } });
}
