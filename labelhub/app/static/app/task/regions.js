// Region commands of the task screen (mixed into it: the panels, the tools, the clipboard and the
// keymap call s.select(i), s.remove(i)…): selection, class, delete, hide / lock / one at a time, undo.
// Each changes the store; whoever draws what changed redraws (task/panels.js, task/canvas.js).
import { regionBounds } from "../view.js";

export const regionCommands = {
  select(i) {
    this.store.set({ selected: i });
  },

  zoomToSelected() {
    const r = this.editor.regions[this.selected];
    const b = r && regionBounds(r);
    if (b) this.view.zoomTo(b);
  },

  currentLabel() { return this.schema[this.labelIndex]?.name || this.schema[0].name; },

  pickClass(i) {
    if (i < 0 || i >= this.schema.length) return;
    this.store.set({ labelIndex: i });
    if (this.editing && this.selected >= 0) this.relabel(this.selected, this.schema[i].name);
  },

  /** A key no command holds: a class's own hotkey (the project's), else 1-9 by position. */
  classKey(key) {
    const byHotkey = this.schema.findIndex((c) => c.hotkey && c.hotkey.toLowerCase() === key.toLowerCase());
    if (byHotkey >= 0) { this.pickClass(byHotkey); return true; }
    return false;
  },

  relabel(i, label) {
    this.editor.checkpoint();
    this.editor.regions[i].label = label;
    this.editor.changed();
  },

  remove(i) {
    if (i < 0 || !this.editing) return;
    this.editor.checkpoint();
    this.editor.regions.splice(i, 1);
    this.store.set({ selected: -1 });
    this.editor.changed();
  },

  toggleHidden(id) { this.store.set({ hidden: toggled(this.hidden, id) }); },
  toggleLocked(id) { this.store.set({ locked: toggled(this.locked, id) }); },

  /** Hide every region, or show them all when all are hidden. */
  toggleAllHidden() {
    const { regions } = this.editor;
    const all = regions.every((r) => this.hidden.has(r.id));
    this.store.set({ hidden: all ? new Set() : new Set(regions.map((r) => r.id)) });
  },

  toggleSingle() {
    const single = !this.single;
    const first = single && this.selected < 0 && this.editor.regions.length;
    this.store.set({ single, ...(first ? { selected: 0 } : {}) });
  },

  step(delta) {
    const n = this.editor.regions.length;
    if (n) this.select((this.selected + delta + n) % n);
  },

  undo() { this.editor.undo(); },
  redo() { this.editor.redo(); },
};

/** A set with id added or taken out (a new set: the store sees the change). */
function toggled(set, id) {
  const out = new Set(set);
  if (out.has(id)) out.delete(id); else out.add(id);
  return out;
}
