// The task screen's commands for the keymap (keymap.js holds the keys, the F1 sheet and remapping;
// dispatcher() calls these by command id), and the few that only keys reach: brush size, filters.
import * as clipboard from "../clipboard.js";
import { announce } from "../dom.js";
import { shortcutSheet } from "../keymap.js";
import { TOOLS } from "../tools.js";
import { setFilters } from "./panels.js";

export function commands(s) {
  const ifEditing = (f) => () => { if (s.editing) f(); };
  const tool = (name) => () => {
    const allowed = s.editing || name === "select" || (name === "pin" && s.review && s.mine);
    if (allowed) s.tools.use(name);
  };
  const selectedId = () => s.editor.regions[s.selected]?.id;
  const c = {
    "next-candidate": ifEditing(() => s.tools.cycleCandidate()),
    finish: () => s.tools.finish(),
    cancel: () => { if (s.tools.draft || s.tools.segment) s.tools.cancel(); else s.select(-1); },
    undo: () => s.undo(),
    redo: () => s.redo(),
    delete: () => s.remove(s.selected),
    copy: () => clipboard.copy(s),
    paste: () => clipboard.paste(s),
    duplicate: () => clipboard.duplicate(s),
    hide: () => { if (s.selected >= 0) s.toggleHidden(selectedId()); },
    "hide-all": () => s.toggleAllHidden(),
    lock: () => { if (s.selected >= 0) s.toggleLocked(selectedId()); },
    "next-region": () => s.step(1),
    "previous-region": () => s.step(-1),
    "single-next": () => { if (s.single) { s.step(1); s.zoomToSelected(); } },
    "single-previous": () => { if (s.single) { s.step(-1); s.zoomToSelected(); } },
    "zoom-selected": () => s.zoomToSelected(),
    fit: () => s.view.fit(),
    "brush-smaller": () => brush(s, 0.8),
    "brush-larger": () => brush(s, 1.25),
    brightness: () => pickFilter(s, "brightness"),
    contrast: () => pickFilter(s, "contrast"),
    "filter-up": () => nudgeFilter(s, 0.1),
    "filter-down": () => nudgeFilter(s, -0.1),
    "next-task": () => s.nextTask(),
    "previous-task": () => s.previousTask(),
    submit: () => {
      if (!s.mine) return;
      if (s.review && !s.editing) s.accept(); else if (s.review) s.fixAccept(); else s.submit();
    },
    shortcuts: () => shortcutSheet(),
  };
  for (const name of Object.keys(TOOLS)) c[`${name}-tool`] = tool(name);
  for (let n = 1; n <= 9; n++) c[`class-${n}`] = () => s.pickClass(n - 1);
  return c;
}

function brush(s, factor) {
  s.tools.brushRadius = Math.max(1, Math.min(200, s.tools.brushRadius * factor));
  announce(`Brush ${Math.round(s.tools.brushRadius)} px`);
}

function pickFilter(s, which) {
  s.filterKey = which;
  announce(`${which === "brightness" ? "Brightness" : "Contrast"}: = brighter / more, - darker / less`);
}

/** Shift+B / Shift+C pick brightness or contrast; = and - then change it (CVAT's keys). */
function nudgeFilter(s, step) {
  const which = s.filterKey || "brightness";
  const clamp = (v) => Math.round(Math.min(3, Math.max(0.3, v)) * 100) / 100;
  const { brightness, contrast } = s.store.get("filters");
  if (which === "brightness") setFilters(s, clamp(brightness + step), contrast);
  else setFilters(s, brightness, clamp(contrast + step));
  const now = s.store.get("filters")[which];
  announce(`${which === "brightness" ? "Brightness" : "Contrast"} ${Math.round(now * 100)}%`);
}
