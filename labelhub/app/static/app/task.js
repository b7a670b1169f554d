// The task screen: annotate (first stage) or review (later stages: read-only, Edit for fix-accept).
// Lease: heartbeats while open, release when leaving without finishing.
import * as api from "./api.js";
import { announce, choose, errorText, h } from "./dom.js";
import { Editor } from "./editor.js";
import { commentsPanel, regionName, regionsPanel, timelinePanel } from "./panel.js";
import { DecodeChooser, MODES } from "./samdecode.js";
import { shortcutSheet } from "./shortcuts.js";
import { PREVIEW_KEY, Tools, TOOLS } from "./tools.js";
import { classColor, regionBounds, View } from "./view.js";

const CLIPBOARD_KEY = "lh.clipboard"; // Ctrl+C's region, for this browser session

/** A region as the clipboard keeps it: its class and shape, not its id nor the AI's prediction and score
 * (a pasted region is a person's). */
function clipOf(region, view) {
  const { id, prediction_id, score, ...shape } = structuredClone(region); // eslint-disable-line no-unused-vars
  return { region: shape, size: [view.height, view.width] };
}

const HEARTBEAT_MS = 30000;

export async function taskScreen(root, { taskId, go }) {
  const t0 = performance.now();
  let task = await api.get(`tasks/${taskId}/`);
  if (task.status !== "done" && !(task.status === "in_progress" && task.assignee === api.me.id)) {
    // A deep link or a reload (pagehide released the lease): take exactly this task. (next-task handed
    // back the oldest open task instead: #/task/6 opened task 3.) When it cannot be taken the server says
    // why (leased by someone until T, kept for someone, your own work, independent reviews): view-only.
    try { task = await api.post(`tasks/${task.id}/claim/`); } catch (err) { announce(`View only: ${errorText(err)}`, "error"); }
  }
  const [project, annotation, comments] = await Promise.all([
    api.get(`projects/${task.project}/`),
    api.get(`tasks/${taskId}/annotation/`),
    api.all(`tasks/${taskId}/comments/`),
  ]);
  const stageIndex = project.pipeline.findIndex((s) => s.name === task.stage);
  const review = stageIndex > 0;
  const mine = task.assignee === api.me.id && task.lease_expires_at && task.status === "in_progress";
  const s = new TaskScreen({ root, go, task, project, annotation, comments, review, mine });
  await s.mount();
  const ms = Math.round(performance.now() - t0);
  document.body.dataset.firstRenderMs = String(ms);
  return s;
}

class TaskScreen {
  constructor({ root, go, task, project, annotation, comments, review, mine }) {
    Object.assign(this, { root, go, task, project, comments, review, mine });
    this.schema = project.label_schema;
    this.selected = -1;
    this.hidden = new Set();
    this.locked = new Set();
    this.labelIndex = 0;
    this.editing = !review && mine; // reviewers press Edit to fix
    this.pendingIssues = []; // review: comments to send with Reject
    this.showResolved = false;
    this.finished = false;
    this.brightness = Number(localStorage.getItem("lh.brightness") || 1);
    this.contrast = Number(localStorage.getItem("lh.contrast") || 1);
    this.editor = new Editor({ task, annotation, onChange: () => this.renderPanels(), readOnly: !this.editing });
    this.editor.onLeaseLost = () => this.mine && !this.finished && this.reclaim();
  }

  get readOnly() { return !this.editing; }
  get canComment() { return this.mine; }

  currentLabel() { return this.schema[this.labelIndex]?.name || this.schema[0].name; }

  async mount() {
    const { task, project } = this;
    this.saveState = h("span", { class: "save-state", "data-save-state": "saved" }, `Revision ${this.editor.revision}`);
    this.leaseEl = h("span", { class: "lease", title: "Lease time left (heartbeats keep it)" });
    const actions = h("div", { class: "actions" });
    this.actions = actions;
    const toolbar = h("nav", { class: "tools", "aria-label": "Tools" });
    this.toolbar = toolbar;
    const canvas = h("div", { class: "canvas", tabindex: "0", "aria-label": `Image of task ${task.id}` });
    this.side = h("aside", { class: "side", "aria-label": "Regions and comments" });
    this.root.replaceChildren(
      h("div", { class: `task ${this.review ? "review" : "annotate"}` },
        h("div", { class: "taskbar" },
          h("strong", {}, `${project.name} · task ${task.id}`),
          h("span", { class: "stage" }, `stage ${task.stage}`),
          this.saveState, this.leaseEl,
          h("span", { class: "spacer" }),
          h("button", { onclick: () => shortcutSheet(), title: "Keyboard shortcuts (F1)" }, "Shortcuts (F1)"),
          actions),
        toolbar, canvas, this.side));
    this.view = new View(canvas, { width: task.image_width, height: task.image_height, schema: this.schema });
    this.view.setFilters(this.brightness, this.contrast);
    this.decoder = new DecodeChooser(task.image);
    this.decoder.onChange = () => this.showDecodeStatus();
    this.tools = new Tools(this);
    this.view.onVertexDrag = (v, xy, phase) => this.tools.vertexDrag(v, xy, phase);
    this.view.onVertexDelete = (v) => this.tools.vertexDelete(v);
    await this.view.loadImage(`/api/v1/images/${task.image}/file/`);
    this.renderToolbar();
    this.renderActions();
    this.render();
    this.renderPanels();
    this.onKey = (e) => this.key(e);
    window.addEventListener("keydown", this.onKey);
    if (this.mine) {
      this.heartbeat = setInterval(() => this.beat(), HEARTBEAT_MS);
      this.countdown = setInterval(() => this.showLease(), 1000);
      this.showLease();
      this.onHide = () => this.release(true);
      window.addEventListener("pagehide", this.onHide);
    } else {
      this.leaseEl.textContent = "view only (not leased to you)";
    }
    if (this.review) this.loadTimeline();
    const draft = this.editing && this.editor.pendingDraft();
    if (draft) this.offerDraft(draft);
    window.labelhub = { screen: this, view: this.view, editor: this.editor, decoder: this.decoder };
  }

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

  async destroy() {
    clearInterval(this.heartbeat);
    clearInterval(this.countdown);
    window.removeEventListener("keydown", this.onKey);
    if (this.onHide) window.removeEventListener("pagehide", this.onHide);
    if (this.mine && !this.finished) {
      await this.editor.flush().catch(() => {});
      await this.release(false);
    }
    this.tools.destroy();
    this.view.destroy();
  }

  async release(keepalive) {
    if (this.finished || this.released) return;
    this.released = true;
    try { await api.post(`tasks/${this.task.id}/release/`, {}, { keepalive }); } catch { /* an expired lease is already released */ }
  }

  /** Take this task's lease again if nobody else has it (next-task hands back the oldest open one). */
  async reclaim() {
    const t = await api.post(`projects/${this.project.id}/next-task/?stage=${encodeURIComponent(this.task.stage)}`).catch(() => null);
    if (!t) return false;
    if (t.id !== this.task.id) {
      await api.post(`tasks/${t.id}/release/`).catch(() => {});
      return false;
    }
    this.task.lease_expires_at = t.lease_expires_at;
    return true;
  }

  async beat() {
    try {
      const t = await api.post(`tasks/${this.task.id}/heartbeat/`).catch(async (err) => {
        if (err.status === 409 && (await this.reclaim())) return this.task;
        throw err;
      });
      this.task.lease_expires_at = t.lease_expires_at;
    } catch (err) {
      announce(`Lease lost: ${errorText(err)}. Your edits stay here; take the task again to save.`, "error");
      clearInterval(this.heartbeat);
    }
  }

  showLease() {
    const left = Math.max(0, Math.round((new Date(this.task.lease_expires_at) - Date.now()) / 1000));
    this.leaseEl.textContent = `lease ${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}`;
  }

  async loadTimeline() {
    this.timeline = await api.get(`tasks/${this.task.id}/timeline/`);
    this.renderPanels();
  }

  // --- rendering ---------------------------------------------------------------------------------------
  pins() {
    const pins = [];
    this.comments.forEach((c, i) => {
      if (c.resolved && !this.showResolved) return;
      const p = this.commentPoint(c);
      if (p) pins.push({ ...p, n: i + 1, resolved: c.resolved, onClick: () => this.focusComment(c) });
    });
    this.pendingIssues.forEach((c, i) => {
      const p = this.commentPoint(c);
      if (p) pins.push({ ...p, n: `+${i + 1}`, resolved: false });
    });
    return pins;
  }

  commentPoint(c) {
    if (c.x != null) return { x: c.x, y: c.y };
    const region = this.editor.regions.find((r) => r.id === c.region_id);
    const b = region && regionBounds(region);
    return b ? { x: b.x0, y: b.y0 } : null;
  }

  /** Hidden regions; in single-region mode (review) all but the selected one. */
  get shownHidden() {
    if (!this.single) return this.hidden;
    return new Set(this.editor.regions.filter((_, i) => i !== this.selected).map((r) => r.id));
  }

  toggleSingle() {
    this.single = !this.single;
    if (this.single && this.selected < 0 && this.editor.regions.length) this.selected = 0;
    this.renderPanels();
  }

  render() {
    this.view.render({
      regions: this.editor.regions, selected: this.selected, hidden: this.shownHidden, locked: this.locked,
      editable: this.editing && this.tools.tool === "select", pins: this.pins(), draft: this.tools.draft,
    });
  }

  /** A cheap redraw while dragging a vertex or painting (no panel rebuild, handles kept). */
  renderLight() {
    this.view.state = { ...this.view.state, regions: this.editor.regions, draft: this.tools.draft };
    this.view.renderRegions();
  }

  renderPanels() {
    const labelPicker = h("section", { class: "panel" }, h("h2", {}, "Class"),
      h("div", { class: "classes", role: "radiogroup", "aria-label": "Class for the next region" },
        this.schema.map((c, i) => h("button", {
          role: "radio", "aria-checked": String(i === this.labelIndex), title: `Key ${i + 1}`,
          onclick: () => this.pickClass(i),
        }, h("span", { class: "swatch", style: { background: classColor(this.schema, c.name) } }), `${i + 1} ${c.name}`))));
    this.side.replaceChildren(...[
      this.editing ? labelPicker : null,
      regionsPanel(this),
      this.review ? this.issuesPanel() : null,
      commentsPanel(this),
      this.review ? timelinePanel(this.timeline) : null,
      this.viewPanel(),
    ].filter(Boolean));
    this.render();
  }

  viewPanel() {
    const slider = (label, value, min, max, step, set) => h("label", { class: "slider" }, label,
      h("input", { type: "range", min, max, step, value, oninput: (e) => set(Number(e.target.value)) }));
    return h("section", { class: "panel" }, h("h2", {}, "View"),
      slider("Fill opacity", this.view.fillOpacity, 0, 1, 0.05, (v) => { this.view.fillOpacity = v; this.render(); }),
      slider("Selected fill", this.view.selectedOpacity, 0, 1, 0.05, (v) => { this.view.selectedOpacity = v; this.render(); }),
      slider("Brightness", this.brightness, 0.3, 3, 0.05, (v) => this.setFilters(v, this.contrast)),
      slider("Contrast", this.contrast, 0.3, 3, 0.05, (v) => this.setFilters(this.brightness, v)),
      this.editing ? this.decodeControl() : null);
  }

  /** Where SAM clicks are decoded: auto (the faster, measured), in the browser, or on the server. */
  decodeControl() {
    const titles = {
      auto: "Auto: times the first clicks both ways, then keeps the faster for this session",
      browser: "In this browser (onnxruntime-web) from the image's embedding",
      server: "On the server (segment/)",
    };
    this.decodeStatus = h("p", { class: "muted decode-status", "data-decode-status": "", "aria-live": "polite" });
    const select = h("select", {
      "data-decode-mode": "", "aria-label": "SAM click decoding", title: titles[this.decoder.mode],
      onchange: (e) => { this.decoder.setMode(e.target.value); e.target.title = titles[e.target.value]; },
    }, MODES.map((m) => h("option", { value: m, selected: m === this.decoder.mode, title: titles[m] }, m)));
    const preview = h("label", { class: "check", title: "Decoded in the browser while the pointer rests (segment tool)" },
      h("input", {
        type: "checkbox", "data-sam-preview": "", checked: localStorage.getItem(PREVIEW_KEY) !== "off",
        onchange: (e) => { localStorage.setItem(PREVIEW_KEY, e.target.checked ? "on" : "off"); if (!e.target.checked) this.tools.clearPreview(); },
      }), " Mask under the cursor (browser decode)");
    const box = h("div", { class: "decode" }, h("label", { class: "slider" }, "SAM decode", select), preview, this.decodeStatus);
    this.showDecodeStatus();
    return box;
  }

  showDecodeStatus() {
    if (!this.decodeStatus) return;
    this.decodeStatus.textContent = this.decoder.status() || "no click decoded yet";
    this.decodeStatus.dataset.last = this.decoder.last?.path || "";
    this.decodeStatus.dataset.auto = this.decoder.auto?.choice || "";
    this.decodeStatus.dataset.state = this.decoder.state;
  }

  setFilters(b, c) {
    this.brightness = b; this.contrast = c;
    localStorage.setItem("lh.brightness", b); localStorage.setItem("lh.contrast", c);
    this.view.setFilters(b, c);
  }

  renderToolbar() {
    const names = this.editing ? ["select", "segment", "box", "polygon", "brush", "eraser"] : ["select"];
    if (this.review && this.mine) names.push("pin");
    this.toolbar.replaceChildren(...[...names.map((name) => h("button", {
      "data-tool-button": name, "aria-pressed": String(this.tools.tool === name),
      title: `${TOOLS[name].title} (${TOOLS[name].key})`, onclick: () => this.tools.use(name),
    }, `${name} (${TOOLS[name].key})`)),
    this.editing ? h("div", { class: "undo" },
      h("button", { onclick: () => this.undo(), title: "Undo (Ctrl+Z)" }, "Undo"),
      h("button", { onclick: () => this.redo(), title: "Redo (Ctrl+Shift+Z)" }, "Redo")) : null].filter(Boolean));
  }

  renderActions() {
    const b = (label, onclick, cls = "", title = "") => h("button", { class: cls, onclick, title }, label);
    if (!this.mine) {
      this.actions.replaceChildren(b("Back to queue", () => this.go("#/queue")));
      return;
    }
    if (!this.review) {
      this.actions.replaceChildren(b("Release", () => this.leave()), b("Submit", () => this.submit(), "primary", "Ctrl+Enter"));
    } else if (this.editing) {
      this.actions.replaceChildren(b("Cancel edit", () => this.stopEditing()), b("Fix and accept", () => this.fixAccept(), "primary"));
    } else {
      this.actions.replaceChildren(
        b("Release", () => this.leave()),
        b("Edit", () => this.startEditing(), "", "Fix the regions, then accept"),
        b("Reject", () => this.reject(), "danger", "Needs at least one comment"),
        b("Accept", () => this.accept(), "primary", "Ctrl+Enter"));
    }
  }

  // --- region commands ---------------------------------------------------------------------------------
  select(i) {
    this.selected = i;
    this.renderPanels();
  }

  zoomToSelected() {
    const r = this.editor.regions[this.selected];
    const b = r && regionBounds(r);
    if (b) this.view.zoomTo(b);
  }

  pickClass(i) {
    if (i >= this.schema.length) return;
    this.labelIndex = i;
    if (this.editing && this.selected >= 0) this.relabel(this.selected, this.schema[i].name);
    else this.renderPanels();
  }

  relabel(i, label) {
    this.editor.checkpoint();
    this.editor.regions[i].label = label;
    this.editor.changed();
  }

  /** Ctrl+C: the selected region, kept for this browser session (Ctrl+V pastes it here or on the next
   * image in place, as CVAT and Label Studio do). */
  copy() {
    const region = this.editor.regions[this.selected];
    if (!region) { announce("Select a region to copy."); return; }
    sessionStorage.setItem(CLIPBOARD_KEY, JSON.stringify(clipOf(region, this.view)));
    announce(`Copied ${regionName(region, this.selected)}.`);
  }

  /** Ctrl+V (the clipboard) and Ctrl+D (the selected region): a new human region in place, selected. */
  paste(kept = null) {
    if (!this.editing) return;
    let copied = kept;
    if (!copied) {
      try { copied = JSON.parse(sessionStorage.getItem(CLIPBOARD_KEY) || "null"); } catch { copied = null; }
    }
    if (!copied) { announce("Nothing copied yet (Ctrl+C copies the selected region)."); return; }
    const { region, size } = copied;
    const [h, w] = [this.view.height, this.view.width];
    if (!this.schema.some((c) => c.name === region.label)) { announce(`This project has no class "${region.label}".`, "error"); return; }
    const fits = region.kind === "mask"
      ? region.rle?.size?.[0] === h && region.rle?.size?.[1] === w
      : (region.polygons || []).every((p) => [p.exterior, ...(p.holes || [])].every((ring) => ring.every(([x, y]) => x >= 0 && y >= 0 && x <= w && y <= h)));
    if (!fits) { announce(`The copied region (from a ${size[1]}x${size[0]} image) does not fit this ${w}x${h} image.`, "error"); return; }
    this.editor.checkpoint();
    this.editor.regions.push({ ...structuredClone(region), id: this.editor.newId(), source: "human" });
    this.selected = this.editor.regions.length - 1;
    this.editor.changed();
    announce(`Pasted ${regionName(this.editor.regions[this.selected], this.selected)}.`);
  }

  duplicate() {
    const region = this.editor.regions[this.selected];
    if (!region) { announce("Select a region to duplicate."); return; }
    this.paste(clipOf(region, this.view));
  }

  /** Shift+B / Shift+C pick brightness or contrast; = and - then change it (CVAT's keys). */
  nudgeFilter(step) {
    const which = this.filterKey || "brightness";
    const clamp = (v) => Math.round(Math.min(3, Math.max(0.3, v)) * 100) / 100;
    if (which === "brightness") this.setFilters(clamp(this.brightness + step), this.contrast);
    else this.setFilters(this.brightness, clamp(this.contrast + step));
    this.renderPanels();
    announce(`${which === "brightness" ? "Brightness" : "Contrast"} ${Math.round(this[which] * 100)}%`);
  }

  remove(i) {
    if (i < 0 || !this.editing) return;
    this.editor.checkpoint();
    this.editor.regions.splice(i, 1);
    this.selected = -1;
    this.editor.changed();
  }

  toggleHidden(id) {
    if (this.hidden.has(id)) this.hidden.delete(id); else this.hidden.add(id);
    this.renderPanels();
  }

  toggleLocked(id) {
    if (this.locked.has(id)) this.locked.delete(id); else this.locked.add(id);
    this.renderPanels();
  }

  undo() { if (this.editor.undo()) this.afterHistory(); }
  redo() { if (this.editor.redo()) this.afterHistory(); }
  afterHistory() {
    if (this.selected >= this.editor.regions.length) this.selected = -1;
    this.renderPanels();
  }

  // --- comments and review -----------------------------------------------------------------------------
  focusComment(c) {
    const p = this.commentPoint(c);
    if (c.region_id) {
      const i = this.editor.regions.findIndex((r) => r.id === c.region_id);
      if (i >= 0) { this.selected = i; this.zoomToSelected(); this.renderPanels(); return; }
    }
    if (p) this.view.zoomTo({ x0: p.x - 40, y0: p.y - 40, x1: p.x + 40, y1: p.y + 40 });
  }

  async resolveComment(c, resolved) {
    try {
      const out = await api.patch(`comments/${c.id}/`, { resolved });
      Object.assign(c, out);
      announce(resolved ? "Comment resolved" : "Comment reopened");
      this.renderPanels();
    } catch (err) {
      announce(errorText(err), "error");
    }
  }

  addPin(x, y, regionId) {
    this.pendingIssues.push(regionId ? { region_id: regionId, text: "" } : { x: Math.round(x * 100) / 100, y: Math.round(y * 100) / 100, text: "" });
    this.renderPanels();
    const inputs = this.side.querySelectorAll(".issues textarea");
    inputs[inputs.length - 1]?.focus();
  }

  issuesPanel() {
    if (!this.mine) return null;
    const list = h("ol", { class: "issues", "aria-label": "Issues to send with Reject" });
    this.pendingIssues.forEach((c, i) => {
      const where = c.region_id ? `region ${regionName(this.editor.regions.find((r) => r.id === c.region_id) || { label: "?" }, this.editor.regions.findIndex((r) => r.id === c.region_id))}` : `point ${Math.round(c.x)}, ${Math.round(c.y)}`;
      list.append(h("li", {},
        h("label", {}, `+${i + 1} on ${where}`, h("textarea", { rows: 2, "aria-label": `Issue ${i + 1} text`, value: c.text, oninput: (e) => { c.text = e.target.value; } })),
        h("button", { onclick: () => { this.pendingIssues.splice(i, 1); this.renderPanels(); } }, "Remove")));
    });
    return h("section", { class: "panel" }, h("h2", {}, "Issues"),
      h("p", { class: "muted" }, "Pin tool (I): click a region or a point. Or:"),
      h("button", { disabled: this.selected < 0, onclick: () => this.addPin(0, 0, this.editor.regions[this.selected].id) }, "Comment on selected region"),
      list);
  }

  startEditing() {
    this.editing = true;
    this.editor.readOnly = true; // a fix is sent with fix-accept, not autosaved over the annotator's revision
    this.renderToolbar(); this.renderActions(); this.renderPanels();
  }

  async stopEditing() {
    this.editing = false;
    const current = await api.get(`tasks/${this.task.id}/annotation/`);
    this.editor.regions = current.regions;
    this.editor.revision = current.revision;
    this.tools.use("select");
    this.renderToolbar(); this.renderActions(); this.renderPanels();
  }

  // --- finishing -----------------------------------------------------------------------------------------
  async finish(path, body, done) {
    try {
      if (!this.review) await this.editor.flush();
      await api.post(`tasks/${this.task.id}/${path}/`, body);
    } catch (err) {
      announce(`Not done: ${errorText(err)}`, "error");
      return;
    }
    this.finished = true;
    announce(done);
    this.go(`#/next/${this.project.id}/${encodeURIComponent(this.task.stage)}`, { message: done });
  }

  submit() { return this.finish("submit", {}, `Task ${this.task.id} submitted.`); }
  accept() { return this.finish("accept", {}, `Task ${this.task.id} accepted.`); }

  fixAccept() {
    return this.finish("fix-accept", { revision: this.editor.revision, regions: this.editor.regions }, `Task ${this.task.id} fixed and accepted.`);
  }

  reject() {
    const comments = this.pendingIssues.filter((c) => c.text.trim());
    if (!comments.length) {
      announce("A rejection needs at least one issue with text: pin one with the issue tool (I).", "error");
      return;
    }
    return this.finish("reject", { comments }, `Task ${this.task.id} rejected with ${comments.length} comment(s).`);
  }

  async leave() {
    await this.editor.flush().catch(() => {});
    await this.release(false);
    this.finished = true;
    this.go("#/queue");
  }

  // --- keyboard (ignored while an input has focus) ------------------------------------------------------------
  key(e) {
    if (e.target.closest?.("input, textarea, select, [contenteditable]")) return;
    if (document.querySelector("dialog[open]")) return;
    const k = e.key, ctrl = e.ctrlKey || e.metaKey;
    const handled = () => e.preventDefault();
    if (k === "F1") { handled(); shortcutSheet(); return; }
    if (ctrl && k === "Enter") { handled(); if (!this.mine) return; if (this.review && !this.editing) this.accept(); else if (this.review) this.fixAccept(); else this.submit(); return; }
    if (ctrl && (k === "z" || k === "Z")) { handled(); if (e.shiftKey) this.redo(); else this.undo(); return; }
    if (ctrl && (k === "y" || k === "Y")) { handled(); this.redo(); return; }
    if (ctrl && (k === "c" || k === "C")) { handled(); this.copy(); return; }
    if (ctrl && (k === "v" || k === "V")) { handled(); this.paste(); return; }
    if (ctrl && (k === "d" || k === "D")) { handled(); this.duplicate(); return; }
    if (ctrl) return;
    if (e.shiftKey && (k === "B" || k === "C")) {
      handled();
      this.filterKey = k === "B" ? "brightness" : "contrast";
      announce(`${k === "B" ? "Brightness" : "Contrast"}: = brighter / more, - darker / less`);
      return;
    }
    if ((k === "m" || k === "M") && this.editing) { handled(); this.tools.cycleCandidate(); return; }
    if (k === "=" || k === "+" || k === "-" || k === "_") { handled(); this.nudgeFilter(k === "=" || k === "+" ? 0.1 : -0.1); return; }
    if (k === "Escape") { handled(); if (this.tools.draft || this.tools.segment) this.tools.cancel(); else this.select(-1); return; }
    if (k === "Enter" || k === "n" || k === "N") { handled(); this.tools.finish(); return; }
    if (k === "Delete" || k === "Backspace") { handled(); this.remove(this.selected); return; }
    if ((k === "ArrowUp" || k === "ArrowDown") && this.single) {
      handled();
      const n = this.editor.regions.length;
      if (n) { this.select((this.selected + (k === "ArrowUp" ? -1 : 1) + n) % n); this.zoomToSelected(); }
      return;
    }
    if (k === "Tab") { handled(); const n = this.editor.regions.length; if (n) this.select((this.selected + (e.shiftKey ? -1 : 1) + n) % n); return; }
    if (/^[1-9]$/.test(k)) { handled(); this.pickClass(Number(k) - 1); return; }
    if (k === "h" || k === "H") {
      handled();
      if (e.shiftKey) { const all = this.editor.regions.every((r) => this.hidden.has(r.id)); this.hidden = all ? new Set() : new Set(this.editor.regions.map((r) => r.id)); this.renderPanels(); }
      else if (this.selected >= 0) this.toggleHidden(this.editor.regions[this.selected].id);
      return;
    }
    if (k === "l" || k === "L") { handled(); if (this.selected >= 0) this.toggleLocked(this.editor.regions[this.selected].id); return; }
    if (k === "z" || k === "Z") { handled(); this.zoomToSelected(); return; }
    if (k === "0") { handled(); this.view.fit(); return; }
    if (k === "[" || k === "]") { handled(); this.tools.brushRadius = Math.max(1, Math.min(200, this.tools.brushRadius * (k === "]" ? 1.25 : 0.8))); announce(`Brush ${Math.round(this.tools.brushRadius)} px`); return; }
    if (k === "f" || k === "F") { handled(); if (this.mine) this.leave().then(() => this.go(`#/next/${this.project.id}/${encodeURIComponent(this.task.stage)}`)); return; }
    const tool = Object.entries(TOOLS).find(([, t]) => t.key === k.toUpperCase());
    if (tool) {
      const allowed = this.editing || tool[0] === "select" || (tool[0] === "pin" && this.review && this.mine);
      if (allowed) { handled(); this.tools.use(tool[0]); }
    }
  }
}
