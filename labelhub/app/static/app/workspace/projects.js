// The projects list: every project I can see, with its counts, and where to go from each.
import * as api from "../api.js";
import { html, Loading, managed, MANAGING, useLoad } from "./ui.js";

async function loadProjects() {
  const [orgs, projects] = await Promise.all([api.all("organizations/"), api.all("projects/")]);
  const counts = await Promise.all(projects.map((p) => api.get(`projects/${p.id}/counts/`)));
  return { orgs, projects: projects.map((p, i) => ({ ...p, counts: counts[i] })) };
}

function ProjectRow({ project, org }) {
  const manages = MANAGING.includes(org?.role);
  const done = project.counts.by_stage.done?.done || 0;
  return html`<tr data-project=${project.id}>
    <th scope="row"><a href=${manages ? `#/project/${project.id}` : "#/queue"}>${project.name}</a></th>
    <td>${org?.name || ""}</td>
    <td>${project.counts.images}</td>
    <td>${done} / ${project.counts.tasks}</td>
    <td><div class="row">${manages ? html`
      <a class="button" href=${`#/project/${project.id}`}>Images and people</a>
      <a class="button" href=${`#/project/${project.id}/settings`}>Settings</a>
      <a class="button" href=${`#/tasks/${project.id}`}>Tasks</a>
      <a class="button" href=${`#/manage/${project.id}`}>Overview</a>` : html`<a class="button" href="#/queue">Queue</a>`}
    </div></td>
  </tr>`;
}

export function ProjectsScreen() {
  const { data, error } = useLoad(loadProjects);
  if (!data) return html`<${Loading} error=${error} />`;
  const orgOf = Object.fromEntries(data.orgs.map((o) => [o.id, o]));
  const canCreate = managed(data.orgs).length > 0;
  return html`<div class="workspace">
    <div class="row"><h1>Projects</h1><span class="spacer"></span>
      ${canCreate ? html`<a class="button primary" href="#/projects/new">New project</a>` : null}
      ${canCreate ? html`<a class="button" href="#/people">People</a>` : null}
    </div>
    ${data.projects.length ? html`<table class="grid projects">
      <thead><tr><th>project</th><th>organization</th><th>images</th><th>done / tasks</th><th></th></tr></thead>
      <tbody>${data.projects.map((p) => html`<${ProjectRow} key=${p.id} project=${p} org=${orgOf[p.organization]} />`)}</tbody>
    </table>` : html`<p class="notice">No project yet.${canCreate ? " Create the first one: its classes, its QA stages, then add images and people." : " Ask a manager to add you to one."}</p>`}
  </div>`;
}
