// The manager's task list: filters (stage, status, assignee, gold, open comments, AI source), sort and
// pages from GET projects/{id}/tasks/; row actions open (a deep link), reassign, gold and the timeline.
import { html } from "htm/preact";
import { useEffect, useRef, useState } from "preact/hooks";
import * as api from "../api.js";
import { announce, errorText } from "../dom.js";
import { mount, when, WorkspaceNav } from "./nav.js";
import { EMPTY, firstRequests, PAGE_SIZE, query } from "./tasksfirst.js";

const MANAGING = ["owner", "manager"];

export async function tasksScreen(root, { projectId }) {
  // One round trip before the rows: the project and the first page together; the people (for the
  // assignee filter and reassign) follow.
  const t0 = performance.now();
  const [project, first] = await Promise.all(firstRequests(projectId).map((path) => api.get(path)));
  return mount(root, html`<${TaskList} project=${project} first=${first} t0=${t0} />`);
}

/** The members who may be given tasks of this project: its managers and owners, and its members. */
async function projectPeople(project) {
  const [members, projectMembers] = await Promise.all([
    api.all(`organizations/${project.organization}/members/`),
    api.all(`projects/${project.id}/members/`),
  ]);
  const inProject = new Set(projectMembers.map((m) => m.user));
  return members.filter((m) => MANAGING.includes(m.role) || inProject.has(m.user_id));
}

function drawn(t0) {
  // For the benchmark: ms from the request (and from navigation start) to the frame with the rows.
  requestAnimationFrame(() => {
    const b = document.body.dataset;
    b.tasksDrawnMs = String(Math.round(performance.now() - t0));
    b.tasksDrawnAt = String(Math.round(performance.now()));
    b.tasksDrawn = String(Number(b.tasksDrawn || 0) + 1);
  });
}

function TaskList({ project, first, t0: firstAt }) {
  const [people, setPeople] = useState([]);
  useEffect(() => { projectPeople(project).then(setPeople, (err) => announce(errorText(err), "error")); }, []);
  const [filters, setFilters] = useState(EMPTY);
  const [page, setPage] = useState(1);
  const [data, setData] = useState(first);
  const initial = useRef(true);
  const [error, setError] = useState("");
  const [open, setOpen] = useState(null); // the task whose timeline is shown
  const [tick, setTick] = useState(0);
  const pageSize = PAGE_SIZE;
  useEffect(() => {
    if (initial.current) { initial.current = false; drawn(firstAt); return undefined; } // the first page came with the screen
    let live = true;
    const t0 = performance.now();
    api.get(`projects/${project.id}/tasks/?${query(filters, page, pageSize)}`).then((d) => {
      if (!live) return;
      setData(d);
      setError("");
      drawn(t0);
    }, (err) => live && setError(errorText(err)));
    return () => { live = false; };
  }, [filters, page, tick]);
  const set = (key) => (e) => { setPage(1); setFilters({ ...filters, [key]: e.currentTarget.value }); };
  const stages = [...project.pipeline.map((s) => s.name), "done"];
  const select = (key, label, options) => html`<label>${label} <select aria-label=${label} value=${filters[key]} onChange=${set(key)}>
    ${options.map(([v, t]) => html`<option value=${v}>${t}</option>`)}</select></label>`;
  const reload = () => setTick(tick + 1);
  return html`<div class="manager tasks">
    <${WorkspaceNav} project=${project} current="tasks" />
    <h1>Tasks</h1>
    <form class="row filters" aria-label="Task filters" onSubmit=${(e) => e.preventDefault()}>
      ${select("stage", "Stage", [["", "any"], ...stages.map((s) => [s, s])])}
      ${select("status", "Status", [["", "any"], ["open", "open"], ["in_progress", "in progress"], ["done", "done"]])}
      ${select("assignee", "Assignee", [["", "anyone"], ["none", "nobody"], ...people.map((m) => [String(m.user_id), m.username])])}
      ${select("gold", "Gold", [["", "any"], ["true", "gold only"], ["false", "not gold"]])}
      ${select("open_comments", "Open comments", [["", "any"], ["true", "with open comments"], ["false", "none open"]])}
      ${select("source", "Regions", [["", "any"], ["ai", "AI regions left"], ["human", "no AI region"]])}
      ${select("sort", "Sort", [["id", "oldest first"], ["-id", "newest first"], ["-updated_at", "recently changed"], ["updated_at", "least recently changed"]])}
      <button type="button" onClick=${() => { setPage(1); setFilters(EMPTY); }}>Clear</button>
    </form>
    ${error && html`<p class="error" role="alert">${error}</p>`}
    ${data && html`<p class="muted" aria-live="polite" data-count=${data.count}>
      ${data.count_exact ? data.count : `more than ${data.count}`} tasks · page ${data.page}</p>
    <table class="grid task-table" aria-label="Tasks">
      <thead><tr><th></th><th>task</th><th>image</th><th>stage</th><th>status</th><th>assignee</th><th>gold</th><th>comments</th><th>rev.</th><th>changed</th><th>actions</th></tr></thead>
      <tbody>${data.results.map((t) => html`<${Row} key=${t.id} task=${t} project=${project} people=${people}
        onChanged=${reload} onTimeline=${() => setOpen(open === t.id ? null : t.id)} timeline=${open === t.id} />`)}</tbody>
    </table>
    ${data.results.length === 0 && html`<p class="muted">No task matches these filters.</p>`}
    <div class="row pager">
      <button disabled=${page <= 1} onClick=${() => setPage(page - 1)}>Previous page</button>
      <button disabled=${!data.has_next} onClick=${() => setPage(page + 1)}>Next page</button>
    </div>`}
  </div>`;
}

function eligible(people, project, stage) {
  const role = project.pipeline.find((s) => s.name === stage)?.role;
  return people.filter((m) => m.role === role || MANAGING.includes(m.role));
}

function Row({ task, project, people, onChanged, onTimeline, timeline }) {
  const [busy, setBusy] = useState(false);
  const act = async (what, fn) => {
    setBusy(true);
    try { await fn(); announce(what); onChanged(); } catch (err) { announce(errorText(err), "error"); } finally { setBusy(false); }
  };
  const reassign = (e) => {
    const value = e.currentTarget.value;
    if (value === "") return;
    const assignee = value === "none" ? null : Number(value);
    const name = assignee === null ? "the open queue" : people.find((m) => m.user_id === assignee)?.username;
    act(`Task ${task.id} reassigned to ${name}`, () => api.post(`tasks/${task.id}/reassign/`, { assignee }));
  };
  const gold = () => act(task.is_gold ? `Task ${task.id} is no longer gold` : `Task ${task.id} marked gold`, async () => {
    // A gold task's known-correct regions are its current annotation.
    const regions = task.is_gold ? undefined : (await api.get(`tasks/${task.id}/annotation/`)).regions;
    await api.put(`tasks/${task.id}/gold/`, { is_gold: !task.is_gold, regions });
  });
  const lease = task.status === "in_progress" && task.lease_expires_at ? ` until ${new Date(task.lease_expires_at).toLocaleTimeString()}` : "";
  const done = task.status === "done";
  return html`<tr data-task=${task.id}>
    <td><img class="thumb" src=${task.thumbnail_url} alt="" loading="lazy" width="48" height="48" /></td>
    <td><a href=${`#/task/${task.id}`} aria-label=${`Open task ${task.id}`}>${task.id}</a></td>
    <td>${task.image_name}</td>
    <td>${task.stage}</td>
    <td>${task.status.replace("_", " ")}${lease}</td>
    <td>${task.assignee_name || html`<span class="muted">–</span>`}</td>
    <td>${task.is_gold ? "★ gold" : ""}</td>
    <td>${task.open_comments || ""}</td>
    <td>${task.revision}</td>
    <td>${new Date(task.updated_at).toLocaleString()}</td>
    <td class="row">
      <a class="button" href=${`#/task/${task.id}`}>Open</a>
      <select aria-label=${`Reassign task ${task.id}`} disabled=${busy || done} onChange=${reassign} value="">
        <option value="">Reassign…</option><option value="none">open queue</option>
        ${eligible(people, project, task.stage).map((m) => html`<option value=${m.user_id}>${m.username} (${m.role})</option>`)}
      </select>
      <button disabled=${busy} onClick=${gold} aria-label=${`${task.is_gold ? "Unmark" : "Mark"} task ${task.id} gold`}>${task.is_gold ? "Unmark gold" : "Mark gold"}</button>
      <button aria-expanded=${timeline} onClick=${onTimeline} aria-label=${`Timeline of task ${task.id}`}>Timeline</button>
    </td>
  </tr>
  ${timeline && html`<tr class="timeline-row"><td colspan="11"><${Timeline} taskId=${task.id} /></td></tr>`}`;
}

function Timeline({ taskId }) {
  const [data, setData] = useState(null);
  useEffect(() => { api.get(`tasks/${taskId}/timeline/`).then(setData, (err) => announce(errorText(err), "error")); }, [taskId]);
  if (!data) return html`<p class="muted">Loading…</p>`;
  const items = [
    ...data.events.map((e) => ({ at: e.created_at, text: `${e.kind.replace("_", " ")}${e.actor ? ` by ${e.actor}` : ""}${e.from_stage !== e.to_stage ? ` (${e.from_stage} → ${e.to_stage})` : ` in ${e.from_stage}`}` })),
    ...data.revisions.map((r) => ({ at: r.created_at, text: `revision ${r.number} by ${r.author || "the AI"} in ${r.stage}` })),
    ...data.comments.map((c) => ({ at: c.created_at, text: `comment by ${c.author}: “${c.text}”${c.resolved ? " (resolved)" : ""}` })),
  ].sort((a, b) => a.at.localeCompare(b.at));
  return html`<ol class="timeline" aria-label=${`Timeline of task ${taskId}`}>
    ${items.map((i) => html`<li><time datetime=${i.at}>${when(i.at)}</time> ${i.text}</li>`)}
  </ol>`;
}
