// The annotation document of one task: regions, undo/redo (one step per stroke), and the autosave:
// a debounced PUT naming the revision read. A 409 keeps the local copy and lets the user choose.
import * as api from "./api.js";
import { announce, choose, errorText, h } from "./dom.js";

/** How two versions of the regions differ, region by region (by id): what is only in one of them, and
 * what changed (class, shape, kind, source) in the ones both hold. */
export function regionsDiff(mine, theirs) {
  const byId = (list) => new Map(list.map((r) => [r.id, r]));
  const a = byId(mine), b = byId(theirs);
  const out = [];
  for (const [id, r] of a) {
    const t = b.get(id);
    if (!t) { out.push({ id, label: r.label, what: "only in yours" }); continue; }
    const changes = [];
    if (r.label !== t.label) changes.push(`class ${t.label} → ${r.label} in yours`);
    if (r.kind !== t.kind) changes.push(`${t.kind} in theirs, ${r.kind} in yours`);
    else if (JSON.stringify(r.polygons || null) !== JSON.stringify(t.polygons || null) || JSON.stringify(r.rle?.counts || null) !== JSON.stringify(t.rle?.counts || null)) changes.push("shape differs");
    if (r.source !== t.source) changes.push(`${t.source} in theirs, ${r.source} in yours`);
    if (changes.length) out.push({ id, label: r.label, what: changes.join("; ") });
  }
  for (const [id, t] of b) if (!a.has(id)) out.push({ id, label: t.label, what: "only in theirs" });
  return out;
}

const SAVE_DELAY_MS = 600;

export class Editor {
  constructor({ task, annotation, onChange, readOnly = false }) {
    this.task = task;
    this.revision = annotation.revision;
    this.regions = structuredClone(annotation.regions);
    this.undoStack = [];
    this.redoStack = [];
    this.onChange = onChange;
    this.readOnly = readOnly;
    this.dirty = false;
    this.saving = null;
    this.timer = null;
    this.state = "saved";
    this.counter = 0;
  }

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

  changed() {
    if (!this.readOnly) this.keepDraft();
    this.dirty = true;
    this.onChange?.();
    if (!this.readOnly) this.scheduleSave();
  }

  undo() {
    if (!this.undoStack.length) return false;
    this.redoStack.push(JSON.stringify(this.regions));
    this.regions = JSON.parse(this.undoStack.pop());
    this.changed();
    return true;
  }

  redo() {
    if (!this.redoStack.length) return false;
    this.undoStack.push(JSON.stringify(this.regions));
    this.regions = JSON.parse(this.redoStack.pop());
    this.changed();
    return true;
  }

  setState(state, text) {
    this.state = state;
    document.querySelectorAll("[data-save-state]").forEach((el) => {
      el.textContent = text;
      el.dataset.saveState = state;
    });
    // The taskbar's save state is its own live region; the shared one (#live) gets only what needs the
    // labeler (errors, conflicts), so "Saving…" never hides what a tool just said.
    if (state === "error" || state === "conflict") announce(text, "error");
  }

  scheduleSave() {
    clearTimeout(this.timer);
    this.setState("pending", "Unsaved changes");
    this.timer = setTimeout(() => this.save(), SAVE_DELAY_MS);
  }

  /** Save now if anything changed; resolves when the server has it (or throws). */
  async flush() {
    clearTimeout(this.timer);
    if (this.saving) await this.saving.catch(() => {});
    if (this.dirty) await this.save();
    if (this.state === "conflict" || this.state === "error") throw new Error("Your changes are not saved yet.");
  }

  async save() {
    if (this.saving) return this.saving;
    this.dirty = false;
    const regions = JSON.parse(JSON.stringify(this.regions));
    this.setState("saving", "Saving…");
    this.saving = (async () => {
      try {
        const out = await api.put(`tasks/${this.task.id}/annotation/`, { revision: this.revision, regions });
        this.revision = out.revision;
        this.serverIds(out.regions, regions);
        if (!this.dirty) localStorage.removeItem(this.draftKey);
        this.setState(this.dirty ? "pending" : "saved", this.dirty ? "Unsaved changes" : `Saved (revision ${out.revision})`);
        this.onChange?.();
      } catch (err) {
        this.dirty = true;
        const leaseLost = err.status === 409 && ["not_lease_holder", "lease_expired"].includes(err.code);
        if (leaseLost && !this.retried && (await this.onLeaseLost?.())) {
          // The lease came back (a reload's late release, an expiry nobody used): save again, once.
          this.retried = true;
          this.saving = null;
          await this.save();
          this.retried = false;
          return;
        }
        if (err.status === 409 && err.code === "stale_revision") await this.conflict(err);
        else this.setState("error", `Not saved: ${errorText(err)}`);
      } finally {
        this.saving = null;
      }
      if (this.dirty && this.state === "pending") this.scheduleSave();
    })();
    return this.saving;
  }

  /** The server assigns ids to regions sent without one: keep ours in step (same order). */
  serverIds(saved, sent) {
    if (saved.length !== this.regions.length) return;
    saved.forEach((r, i) => {
      if (!this.regions[i].id && sent[i] && !sent[i].id) this.regions[i].id = r.id;
    });
  }

  async conflict(err) {
    const theirs = err.details?.current_revision;
    this.setState("conflict", `Someone saved revision ${theirs} meanwhile: your edit is kept here, not saved.`);
    const current = await api.get(`tasks/${this.task.id}/annotation/`);
    const diff = regionsDiff(this.regions, current.regions);
    const text = h("div", {},
      h("p", {}, `Revision ${current.revision}${current.author ? ` by ${current.author}` : ""} was saved after the one you read (${this.revision}). Keep your version (it becomes the next revision) or reload theirs (your edit stays in undo).`),
      diff.length
        ? h("ul", { class: "diff", "aria-label": "Regions that differ" }, diff.map((d) => h("li", { "data-region-id": d.id }, h("strong", {}, `${d.label} (${d.id})`), `: ${d.what}`)))
        : h("p", {}, "The regions are the same in both."));
    const choice = await choose("This task changed on the server", text, [["Keep mine", "mine"], ["Reload theirs", "theirs"]]);
    if (choice === "mine") {
      this.revision = current.revision;
      this.dirty = true;
      this.setState("pending", "Unsaved changes");
      setTimeout(() => this.save(), 0);
    } else {
      this.checkpoint();
      this.revision = current.revision;
      this.regions = current.regions;
      this.dirty = false;
      this.onChange?.();
      this.setState("saved", `Reloaded revision ${current.revision}`);
    }
  }
}
