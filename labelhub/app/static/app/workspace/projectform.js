// Create or edit a project in one screen: name, classes, segmentation type, QA stages, pre-label mode,
// the polygon accuracy bound, the quality settings. Saved with one POST or PATCH; an error names the field it is about.
import { useState } from "preact/hooks";
import * as api from "../api.js";
import { announce } from "../dom.js";
import { ClassRows, classesOut, newClass } from "./classes.js";
import { WorkspaceNav } from "./nav.js";
import { StageRows } from "./stages.js";
import { ErrorLine, html, Loading, managed, useLoad } from "./ui.js";

const DEFAULT_STAGES = [
  { name: "annotate", role: "annotator", sample_rate: 1, reject_to: null },
  { name: "review", role: "reviewer", sample_rate: 1, reject_to: "annotate" },
  { name: "final-qa", role: "reviewer", sample_rate: 1, reject_to: "annotate" },
];
const PRELABEL = [
  ["everything", "Segmentation model, everything mode (SAM, or the classical backend)"],
  ["none", "None: images arrive unlabelled"],
  ["boxes", "From box prompts that come with imported datasets"],
  ["project_model", "The project's own trained model"],
  ["model_service", "The project's model services (Label Studio ML backends)"],
];
const SEGMENTATION = [
  ["instance", "Instance: regions may overlap"],
  ["semantic", "Semantic: one class per pixel"],
  ["panoptic", "Panoptic: things and stuff, one region per pixel"],
];

function draftOf(project) {
  if (!project) {
    const first = newClass([]);
    return { name: "", description: "", label_schema: [first], pipeline: DEFAULT_STAGES, independent_reviews: true,
      segmentation: "instance", prelabel: "everything", polygon_min_iou: 0.98, polygon_max_distance: 2, ...QUALITY_DEFAULTS };
  }
  const { name, description, label_schema, pipeline, independent_reviews, segmentation, prelabel, polygon_min_iou, polygon_max_distance } = project;
  const quality = Object.fromEntries(Object.keys(QUALITY_DEFAULTS).map((k) => [k, project[k] ?? QUALITY_DEFAULTS[k]]));
  return { name, description, label_schema: label_schema.map((c) => ({ hotkey: "", ...c })), pipeline, independent_reviews,
    segmentation, prelabel, polygon_min_iou, polygon_max_distance, ...quality };
}

// The quality settings (labelhub/qa): honeypots, how a region is judged, the project's threshold and what
// falls below it, the automatic send-back. Empty thresholds are null (off).
const QUALITY_DEFAULTS = { honeypot_rate: 0, immediate_feedback: false, quality_metric: "iou", quality_bound: 0.9,
  quality_threshold: "", quality_action: "none", quality_send_back_below: "", quality_send_back_limit: 2 };
const orNull = (v) => (v === "" || v == null ? null : Number(v));

function QualityFields({ draft, field }) {
  return html`<fieldset class="quality-settings"><legend>Quality</legend>
    <div class="row"><label>Honeypot rate <input type="number" min="0" max="1" step="0.01" aria-label="Honeypot rate" value=${draft.honeypot_rate} onInput=${field("honeypot_rate")} /></label>
      <label><input type="checkbox" aria-label="Immediate feedback" checked=${draft.immediate_feedback} onChange=${field("immediate_feedback")} /> Immediate feedback after a honeypot</label></div>
    <div class="row"><label>A matched region is right when its <select aria-label="Quality metric" value=${draft.quality_metric} onChange=${field("quality_metric")}>
      <option value="iou">IoU</option><option value="boundary_f1">Boundary F1 (2 px)</option></select></label>
      <label>is at least <input type="number" min="0" max="1" step="0.01" aria-label="Quality bound" value=${draft.quality_bound} onInput=${field("quality_bound")} /></label></div>
    <div class="row"><label>Project threshold <input type="number" min="0" max="1" step="0.01" aria-label="Quality threshold" value=${draft.quality_threshold ?? ""} onInput=${field("quality_threshold")} /></label>
      <label>below it <select aria-label="Quality action" value=${draft.quality_action} onChange=${field("quality_action")}>
        <option value="none">report only</option><option value="block_export">block exports</option></select></label></div>
    <div class="row"><label>Send a submit back to its annotator below <input type="number" min="0" max="1" step="0.01" aria-label="Send back below" value=${draft.quality_send_back_below ?? ""} onInput=${field("quality_send_back_below")} /></label>
      <label>at most <input type="number" min="1" max="10" step="1" aria-label="Send back limit" value=${draft.quality_send_back_limit} onInput=${field("quality_send_back_limit")} /> times</label>
      <span class="muted">(a honeypot's accuracy where feedback is on, a consensus merge's agreement; empty: never)</span></div>
  </fieldset>`;
}

function bodyOf(draft) {
  const pipeline = draft.pipeline.map((s, i) => ({ name: s.name, role: s.role, sample_rate: i === 0 ? 1 : s.sample_rate,
    ...(i === 0 ? {} : { reject_to: s.reject_to || draft.pipeline[0].name }) }));
  const distance = draft.polygon_max_distance === "" || draft.polygon_max_distance == null ? null : Number(draft.polygon_max_distance);
  return { ...draft, label_schema: classesOut(draft.label_schema), pipeline, polygon_min_iou: Number(draft.polygon_min_iou), polygon_max_distance: distance,
    honeypot_rate: Number(draft.honeypot_rate), quality_bound: Number(draft.quality_bound), quality_threshold: orNull(draft.quality_threshold),
    quality_send_back_below: orNull(draft.quality_send_back_below), quality_send_back_limit: Number(draft.quality_send_back_limit) };
}

function Form({ project, orgs, go }) {
  const [draft, setDraft] = useState(() => draftOf(project));
  const [org, setOrg] = useState(project?.organization || orgs[0]?.id);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const set = (key) => (value) => setDraft((d) => ({ ...d, [key]: value }));
  const field = (key) => (e) => set(key)(e.target.type === "checkbox" ? e.target.checked : e.target.value);
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const saved = project ? await api.patch(`projects/${project.id}/`, bodyOf(draft))
        : await api.post("projects/", { organization: Number(org), ...bodyOf(draft) });
      announce(project ? `Saved ${saved.name}` : `Created ${saved.name}`);
      go(`#/project/${saved.id}`);
    } catch (err) {
      setError(err);
      announce(err.message, "error");
    } finally { setBusy(false); }
  };
  return html`<form class="project-form" onSubmit=${submit} aria-label=${project ? "Project settings" : "New project"}>
    <h1>${project ? `${project.name}: settings` : "New project"}</h1>
    ${!project && orgs.length > 1 ? html`<label>Organization <select aria-label="Organization" value=${org} onChange=${(e) => setOrg(e.target.value)}>
      ${orgs.map((o) => html`<option value=${o.id}>${o.name}</option>`)}</select></label>` : null}
    <div class="row"><label>Name <input aria-label="Project name" value=${draft.name} required maxlength="200" onInput=${field("name")} /></label></div>
    <label class="block">Description <textarea aria-label="Description" rows="2" value=${draft.description} onInput=${field("description")}></textarea></label>
    <${ClassRows} classes=${draft.label_schema} onChange=${set("label_schema")} />
    <fieldset><legend>Segmentation and pre-labels</legend>
      <div class="row"><label>Segmentation type <select aria-label="Segmentation type" value=${draft.segmentation} onChange=${field("segmentation")}>
        ${SEGMENTATION.map(([v, t]) => html`<option value=${v}>${t}</option>`)}</select></label></div>
      <div class="row"><label>Pre-labels <select aria-label="Pre-label mode" value=${draft.prelabel} onChange=${field("prelabel")}>
        ${PRELABEL.map(([v, t]) => html`<option value=${v}>${t}</option>`)}</select></label></div>
      <div class="row"><span>Polygon bound: a model's mask becomes polygons with IoU at least</span>
        <input type="number" min="0.5" max="1" step="0.01" aria-label="Polygon minimum IoU" value=${draft.polygon_min_iou} onInput=${field("polygon_min_iou")} />
        <span>and every point within</span>
        <input type="number" min="0" max="100" step="0.5" aria-label="Polygon maximum distance" value=${draft.polygon_max_distance ?? ""} onInput=${field("polygon_max_distance")} />
        <span>pixels (empty: no distance bound)</span></div>
    </fieldset>
    <${StageRows} stages=${draft.pipeline} independent=${draft.independent_reviews} onChange=${set("pipeline")} onIndependent=${set("independent_reviews")} />
    <${QualityFields} draft=${draft} field=${field} />
    <${ErrorLine} error=${error} />
    <div class="row"><button type="submit" class="primary" disabled=${busy}>${project ? "Save" : "Create project"}</button>
      <a class="button" href=${project ? `#/project/${project.id}` : "#/projects"}>Cancel</a></div>
  </form>`;
}

export function ProjectFormScreen({ projectId, go }) {
  const { data, error } = useLoad(async () => ({
    orgs: managed(await api.all("organizations/")),
    project: projectId ? await api.get(`projects/${projectId}/`) : null,
  }), [projectId]);
  if (!data) return html`<${Loading} error=${error} />`;
  if (!data.orgs.length) return html`<p class="notice">Only owners and managers create projects.</p>`;
  return html`<div class="workspace">${data.project ? html`<${WorkspaceNav} project=${data.project} current="settings" />` : null}
    <${Form} project=${data.project} orgs=${data.orgs} go=${go} /></div>`;
}
