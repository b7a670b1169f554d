// Who works on a project: its members (annotators and reviewers see only their projects; owners and
// managers see them all) and the organization's members who can be added.
import { useState } from "preact/hooks";
import * as api from "../api.js";
import { announce } from "../dom.js";
import { ErrorLine, html, Loading, MANAGING, useLoad } from "./ui.js";

export function ProjectMembersPanel({ project }) {
  const { data, error, reload } = useLoad(async () => {
    const [members, org] = await Promise.all([
      api.all(`projects/${project.id}/members/`),
      api.all(`organizations/${project.organization}/members/`),
    ]);
    return { members, org };
  }, [project.id]);
  const [failure, setFailure] = useState(null);
  const [pick, setPick] = useState("");
  if (!data) return html`<section class="card"><${Loading} error=${error} /></section>`;
  const inProject = new Set(data.members.map((m) => m.user));
  const roleOf = Object.fromEntries(data.org.map((m) => [m.user_id, m.role]));
  const candidates = data.org.filter((m) => !inProject.has(m.user_id) && !MANAGING.includes(m.role));
  const act = async (fn, text) => {
    setFailure(null);
    try { await fn(); announce(text); } catch (err) { setFailure(err); }
    reload();
  };
  const add = (ids) => act(() => Promise.all(ids.map((id) => api.post(`projects/${project.id}/members/`, { user: Number(id) }))),
    `${ids.length} member${ids.length === 1 ? "" : "s"} added to ${project.name}`);
  return html`<section class="card project-members" aria-labelledby="pm-h">
    <h2 id="pm-h">Project members</h2>
    <p class="muted">Owners and managers of the organization work on every project; annotators and reviewers only on those they are added to.</p>
    ${data.members.length ? html`<table class="grid"><tbody>${data.members.map((m) => html`<tr data-member=${m.username}>
      <th scope="row">${m.username}</th><td>${roleOf[m.user] || ""}</td>
      <td><button aria-label=${`Remove ${m.username} from the project`} onClick=${() => act(() => api.del(`projects/${project.id}/members/${m.user}/`), `${m.username} removed`)}>Remove</button></td>
    </tr>`)}</tbody></table>` : html`<p class="notice">Nobody works on this project yet.</p>`}
    ${candidates.length ? html`<div class="row">
      <select aria-label="Member to add" value=${pick} onChange=${(e) => setPick(e.target.value)}>
        <option value="">choose a member…</option>
        ${candidates.map((m) => html`<option value=${m.user_id}>${m.username} (${m.role})</option>`)}</select>
      <button disabled=${!pick} onClick=${() => { add([pick]); setPick(""); }}>Add to project</button>
      <button onClick=${() => add(candidates.map((m) => m.user_id))}>Add all ${candidates.length} annotators and reviewers</button>
    </div>` : html`<p class="muted">Every annotator and reviewer of the organization is in this project. <a href="#/people">Invite people</a>.</p>`}
    <${ErrorLine} error=${failure} />
  </section>`;
}
