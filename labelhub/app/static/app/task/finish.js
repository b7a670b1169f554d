// Finishing a task (mixed into the task screen): submit (annotate), accept / reject / fix-and-accept
// (review), and a reviewer's Edit mode: the regions become editable, the fix is sent with fix-accept
// (never autosaved over the annotator's revision).
import * as api from "../api.js";
import { announce, errorText } from "../dom.js";
import { honeypotFeedback } from "../workspace/quality.js";

export const finishing = {
  async finish(path, body, done) {
    try {
      if (!this.review) await this.autosave.flush();
      await api.post(`tasks/${this.task.id}/${path}/`, body);
    } catch (err) {
      announce(`Not done: ${errorText(err)}`, "error");
      return;
    }
    this.finished = true;
    announce(done);
    this.go(`#/next/${this.project.id}/${encodeURIComponent(this.task.stage)}`, { message: done });
  },

  async submit() {
    const id = this.task.id;
    await this.finish("submit", {}, `Task ${id} submitted.`);
    if (this.finished) await honeypotFeedback(this.project, id);
  },

  accept() { return this.finish("accept", {}, `Task ${this.task.id} accepted.`); },

  fixAccept() {
    return this.finish("fix-accept", { revision: this.editor.revision, regions: this.editor.regions }, `Task ${this.task.id} fixed and accepted.`);
  },

  reject() {
    const comments = this.issues.rejection();
    if (comments) return this.finish("reject", { comments }, `Task ${this.task.id} rejected with ${comments.length} comment(s).`);
  },

  addPin(x, y, regionId) { this.issues.addPin(x, y, regionId); },

  startEditing() {
    this.editor.readOnly = true; // a fix is sent with fix-accept, not autosaved over the annotator's revision
    this.store.set({ editing: true });
  },

  async stopEditing() {
    this.store.set({ editing: false });
    const current = await api.get(`tasks/${this.task.id}/annotation/`);
    this.editor.regions = current.regions;
    this.editor.revision = current.revision;
    this.tools.use("select");
  },
};
