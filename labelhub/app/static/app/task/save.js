// Saving the task's document: a debounced PUT naming the revision read, flush before leaving, the save
// state (the store's "save" slice, drawn by the taskbar), a 409 that keeps the local copy and lets the
// labeler choose, and the unsaved draft an earlier page left in this browser.
import * as api from "../api.js";
import { announce, choose, errorText, h } from "../dom.js";

const SAVE_DELAY_MS = 600;

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

export class Autosave {
  constructor(editor) {
    this.editor = editor;
    this.store = editor.store;
    this.dirty = false;
    this.saving = null;
    this.timer = null;
    this.onLeaseLost = null; // () => Promise<bool>: the lease taken again
    editor.autosave = this;
    editor.onEdit = () => {
      this.dirty = true;
      if (!editor.readOnly) this.schedule();
    };
  }

  get state() { return this.store.get("save").state; }

  setState(state, text) {
    this.store.set({ save: { state, text } });
    // The taskbar's save state is its own live region; the shared one (#live) gets only what needs the
    // labeler (errors, conflicts), so "Saving…" never hides what a tool just said.
    if (state === "error" || state === "conflict") announce(text, "error");
  }

  schedule() {
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
    const ed = this.editor;
    this.dirty = false;
    const regions = JSON.parse(JSON.stringify(ed.regions));
    this.setState("saving", "Saving…");
    this.saving = (async () => {
      try {
        const out = await api.put(`tasks/${ed.task.id}/annotation/`, { revision: ed.revision, regions });
        ed.revision = out.revision;
        this.serverIds(out.regions, regions);
        if (!this.dirty) localStorage.removeItem(ed.draftKey);
        this.setState(this.dirty ? "pending" : "saved", this.dirty ? "Unsaved changes" : `Saved (revision ${out.revision})`);
        ed.regionsChanged();
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
      if (this.dirty && this.state === "pending") this.schedule();
    })();
    return this.saving;
  }

  /** The server assigns ids to regions sent without one: keep ours in step (same order). */
  serverIds(saved, sent) {
    const { regions } = this.editor;
    if (saved.length !== regions.length) return;
    saved.forEach((r, i) => {
      if (!regions[i].id && sent[i] && !sent[i].id) regions[i].id = r.id;
    });
  }

  async conflict(err) {
    const ed = this.editor;
    const theirs = err.details?.current_revision;
    this.setState("conflict", `Someone saved revision ${theirs} meanwhile: your edit is kept here, not saved.`);
    const current = await api.get(`tasks/${ed.task.id}/annotation/`);
    const diff = regionsDiff(ed.regions, current.regions);
    const text = h("div", {},
      h("p", {}, `Revision ${current.revision}${current.author ? ` by ${current.author}` : ""} was saved after the one you read (${ed.revision}). Keep your version (it becomes the next revision) or reload theirs (your edit stays in undo).`),
      diff.length
        ? h("ul", { class: "diff", "aria-label": "Regions that differ" }, diff.map((d) => h("li", { "data-region-id": d.id }, h("strong", {}, `${d.label} (${d.id})`), `: ${d.what}`)))
        : h("p", {}, "The regions are the same in both."));
    const choice = await choose("This task changed on the server", text, [["Keep mine", "mine"], ["Reload theirs", "theirs"]]);
    if (choice === "mine") {
      ed.revision = current.revision;
      this.dirty = true;
      this.setState("pending", "Unsaved changes");
      setTimeout(() => this.save(), 0);
    } else {
      ed.checkpoint();
      ed.revision = current.revision;
      this.dirty = false;
      ed.regions = current.regions;
      this.setState("saved", `Reloaded revision ${current.revision}`);
    }
  }

  /** Work this browser kept and never saved (a reload, an expired login): restore it or drop it. */
  async offerDraft(draft) {
    const choice = await choose(
      "Unsaved work found",
      `This browser kept ${draft.regions.length} region(s) you had not saved on revision ${draft.revision}.`,
      [["Restore my draft", "restore"], ["Discard it", "discard"]],
    );
    if (choice === "restore") {
      this.editor.checkpoint();
      this.editor.regions = draft.regions;
      this.editor.changed();
    } else {
      localStorage.removeItem(this.editor.draftKey);
    }
  }
}
