// Model services of a project (Label Studio ML backends): register one, test it, see its health and
// model version (and why it is paused), pre-label the project's images with it, send it the accepted
// tasks for training, resume or remove it. The protocol is in the README ("Model services").
import { useState } from "preact/hooks";
import * as api from "../api.js";
import { announce } from "../dom.js";
import { ErrorLine, html, useLoad } from "./ui.js";

const USES = [["prelabel", "Pre-labels"], ["interactive", "Clicks"], ["training", "Training"]];

function health(s) {
  if (s.paused) return html`<span class="error" data-health="paused">Paused: ${s.paused_reason}</span>`;
  if (s.healthy === true) return html`<span data-health="up">Up · model ${s.model_version || "?"}</span>`;
  if (s.healthy === false) return html`<span class="error" data-health="down">${s.health_message || "Failing"}</span>`;
  return html`<span class="muted" data-health="unknown">Not tested yet</span>`;
}

function ServiceRow({ projectId, service, reload, setError }) {
  const base = `projects/${projectId}/model-services/${service.id}/`;
  const act = (label, fn) => async () => {
    setError(null);
    try { announce(await fn()); } catch (err) { setError(err); }
    reload();
  };
  return html`<tr data-service=${service.name}>
    <th scope="row">${service.name}</th><td><code>${service.url}</code></td><td>${service.uses.join(", ")}</td><td>${health(service)}</td>
    <td class="row">
      <button onClick=${act("test", async () => { const s = await api.post(`${base}check/`); return s.healthy ? `${s.name} is up (model ${s.model_version})` : `${s.name}: ${s.health_message}`; })}>Test</button>
      ${service.uses.includes("prelabel") ? html`<button onClick=${act("predict", async () => `${(await api.post(`${base}predict/`, {})).queued} batches queued`)}>Pre-label all</button>` : null}
      ${service.uses.includes("training") ? html`<button onClick=${act("train", async () => `${(await api.post(`${base}train/`)).accepted_tasks} accepted tasks sent for training`)}>Train</button>` : null}
      ${service.paused ? html`<button onClick=${act("resume", async () => { await api.patch(base, { paused: false }); return `${service.name} resumed`; })}>Resume</button>` : null}
      <button aria-label=${`Remove ${service.name}`} onClick=${act("remove", async () => { await api.del(base); return `${service.name} removed`; })}>Remove</button>
    </td></tr>`;
}

export function ModelServicesPanel({ projectId }) {
  const list = useLoad(() => api.get(`projects/${projectId}/model-services/`), [projectId]);
  const [error, setError] = useState(null);
  const [draft, setDraft] = useState({ name: "", url: "", auth: "none", credential: "", timeout_seconds: 30, uses: ["prelabel"] });
  const set = (key) => (e) => setDraft({ ...draft, [key]: e.target.type === "number" ? Number(e.target.value) : e.target.value });
  const toggle = (use) => () => setDraft({ ...draft, uses: draft.uses.includes(use) ? draft.uses.filter((u) => u !== use) : [...draft.uses, use] });
  const add = async (e) => {
    e.preventDefault();
    setError(null);
    try {
      const body = { ...draft };
      if (body.auth === "none") delete body.credential;
      const made = await api.post(`projects/${projectId}/model-services/`, body);
      const checked = await api.post(`projects/${projectId}/model-services/${made.id}/check/`);
      announce(checked.healthy ? `${made.name} registered; up, model ${checked.model_version}` : `${made.name} registered; ${checked.health_message}`);
      setDraft({ ...draft, name: "", url: "", credential: "" });
    } catch (err) { setError(err); }
    list.reload();
  };
  const services = list.data || [];
  return html`<section class="card model-services" aria-labelledby="ms-h">
    <h2 id="ms-h">Model services</h2>
    <p class="muted">Label Studio ML backends (SAM 2, YOLO, your own) used for pre-labels (set the project's pre-labels to "model services"), clicks in the segment tool, or training on accepted tasks.</p>
    ${services.length ? html`<table class="grid"><thead><tr><th>name</th><th>URL</th><th>used for</th><th>health</th><th></th></tr></thead>
      <tbody>${services.map((s) => html`<${ServiceRow} key=${s.id} projectId=${projectId} service=${s} reload=${list.reload} setError=${setError} />`)}</tbody></table>` : null}
    <form class="row wrap" onSubmit=${add} aria-label="Register a model service">
      <label>Name <input required value=${draft.name} onInput=${set("name")} /></label>
      <label>URL <input required type="url" placeholder="http://sam2:9090" value=${draft.url} onInput=${set("url")} /></label>
      <label>Auth <select value=${draft.auth} onChange=${set("auth")}>${["none", "token", "bearer", "basic"].map((a) => html`<option value=${a}>${a}</option>`)}</select></label>
      ${draft.auth !== "none" ? html`<label>${draft.auth === "basic" ? "user:password" : "Token"} <input type="password" value=${draft.credential} onInput=${set("credential")} /></label>` : null}
      <label>Timeout (s) <input type="number" min="0.1" max="600" step="0.1" value=${draft.timeout_seconds} onInput=${set("timeout_seconds")} /></label>
      ${USES.map(([use, text]) => html`<label><input type="checkbox" checked=${draft.uses.includes(use)} onChange=${toggle(use)} /> ${text}</label>`)}
      <button class="primary" type="submit">Register and test</button>
    </form>
    <${ErrorLine} error=${error || list.error} />
  </section>`;
}
