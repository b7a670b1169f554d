// The annotation document of one task: its regions (the store's "regions" slice: tools edit them in
// place, then changed() says so), undo/redo (one step per stroke) and the unsaved copy this browser
// keeps. Saving it to the server is task/save.js's (the autosave, a 409's dialog).
export class Editor {
  constructor({ store, task, annotation, readOnly = false }) {
    this.store = store;
    this.task = task;
    this.revision = annotation.revision;
    store.set({ regions: structuredClone(annotation.regions) });
    this.undoStack = [];
    this.redoStack = [];
    this.readOnly = readOnly;
    this.onEdit = null; // the autosave's: a change to save
    this.autosave = null;
    this.counter = 0;
  }

  get regions() { return this.store.get("regions"); }
  set regions(list) { this.store.set({ regions: list }); this.regionsChanged(); }

  // The save state ("saved", "pending", "saving", "error", "conflict": the store's "save" slice) and
  // the autosave's own (task/save.js), read here by the browser tests (window.labelhub.editor).
  get state() { return this.store.get("save").state; }
  get dirty() { return this.autosave?.dirty; }
  get saving() { return this.autosave?.saving; }

  newId() {
    this.counter += 1;
    return `h${Date.now().toString(36)}${this.counter}`;
  }

  /** Record the state before a change (call once per stroke), then mutate this.regions. */
  checkpoint() {
    this.undoStack.push(JSON.stringify(this.regions));
    if (this.undoStack.length > 500) this.undoStack.shift();
    this.redoStack = [];
  }

  get draftKey() {
    return `lh.draft.${this.task.id}`;
  }

  /** An unsaved local copy survives a reload or an expired login (localStorage, per task). */
  keepDraft() {
    try {
      localStorage.setItem(this.draftKey, JSON.stringify({ revision: this.revision, regions: this.regions }));
    } catch { /* quota: the server copy is what counts */ }
  }

  /** The draft left by an earlier page on the same revision, if it differs from what the server has. */
  pendingDraft() {
    const raw = localStorage.getItem(this.draftKey);
    if (!raw) return null;
    const draft = JSON.parse(raw);
    if (draft.revision !== this.revision || JSON.stringify(draft.regions) === JSON.stringify(this.regions)) {
      localStorage.removeItem(this.draftKey);
      return null;
    }
    return draft;
  }

  /** The regions changed (in place or replaced): whoever draws them redraws; the selection stays in range. */
  regionsChanged() {
    if (this.store.get("selected") >= this.regions.length) this.store.set({ selected: -1 });
    this.store.touch("regions");
  }

  /** An edit: kept in this browser, drawn, and saved (the autosave). */
  changed() {
    if (!this.readOnly) this.keepDraft();
    this.regionsChanged();
    this.onEdit?.();
  }

  undo() {
    if (!this.undoStack.length) return false;
    this.redoStack.push(JSON.stringify(this.regions));
    this.store.set({ regions: JSON.parse(this.undoStack.pop()) });
    this.changed();
    return true;
  }

  redo() {
    if (!this.redoStack.length) return false;
    this.undoStack.push(JSON.stringify(this.regions));
    this.store.set({ regions: JSON.parse(this.redoStack.pop()) });
    this.changed();
    return true;
  }
}
