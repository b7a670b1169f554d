// Per-user metrics for managers over a time range (GET projects/{id}/metrics/?since=&until=): throughput,
// active time, rejection rate, gold accuracy and AI-assist share per person, and the figures per stage.
import { html } from "htm/preact";
import { useEffect, useState } from "preact/hooks";
import * as api from "../api.js";
import { errorText } from "../dom.js";
import { mount, WorkspaceNav } from "./nav.js";

const RANGES = [["1", "last 24 hours"], ["7", "last 7 days"], ["30", "last 30 days"], ["", "all time"], ["custom", "custom…"]];

export async function metricsScreen(root, { projectId }) {
  const project = await api.get(`projects/${projectId}/`);
  return mount(root, html`<${Metrics} project=${project} />`);
}

const pct = (v) => (v == null ? "–" : `${Math.round(v * 100)}%`);
const num = (v, digits = 2) => (v == null ? "–" : Number(v).toFixed(digits));
const duration = (s) => (s == null ? "–" : s < 90 ? `${Math.round(s)} s` : s < 5400 ? `${(s / 60).toFixed(1)} min` : `${(s / 3600).toFixed(1)} h`);

function range(preset, since, until) {
  if (preset === "custom") return { since, until };
  if (!preset) return {};
  const now = new Date();
  return { since: new Date(now - Number(preset) * 86400e3).toISOString(), until: now.toISOString() };
}

function Metrics({ project }) {
  const [preset, setPreset] = useState("7");
  const [custom, setCustom] = useState({ since: "", until: "" });
  const [data, setData] = useState(null);
  const [error, setError] = useState("");
  useEffect(() => {
    const { since, until } = range(preset, custom.since, custom.until);
    const params = new URLSearchParams();
    if (since) params.set("since", since);
    if (until) params.set("until", until);
    let live = true;
    api.get(`projects/${project.id}/metrics/?${params}`).then((d) => { if (live) { setData(d); setError(""); } }, (err) => live && setError(errorText(err)));
    return () => { live = false; };
  }, [preset, custom]);
  const users = data ? Object.entries(data.by_user).sort(([a], [b]) => a.localeCompare(b)) : [];
  return html`<div class="manager metrics">
    <${WorkspaceNav} project=${project} current="metrics" />
    <h1>Metrics</h1>
    <div class="row" role="group" aria-label="Time range">
      <label>Time range <select aria-label="Time range" value=${preset} onChange=${(e) => setPreset(e.currentTarget.value)}>
        ${RANGES.map(([v, t]) => html`<option value=${v}>${t}</option>`)}</select></label>
      ${preset === "custom" && html`<label>from <input type="date" aria-label="From" value=${custom.since} onChange=${(e) => setCustom({ ...custom, since: e.currentTarget.value })} /></label>
        <label>to <input type="date" aria-label="To" value=${custom.until} onChange=${(e) => setCustom({ ...custom, until: e.currentTarget.value })} /></label>`}
    </div>
    ${error && html`<p class="error" role="alert">${error}</p>`}
    ${data && html`<section class="card" aria-label="Per person">
      <h2>Per person</h2>
      ${users.length === 0 ? html`<p class="muted">Nobody worked in this range.</p>` : html`<table class="grid per-user">
        <thead><tr><th>person</th><th>actions</th><th>submitted</th><th>reviewed</th><th>per hour</th><th>active time</th><th>active per action</th>
          <th>rejection rate</th><th>gold accuracy</th><th>AI regions kept</th><th>AI unchanged</th></tr></thead>
        <tbody>${users.map(([name, u]) => html`<tr data-user=${name}>
          <th scope="row">${name}</th><td>${u.actions}</td><td>${u.submitted}</td><td>${u.reviewed}</td><td>${num(u.actions_per_hour)}</td>
          <td>${duration(u.active_seconds)}</td><td>${duration(u.actions ? u.active_seconds / u.actions : null)}</td>
          <td>${pct(u.rejection_rate)}</td><td>${num(u.gold_mean_score, 3)}</td>
          <td>${pct(u.ai_assist?.kept_share)}</td><td>${pct(u.ai_assist?.unchanged_share)}</td></tr>`)}</tbody>
      </table>`}
    </section>
    <section class="card" aria-label="Per stage">
      <h2>Per stage</h2>
      <table class="grid per-stage"><thead><tr><th>stage</th><th>actions</th><th>active time</th><th>mean active</th><th>rejection rate</th></tr></thead>
        <tbody>${project.pipeline.map((s) => { const t = data.time[s.name] || {}; return html`<tr><th scope="row">${s.name}</th><td>${t.actions ?? 0}</td>
          <td>${duration(t.active_seconds_total)}</td><td>${duration(t.active_seconds_mean)}</td><td>${pct(data.rejection_rate[s.name])}</td></tr>`; })}</tbody></table>
      <p class="muted">${`${data.throughput.done} tasks done${data.throughput.done_per_hour != null ? ` (${num(data.throughput.done_per_hour)} per hour)` : ""}; gold accuracy ${num(data.gold.mean_score, 3)} over ${data.gold.scored} scored submissions.`}</p>
    </section>`}
  </div>`;
}
