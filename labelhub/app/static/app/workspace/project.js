// A project's home for its manager: counts per stage, adding images, pre-labels, and its people.
import * as api from "../api.js";
import { ProjectMembersPanel } from "./members.js";
import { ModelServicesPanel } from "./modelservices.js";
import { WorkspaceNav } from "./nav.js";
import { PrelabelPanel } from "./prelabels.js";
import { html, Loading, useLoad } from "./ui.js";
import { UploadPanel } from "./upload.js";

function Progress({ project, counts }) {
  if (!counts.images) {
    return html`<p class="notice empty-project">This project has no images yet: add images below, then the work can start.</p>`;
  }
  return html`<table class="grid stage-counts"><thead><tr><th>stage</th><th>open</th><th>in progress</th></tr></thead><tbody>
    ${project.pipeline.map((s) => html`<tr><th scope="row">${s.name}</th><td>${counts.by_stage[s.name]?.open || 0}</td><td>${counts.by_stage[s.name]?.in_progress || 0}</td></tr>`)}
    <tr><th scope="row">done</th><td>${counts.by_stage.done?.done || 0}</td><td></td></tr></tbody></table>`;
}

export function ProjectScreen({ projectId }) {
  const { data, error } = useLoad(() => api.get(`projects/${projectId}/`), [projectId]);
  const counts = useLoad(() => api.get(`projects/${projectId}/counts/`), [projectId]);
  const prelabels = useLoad(() => api.get(`projects/${projectId}/presegment/`), [projectId]);
  if (!data || !counts.data) return html`<${Loading} error=${error || counts.error} />`;
  const refresh = () => { counts.reload(); prelabels.reload(); };
  return html`<div class="workspace project-home">
    <${WorkspaceNav} project=${data} current="project" />
    <div class="row"><h1>${data.name}</h1><span class="muted">${counts.data.images} images · ${counts.data.tasks} tasks</span><span class="spacer"></span>
      <a class="button" href="#/people">People of the organization</a></div>
    <p class="chips">${data.label_schema.map((c) => html`<span class="chip" style=${{ borderColor: c.color }}><span class="swatch" style=${{ background: c.color }}></span>${c.name}</span>`)}</p>
    <${Progress} project=${data} counts=${counts.data} />
    <${UploadPanel} projectId=${projectId} onUploaded=${refresh} />
    <${PrelabelPanel} projectId=${projectId} status=${prelabels.data} reload=${prelabels.reload} />
    <${ModelServicesPanel} projectId=${projectId} />
    <${ProjectMembersPanel} project=${data} />
  </div>`;
}
