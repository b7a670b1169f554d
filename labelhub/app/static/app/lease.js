// A task's lease as the task screen holds it: heartbeats, the countdown (the store's "lease" slice:
// seconds left, drawn by the taskbar), release and re-claim.
// The server releases only for the tab that holds the lease (X-Lease-Tab, see labeling/leases.py):
// closing a second tab of the same task does not take the lease from the first.
import * as api from "./api.js";
import { announce, errorText } from "./dom.js";

const HEARTBEAT_MS = 30000;

/** This tab's id (one per browser tab, kept across reloads of the tab). */
export function tabId() {
  let id = sessionStorage.getItem("lh.tab");
  if (!id) { id = Math.random().toString(36).slice(2, 12); sessionStorage.setItem("lh.tab", id); }
  return id;
}

export class Lease {
  constructor({ task, project, store }) {
    Object.assign(this, { task, project, store });
    this.released = false;
  }

  start() {
    this.heartbeat = setInterval(() => this.beat(), HEARTBEAT_MS);
    this.countdown = setInterval(() => this.show(), 1000);
    this.show();
    this.beat(); // tells the server which tab holds the lease now
  }

  stop() {
    clearInterval(this.heartbeat);
    clearInterval(this.countdown);
  }

  async release(keepalive) {
    if (this.released) return;
    this.released = true;
    try { await api.post(`tasks/${this.task.id}/release/?tab=${tabId()}`, {}, { keepalive }); } catch { /* an expired lease is already released */ }
  }

  /** Take this task's lease again if nobody else has it (tasks/{id}/claim/: exactly this task). */
  async reclaim() {
    const t = await api.post(`tasks/${this.task.id}/claim/`).catch(() => null);
    if (!t) return false;
    this.task.lease_expires_at = t.lease_expires_at;
    this.released = false;
    return true;
  }

  async beat() {
    try {
      const t = await api.post(`tasks/${this.task.id}/heartbeat/?tab=${tabId()}`).catch(async (err) => {
        if (err.status === 409 && (await this.reclaim())) return this.task;
        throw err;
      });
      this.task.lease_expires_at = t.lease_expires_at;
    } catch (err) {
      announce(`You no longer hold this task (${errorText(err)}). Your edits stay in this browser; open the task again to save them.`, "error");
      clearInterval(this.heartbeat);
    }
  }

  show() {
    const left = Math.max(0, Math.round((new Date(this.task.lease_expires_at) - Date.now()) / 1000));
    this.store.set({ lease: left });
  }
}
