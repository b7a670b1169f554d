// The task screen: annotate (first stage) or review (later stages: read-only, Edit for fix-accept).
// This module loads a task and wires the parts, each one concept: the store of the open task's state
// (store.js; its slices below), the document (editor.js) and its autosave (task/save.js), the lease
// (lease.js), the bars (task/toolbar.js), the side panels (task/panels.js, panel.js), the canvas
// (task/canvas.js, view.js, tools.js), region commands (task/regions.js), the keymap's commands
// (task/keys.js), review issues and comments (review.js), finishing (task/finish.js) and moving between
// tasks (task/navigation.js). Each part subscribes to the slices it draws: a change redraws only them.
import * as api from "./api.js";
import { announce, errorText, h } from "./dom.js";
import { Editor } from "./editor.js";
import { dispatcher } from "./keymap.js";
import { Lease } from "./lease.js";
import { Review } from "./review.js";
import { DecodeChooser } from "./samdecode.js";
import { createStore } from "./store.js";
import { attachPyramid } from "./tiles/pyramid.js";
import { Tools } from "./tools.js";
import { View } from "./view.js";
import { applyFilters, drawCanvas, renderLight, shownHidden } from "./task/canvas.js";
import { finishing } from "./task/finish.js";
import { commands } from "./task/keys.js";
import { navigation, remember } from "./task/navigation.js";
import { sidePanels } from "./task/panels.js";
import { regionCommands } from "./task/regions.js";
import { Autosave } from "./task/save.js";
import { taskbar, toolbar } from "./task/toolbar.js";

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

// The slices read and written as the screen's own fields (s.selected = i sets the store's slice).
const FIELDS = ["selected", "hidden", "locked", "single", "labelIndex", "editing", "comments"];

class TaskScreen {
  constructor({ root, go, task, project, annotation, comments, review, mine, why }) {
    Object.assign(this, { root, go, task, project, review, mine, why });
    this.schema = project.label_schema;
    this.finished = false;
    this.store = createStore({
      regions: [], // the document: editor.js keeps it, tools edit it in place and say so (touch)
      selected: -1, hidden: new Set(), locked: new Set(), single: false, // which regions, how shown
      labelIndex: 0, // the class for the next region
      editing: !review && mine, // reviewers press Edit to fix
      tool: "select", draft: null, // the tool in hand and its drawing under way (tools.js)
      save: { state: "saved", text: `Revision ${annotation.revision}` }, // the autosave's state
      lease: null, // seconds left on this tab's lease (lease.js)
      comments, issues: [], showResolved: false, timeline: null, // review: comments, pins, history
      filters: { brightness: Number(localStorage.getItem("lh.brightness") || 1), contrast: Number(localStorage.getItem("lh.contrast") || 1) },
      opacity: { fill: 0.3, selected: 0.5 }, // region fills: all, the selected one
    });
    this.issues = new Review(this);
    this.editor = new Editor({ store: this.store, task, annotation, readOnly: !this.editing });
    this.autosave = new Autosave(this.editor);
    this.autosave.onLeaseLost = () => this.mine && !this.finished && this.lease.reclaim();
    this.decoder = new DecodeChooser(task.image);
  }

  get readOnly() { return !this.editing; }
  get canComment() { return this.mine; }
  get shownHidden() { return shownHidden(this.store.get()); }
  get brightness() { return this.store.get("filters").brightness; }
  get contrast() { return this.store.get("filters").contrast; }

  async mount() {
    const { task } = this;
    const canvas = h("div", { class: "canvas", tabindex: "0", "aria-label": `Image of task ${task.id}` });
    const tools = h("nav", { class: "tools", "aria-label": "Tools" });
    this.side = h("aside", { class: "side", "aria-label": "Regions and comments" });
    this.root.replaceChildren(h("div", { class: `task ${this.review ? "review" : "annotate"}` },
      taskbar(this), tools, canvas, this.side));
    this.view = new View(canvas, { width: task.image_width, height: task.image_height, schema: this.schema });
    applyFilters(this);
    this.tools = new Tools(this);
    this.view.onVertexDrag = (v, xy, phase) => this.tools.vertexDrag(v, xy, phase);
    this.view.onVertexDelete = (v) => this.tools.vertexDelete(v);
    if (!(await attachPyramid(this.view, task.image, this.image))) await this.view.loadImage(`/api/v1/images/${task.image}/file/`);
    toolbar(this, tools);
    sidePanels(this, this.side);
    drawCanvas(this);
    this.onKey = dispatcher(commands(this), (key) => this.classKey(key));
    window.addEventListener("keydown", this.onKey);
    if (this.mine) {
      this.lease = new Lease({ task, project: this.project, store: this.store });
      this.lease.start();
      this.onHide = () => this.lease.release(true);
      window.addEventListener("pagehide", this.onHide);
    } else if (this.why) {
      announce(`View only: ${this.why}`, "error");
    }
    if (this.review) this.loadTimeline();
    const draft = this.editing && this.editor.pendingDraft();
    if (draft) this.autosave.offerDraft(draft);
    window.labelhub = { screen: this, view: this.view, editor: this.editor, decoder: this.decoder, store: this.store };
  }

  async destroy() {
    this.lease?.stop();
    window.removeEventListener("keydown", this.onKey);
    if (this.onHide) window.removeEventListener("pagehide", this.onHide);
    if (this.mine && !this.finished) {
      await this.autosave.flush().catch(() => {});
      await this.lease.release(false);
    }
    this.store.close();
    this.tools.destroy();
    this.view.destroy();
  }

  async loadTimeline() {
    this.store.set({ timeline: await api.get(`tasks/${this.task.id}/timeline/`) });
  }

  pins() { return this.issues.pins(); }

  /** A cheap redraw while dragging a vertex (the regions only; no panel, handles kept). */
  renderLight() { renderLight(this); }
}

for (const key of FIELDS) {
  Object.defineProperty(TaskScreen.prototype, key, {
    get() { return this.store.get(key); },
    set(value) { this.store.set({ [key]: value }); },
  });
}
Object.assign(TaskScreen.prototype, regionCommands, finishing, navigation);
