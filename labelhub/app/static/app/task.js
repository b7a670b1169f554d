// The task screen: annotate (first stage) or review (later stages: read-only, Edit for fix-accept).
// It composes small parts, each one concept: the lease (lease.js), the document and its autosave
// (editor.js), the canvas (view.js) and its mouse tools (tools.js), region commands (here), the
// clipboard (clipboard.js), review issues and comments (review.js), the keymap and its dispatch
// (keymap.js, commands below). A change redraws only the panels it touches (refresh(...names)).
import * as api from "./api.js";
import * as clipboard from "./clipboard.js";
import { honeypotFeedback } from "./workspace/quality.js";
import { announce, choose, errorText, h } from "./dom.js";
import { Editor } from "./editor.js";
import { dispatcher, keyLabel, shortcutSheet } from "./keymap.js";
import { Lease } from "./lease.js";
import { commentsPanel, regionsPanel, timelinePanel } from "./panel.js";
import { Review } from "./review.js";
import { DecodeChooser, MODES } from "./samdecode.js";
import { attachPyramid } from "./tiles/pyramid.js";
import { PREVIEW_KEY, Tools, TOOLS } from "./tools.js";
import { classColor, regionBounds, View } from "./view.js";

const HISTORY_KEY = "lh.history"; // the tasks this tab opened, in order (D goes back through them)

function history() {
  try { return JSON.parse(sessionStorage.getItem(HISTORY_KEY) || "[]"); } catch { return []; }
}

function remember(taskId) {
  const list = history().filter((id) => id !== taskId);
  list.push(taskId);
  sessionStorage.setItem(HISTORY_KEY, JSON.stringify(list.slice(-200)));
}

/** #/task/<id>: that task (a deep link claims exactly it when it is yours to take; otherwise it opens
 * view-only and says why). */
export async function taskScreen(root, { taskId, go }) {
  const t0 = performance.now();
  let task = await api.get(`tasks/${taskId}/`);
  let why = "";
  if (task.status !== "done" && !(task.status === "in_progress" && task.assignee === api.me.id)) {
    // A deep link or a reload (pagehide released the lease): take exactly this task (tasks/{id}/claim/).
    // When it cannot be taken the server says why (leased by someone until T, kept for someone, your own
    // work, independent reviews): view-only, with that reason.
    try { task = await api.post(`tasks/${task.id}/claim/`); } catch (err) { why = errorText(err); }
  }
  const [project, annotation, comments, services, predictions, image] = await Promise.all([
    api.get(`projects/${task.project}/`),
    api.get(`tasks/${taskId}/annotation/`),
    api.all(`tasks/${taskId}/comments/`),
    api.get(`projects/${task.project}/model-services/`).catch(() => []),
    api.get(`predictions/?image=${task.image}`).catch(() => ({ results: [] })),
    // the image row says whether it has a tile pyramid: read beside the rest, not after them
    task.image ? api.get(`images/${task.image}/`).catch(() => null) : null,
  ]);
  const stageIndex = project.pipeline.findIndex((s) => s.name === task.stage);
  const review = stageIndex > 0;
  const mine = task.assignee === api.me.id && task.lease_expires_at && task.status === "in_progress";
  const s = new TaskScreen({ root, go, task, project, annotation, comments, review, mine, why });
  s.image = image;
  // The project's interactive model service (a Label Studio ML backend) answers the segment tool's
  // clicks; every pre-label shows its source (the model, or the service and its model version).
  s.interactiveService = services.find((x) => x.uses.includes("interactive") && !x.paused) || null;
  s.sources = new Map((predictions.results || []).map((p) => [p.id, p.service ? `${p.model_name.replace(/^service:/, "")} · ${p.model_version || "?"}` : p.model_name]));
  await s.mount();
  remember(task.id);
  document.body.dataset.firstRenderMs = String(Math.round(performance.now() - t0));
  return s;
}

class TaskScreen {
  constructor({ root, go, task, project, annotation, comments, review, mine, why }) {
    Object.assign(this, { root, go, task, project, comments, review, mine, why });
    this.schema = project.label_schema;
    this.selected = -1;
    this.hidden = new Set();
    this.locked = new Set();
    this.labelIndex = 0;
    this.editing = !review && mine; // reviewers press Edit to fix
    this.finished = false;
    this.brightness = Number(localStorage.getItem("lh.brightness") || 1);
    this.contrast = Number(localStorage.getItem("lh.contrast") || 1);
    this.issues = new Review(this);
    this.editor = new Editor({ task, annotation, onChange: () => this.regionsChanged(), readOnly: !this.editing });
    this.editor.onLeaseLost = () => this.mine && !this.finished && this.lease.reclaim();
  }

  get readOnly() { return !this.editing; }
  get canComment() { return this.mine; }

  currentLabel() { return this.schema[this.labelIndex]?.name || this.schema[0].name; }

  async mount() {
    const { task, project } = this;
    this.saveState = h("span", { class: "save-state", "data-save-state": "saved", role: "status", "aria-live": "polite" }, `Revision ${this.editor.revision}`);
    this.leaseEl = h("span", { class: "lease", title: "Lease time left (heartbeats keep it)" });
    this.actions = h("div", { class: "actions" });
    this.toolbar = h("nav", { class: "tools", "aria-label": "Tools" });
    const canvas = h("div", { class: "canvas", tabindex: "0", "aria-label": `Image of task ${task.id}` });
    // One slot per panel: refresh(name) redraws that one only.
    this.slots = Object.fromEntries(["classes", "regions", "issues", "comments", "timeline", "view"].map((n) => [n, h("div", { class: `slot slot-${n}` })]));
    this.side = h("aside", { class: "side", "aria-label": "Regions and comments" }, ...Object.values(this.slots));
    this.root.replaceChildren(
      h("div", { class: `task ${this.review ? "review" : "annotate"}` },
        h("div", { class: "taskbar" },
          h("strong", {}, `${project.name} · task ${task.id}`),
          h("span", { class: "stage" }, `stage ${task.stage}`),
          this.saveState, this.leaseEl,
          h("span", { class: "spacer" }),
          h("button", { onclick: () => this.previousTask(), title: `Previous of my tasks (${keyLabel("previous-task")})` }, "◀ Previous"),
          h("button", { onclick: () => this.nextTask(), title: `Next task (${keyLabel("next-task")})` }, "Next ▶"),
          h("button", { onclick: () => shortcutSheet(), title: "Keyboard shortcuts (F1)" }, "Shortcuts (F1)"),
          this.actions),
        this.toolbar, canvas, this.side));
    this.view = new View(canvas, { width: task.image_width, height: task.image_height, schema: this.schema });
    this.view.setFilters(this.brightness, this.contrast);
    this.decoder = new DecodeChooser(task.image);
    this.decoder.onChange = () => this.showDecodeStatus();
    this.tools = new Tools(this);
    this.view.onVertexDrag = (v, xy, phase) => this.tools.vertexDrag(v, xy, phase);
    this.view.onVertexDelete = (v) => this.tools.vertexDelete(v);
    if (!(await attachPyramid(this.view, task.image, this.image))) await this.view.loadImage(`/api/v1/images/${task.image}/file/`);
    this.renderToolbar();
    this.renderActions();
    this.refresh("classes", "regions", "issues", "comments", "timeline", "view");
    this.render();
    this.onKey = dispatcher(this.commands(), (key) => this.classKey(key));
    window.addEventListener("keydown", this.onKey);
    if (this.mine) {
      this.lease = new Lease({ task, project, el: this.leaseEl });
      this.lease.start();
      this.onHide = () => this.lease.release(true);
      window.addEventListener("pagehide", this.onHide);
    } else {
      this.leaseEl.textContent = "view only";
      if (this.why) announce(`View only: ${this.why}`, "error");
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
    this.lease?.stop();
    window.removeEventListener("keydown", this.onKey);
    if (this.onHide) window.removeEventListener("pagehide", this.onHide);
    if (this.mine && !this.finished) {
      await this.editor.flush().catch(() => {});
      await this.lease.release(false);
    }
    this.tools.destroy();
    this.view.destroy();
  }

  async loadTimeline() {
    this.timeline = await api.get(`tasks/${this.task.id}/timeline/`);
    this.refresh("timeline");
  }

  // --- drawing: the canvas and the panels, each redrawn when what it shows changed ----------------------
  pins() { return this.issues.pins(); }

  /** Hidden regions; in single-region mode (review) all but the selected one. */
  get shownHidden() {
    if (!this.single) return this.hidden;
    return new Set(this.editor.regions.filter((_, i) => i !== this.selected).map((r) => r.id));
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

  panel(name) {
    switch (name) {
      case "classes": return this.editing ? this.classesPanel() : null;
      case "regions": return regionsPanel(this);
      case "issues": return this.review ? this.issues.panel() : null;
      case "comments": return commentsPanel(this);
      case "timeline": return this.review ? timelinePanel(this.timeline) : null;
      case "view": return this.viewPanel();
      default: return null;
    }
  }

  refresh(...names) {
    for (const name of names) this.slots[name].replaceChildren(...[this.panel(name)].filter(Boolean));
  }

  /** The regions changed (an edit, undo, a save's ids): their list and the canvas. */
  regionsChanged() {
    if (this.selected >= this.editor.regions.length) this.selected = -1;
    this.refresh("regions");
    this.render();
  }

  classesPanel() {
    return h("section", { class: "panel" }, h("h2", {}, "Class"),
      h("div", { class: "classes", role: "radiogroup", "aria-label": "Class for the next region" },
        this.schema.map((c, i) => h("button", {
          role: "radio", "aria-checked": String(i === this.labelIndex), title: `Key ${c.hotkey || i + 1}`,
          onclick: () => this.pickClass(i),
        }, h("span", { class: "swatch", style: { background: classColor(this.schema, c.name) } }), `${c.hotkey || i + 1} ${c.name}`))));
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
      browser: "In this browser, from the image's embedding",
      server: "On the server",
    };
    this.decodeStatus = h("p", { class: "muted decode-status", "data-decode-status": "", "aria-live": "polite" });
    if (this.decoder.final) {
      const box = h("div", { class: "decode" }, this.decodeStatus);
      this.showDecodeStatus();
      return box;
    }
    const select = h("select", {
      "data-decode-mode": "", "aria-label": "SAM click decoding", title: titles[this.decoder.mode],
      onchange: (e) => { this.decoder.setMode(e.target.value); e.target.title = titles[e.target.value]; },
    }, MODES.map((m) => h("option", { value: m, selected: m === this.decoder.mode, title: titles[m] }, m)));
    const preview = h("label", { class: "check", title: "Decoded in the browser while the pointer rests (segment tool)" },
      h("input", {
        type: "checkbox", "data-sam-preview": "", checked: localStorage.getItem(PREVIEW_KEY) !== "off",
        onchange: (e) => { localStorage.setItem(PREVIEW_KEY, e.target.checked ? "on" : "off"); if (!e.target.checked) this.tools.clearPreview(); },
      }), " Mask under the cursor");
    const box = h("div", { class: "decode" }, h("label", { class: "slider" }, "Segment clicks in", select), preview, this.decodeStatus);
    this.showDecodeStatus();
    return box;
  }

  showDecodeStatus() {
    if (!this.decodeStatus) return;
    this.decodeStatus.textContent = this.decoder.status() || "no click segmented yet";
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
      title: `${TOOLS[name].title} (${keyLabel(`${name}-tool`)})`, onclick: () => this.tools.use(name),
    }, `${name} (${keyLabel(`${name}-tool`)})`)),
    this.editing ? h("div", { class: "undo" },
      h("button", { onclick: () => this.undo(), title: "Undo (Ctrl+Z)" }, "Undo"),
      h("button", { onclick: () => this.redo(), title: "Redo (Ctrl+Shift+Z)" }, "Redo")) : null].filter(Boolean));
  }

  renderActions() {
    const b = (label, onclick, cls = "", title = "") => h("button", { class: cls, onclick, title }, label);
    if (!this.mine) {
      this.actions.replaceChildren(b("Back to queue", () => this.go("#/queue")));
    } else if (!this.review) {
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
    this.refresh("regions");
    this.render();
  }

  zoomToSelected() {
    const r = this.editor.regions[this.selected];
    const b = r && regionBounds(r);
    if (b) this.view.zoomTo(b);
  }

  pickClass(i) {
    if (i < 0 || i >= this.schema.length) return;
    this.labelIndex = i;
    this.refresh("classes");
    if (this.editing && this.selected >= 0) this.relabel(this.selected, this.schema[i].name);
  }

  /** A key no command holds: a class's own hotkey (the project's), else 1-9 by position. */
  classKey(key) {
    const byHotkey = this.schema.findIndex((c) => c.hotkey && c.hotkey.toLowerCase() === key.toLowerCase());
    if (byHotkey >= 0) { this.pickClass(byHotkey); return true; }
    return false;
  }

  relabel(i, label) {
    this.editor.checkpoint();
    this.editor.regions[i].label = label;
    this.editor.changed();
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
    this.regionsChanged();
  }

  toggleLocked(id) {
    if (this.locked.has(id)) this.locked.delete(id); else this.locked.add(id);
    this.regionsChanged();
  }

  toggleSingle() {
    this.single = !this.single;
    if (this.single && this.selected < 0 && this.editor.regions.length) this.selected = 0;
    this.regionsChanged();
  }

  step(delta) {
    const n = this.editor.regions.length;
    if (n) this.select((this.selected + delta + n) % n);
  }

  undo() { if (this.editor.undo()) this.afterHistory(); }
  redo() { if (this.editor.redo()) this.afterHistory(); }
  afterHistory() { this.regionsChanged(); }

  /** Shift+B / Shift+C pick brightness or contrast; = and - then change it (CVAT's keys). */
  nudgeFilter(step) {
    const which = this.filterKey || "brightness";
    const clamp = (v) => Math.round(Math.min(3, Math.max(0.3, v)) * 100) / 100;
    if (which === "brightness") this.setFilters(clamp(this.brightness + step), this.contrast);
    else this.setFilters(this.brightness, clamp(this.contrast + step));
    this.refresh("view");
    announce(`${which === "brightness" ? "Brightness" : "Contrast"} ${Math.round(this[which] * 100)}%`);
  }

  // --- review ------------------------------------------------------------------------------------------
  addPin(x, y, regionId) { this.issues.addPin(x, y, regionId); }

  startEditing() {
    this.editing = true;
    this.editor.readOnly = true; // a fix is sent with fix-accept, not autosaved over the annotator's revision
    this.renderToolbar(); this.renderActions(); this.refresh("classes", "regions", "view"); this.render();
  }

  async stopEditing() {
    this.editing = false;
    const current = await api.get(`tasks/${this.task.id}/annotation/`);
    this.editor.regions = current.regions;
    this.editor.revision = current.revision;
    this.tools.use("select");
    this.renderToolbar(); this.renderActions(); this.refresh("classes", "regions", "view"); this.render();
  }

  // --- finishing and moving between tasks -------------------------------------------------------------
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

  async submit() {
    const id = this.task.id;
    await this.finish("submit", {}, `Task ${id} submitted.`);
    if (this.finished) await honeypotFeedback(this.project, id);
  }
  accept() { return this.finish("accept", {}, `Task ${this.task.id} accepted.`); }

  fixAccept() {
    return this.finish("fix-accept", { revision: this.editor.revision, regions: this.editor.regions }, `Task ${this.task.id} fixed and accepted.`);
  }

  reject() {
    const comments = this.issues.rejection();
    if (comments) return this.finish("reject", { comments }, `Task ${this.task.id} rejected with ${comments.length} comment(s).`);
  }

  async leave(to = "#/queue") {
    if (this.mine && !this.finished) {
      await this.editor.flush().catch(() => {});
      await this.lease.release(false);
    }
    this.finished = true;
    this.go(to);
  }

  /** F: save, give this task back, and take the next one of the stage: never this one again. */
  nextTask() {
    return this.leave(`#/next/${this.project.id}/${encodeURIComponent(this.task.stage)}/${this.task.id}`);
  }

  /** D: the task this tab had open before this one (view-only when it has moved on). */
  previousTask() {
    const list = history();
    const at = list.indexOf(this.task.id);
    const before = at > 0 ? list[at - 1] : null;
    if (!before) { announce("No earlier task in this tab."); return; }
    return this.leave(`#/task/${before}`);
  }

  // --- the keymap's commands (keymap.js holds the keys) -----------------------------------------------
  commands() {
    const ifEditing = (f) => () => { if (this.editing) f(); };
    const tool = (name) => () => {
      const allowed = this.editing || name === "select" || (name === "pin" && this.review && this.mine);
      if (allowed) this.tools.use(name);
    };
    const c = {
      "next-candidate": ifEditing(() => this.tools.cycleCandidate()),
      finish: () => this.tools.finish(),
      cancel: () => { if (this.tools.draft || this.tools.segment) this.tools.cancel(); else this.select(-1); },
      undo: () => this.undo(),
      redo: () => this.redo(),
      delete: () => this.remove(this.selected),
      copy: () => clipboard.copy(this),
      paste: () => clipboard.paste(this),
      duplicate: () => clipboard.duplicate(this),
      hide: () => { if (this.selected >= 0) this.toggleHidden(this.editor.regions[this.selected].id); },
      "hide-all": () => {
        const all = this.editor.regions.every((r) => this.hidden.has(r.id));
        this.hidden = all ? new Set() : new Set(this.editor.regions.map((r) => r.id));
        this.regionsChanged();
      },
      lock: () => { if (this.selected >= 0) this.toggleLocked(this.editor.regions[this.selected].id); },
      "next-region": () => this.step(1),
      "previous-region": () => this.step(-1),
      "single-next": () => { if (this.single) { this.step(1); this.zoomToSelected(); } },
      "single-previous": () => { if (this.single) { this.step(-1); this.zoomToSelected(); } },
      "zoom-selected": () => this.zoomToSelected(),
      fit: () => this.view.fit(),
      "brush-smaller": () => this.brush(0.8),
      "brush-larger": () => this.brush(1.25),
      brightness: () => this.pickFilter("brightness"),
      contrast: () => this.pickFilter("contrast"),
      "filter-up": () => this.nudgeFilter(0.1),
      "filter-down": () => this.nudgeFilter(-0.1),
      "next-task": () => this.nextTask(),
      "previous-task": () => this.previousTask(),
      submit: () => {
        if (!this.mine) return;
        if (this.review && !this.editing) this.accept(); else if (this.review) this.fixAccept(); else this.submit();
      },
      shortcuts: () => shortcutSheet(),
    };
    for (const name of Object.keys(TOOLS)) c[`${name}-tool`] = tool(name);
    for (let n = 1; n <= 9; n++) c[`class-${n}`] = () => this.pickClass(n - 1);
    return c;
  }

  brush(factor) {
    this.tools.brushRadius = Math.max(1, Math.min(200, this.tools.brushRadius * factor));
    announce(`Brush ${Math.round(this.tools.brushRadius)} px`);
  }

  pickFilter(which) {
    this.filterKey = which;
    announce(`${which === "brightness" ? "Brightness" : "Contrast"}: = brighter / more, - darker / less`);
  }
}
