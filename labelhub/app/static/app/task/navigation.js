// Moving between tasks (mixed into the task screen): leave (save, give the lease back), F for the next
// task of the stage, D for the one this tab had open before (the tab's history in sessionStorage).
import { announce } from "../dom.js";

const HISTORY_KEY = "lh.history"; // the tasks this tab opened, in order (D goes back through them)

function history() {
  try { return JSON.parse(sessionStorage.getItem(HISTORY_KEY) || "[]"); } catch { return []; }
}

export function remember(taskId) {
  const list = history().filter((id) => id !== taskId);
  list.push(taskId);
  sessionStorage.setItem(HISTORY_KEY, JSON.stringify(list.slice(-200)));
}

export const navigation = {
  async leave(to = "#/queue") {
    if (this.mine && !this.finished) {
      await this.autosave.flush().catch(() => {});
      await this.lease.release(false);
    }
    this.finished = true;
    this.go(to);
  },

  /** F: save, give this task back, and take the next one of the stage: never this one again. */
  nextTask() {
    return this.leave(`#/next/${this.project.id}/${encodeURIComponent(this.task.stage)}/${this.task.id}`);
  },

  /** D: the task this tab had open before this one (view-only when it has moved on). */
  previousTask() {
    const list = history();
    const at = list.indexOf(this.task.id);
    const before = at > 0 ? list[at - 1] : null;
    if (!before) { announce("No earlier task in this tab."); return; }
    return this.leave(`#/task/${before}`);
  },
};
