// The side of the task screen: one slot per panel, each rebuilt only when a slice it draws changed
// (PANELS below), plus the class buttons and the View panel (opacities, brightness, contrast, where SAM
// clicks are decoded). A slider being dragged is never rebuilt: the filters move its value in place.
import { h } from "../dom.js";
import { commentsPanel, regionsPanel, timelinePanel } from "../panel.js";
import { MODES } from "../samdecode.js";
import { PREVIEW_KEY } from "../tools.js";
import { classColor } from "../view.js";

// panel name -> [the store's slices it draws, its builder (null: nothing shown)]
const PANELS = {
  classes: [["labelIndex", "editing"], (s) => (s.editing ? classesPanel(s) : null)],
  regions: [["regions", "selected", "hidden", "locked", "single", "editing"], (s) => regionsPanel(s)],
  issues: [["issues"], (s) => (s.review ? s.issues.panel() : null)],
  comments: [["comments", "showResolved"], (s) => commentsPanel(s)],
  timeline: [["timeline"], (s) => (s.review ? timelinePanel(s.store.get("timeline")) : null)],
  view: [["editing"], (s) => viewPanel(s)],
};

export function sidePanels(s, side) {
  for (const [name, [keys, build]] of Object.entries(PANELS)) {
    const slot = h("div", { class: `slot slot-${name}` });
    side.append(slot);
    s.store.subscribe(name, keys, () => slot.replaceChildren(...[build(s)].filter(Boolean)));
  }
  s.store.subscribe("filter-sliders", ["filters"], ({ filters }) => {
    for (const [which, value] of Object.entries(filters)) {
      const input = side.querySelector(`input[data-filter="${which}"]`);
      if (input) input.value = value;
    }
  }, { now: false });
}

function classesPanel(s) {
  const { schema, store } = s;
  return h("section", { class: "panel" }, h("h2", {}, "Class"),
    h("div", { class: "classes", role: "radiogroup", "aria-label": "Class for the next region" },
      schema.map((c, i) => h("button", {
        role: "radio", "aria-checked": String(i === store.get("labelIndex")), title: `Key ${c.hotkey || i + 1}`,
        onclick: () => s.pickClass(i),
      }, h("span", { class: "swatch", style: { background: classColor(schema, c.name) } }), `${c.hotkey || i + 1} ${c.name}`))));
}

/** Brightness and contrast: the store's "filters" (kept for the next task in localStorage). */
export function setFilters(s, brightness, contrast) {
  localStorage.setItem("lh.brightness", brightness); localStorage.setItem("lh.contrast", contrast);
  s.store.set({ filters: { brightness, contrast } });
}

function viewPanel(s) {
  const { store } = s;
  const slider = (label, value, min, max, step, set, filter = null) => h("label", { class: "slider" }, label,
    h("input", { type: "range", min, max, step, value, "data-filter": filter, oninput: (e) => set(Number(e.target.value)) }));
  const { fill, selected } = store.get("opacity");
  const { brightness, contrast } = store.get("filters");
  return h("section", { class: "panel" }, h("h2", {}, "View"),
    slider("Fill opacity", fill, 0, 1, 0.05, (v) => store.set({ opacity: { ...store.get("opacity"), fill: v } })),
    slider("Selected fill", selected, 0, 1, 0.05, (v) => store.set({ opacity: { ...store.get("opacity"), selected: v } })),
    slider("Brightness", brightness, 0.3, 3, 0.05, (v) => setFilters(s, v, store.get("filters").contrast), "brightness"),
    slider("Contrast", contrast, 0.3, 3, 0.05, (v) => setFilters(s, store.get("filters").brightness, v), "contrast"),
    s.editing ? decodeControl(s) : null);
}

const DECODE_TITLES = {
  auto: "Auto: times the first clicks both ways, then keeps the faster for this session",
  browser: "In this browser, from the image's embedding",
  server: "On the server",
};

/** Where SAM clicks are decoded: auto (the faster, measured), in the browser, or on the server. */
function decodeControl(s) {
  const { decoder } = s;
  const status = h("p", { class: "muted decode-status", "data-decode-status": "", "aria-live": "polite" });
  decoder.onChange = () => showDecodeStatus(decoder, status);
  showDecodeStatus(decoder, status);
  if (decoder.final) return h("div", { class: "decode" }, status);
  const select = h("select", {
    "data-decode-mode": "", "aria-label": "SAM click decoding", title: DECODE_TITLES[decoder.mode],
    onchange: (e) => { decoder.setMode(e.target.value); e.target.title = DECODE_TITLES[e.target.value]; },
  }, MODES.map((m) => h("option", { value: m, selected: m === decoder.mode, title: DECODE_TITLES[m] }, m)));
  const preview = h("label", { class: "check", title: "Decoded in the browser while the pointer rests (segment tool)" },
    h("input", {
      type: "checkbox", "data-sam-preview": "", checked: localStorage.getItem(PREVIEW_KEY) !== "off",
      onchange: (e) => { localStorage.setItem(PREVIEW_KEY, e.target.checked ? "on" : "off"); if (!e.target.checked) s.tools.clearPreview(); },
    }), " Mask under the cursor");
  return h("div", { class: "decode" }, h("label", { class: "slider" }, "Segment clicks in", select), preview, status);
}

function showDecodeStatus(decoder, el) {
  el.textContent = decoder.status() || "no click segmented yet";
  el.dataset.last = decoder.last?.path || "";
  el.dataset.auto = decoder.auto?.choice || "";
  el.dataset.state = decoder.state;
}
