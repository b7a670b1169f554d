// Exports: a dialog with the format, filters, split and images; the history of dataset versions
// (GET exports/?project=, so it survives a reload) with status, progress, size and download; the diff
// between two versions (GET exports/{id}/diff/?against=).
import { html } from "htm/preact";
import { useEffect, useRef, useState } from "preact/hooks";
import * as api from "../api.js";
import { announce, errorText } from "../dom.js";
import { bytes, mount, when, WorkspaceNav } from "./nav.js";

export async function exportsScreen(root, { projectId }) {
  const [project, formats] = await Promise.all([api.get(`projects/${projectId}/`), api.get("exports/formats/")]);
  return mount(root, html`<${Exports} project=${project} formats=${formats} />`);
}

function Exports({ project, formats }) {
  const [history, setHistory] = useState(null);
  const [tick, setTick] = useState(0);
  const dialog = useRef(null);
  useEffect(() => {
    let live = true;
    let timer = null;
    api.get(`exports/?project=${project.id}&ordering=-id&page_size=50`).then((d) => {
      if (!live) return;
      setHistory(d.results);
      // Poll while a version is still being written.
      if (d.results.some((e) => e.status === "pending" || e.status === "running")) timer = setTimeout(() => setTick((t) => t + 1), 700);
    }, (err) => announce(errorText(err), "error"));
    return () => { live = false; clearTimeout(timer); };
  }, [tick]);
  const created = (ex) => { announce(`Export ${ex.id} (${ex.format}) started`); setTick((t) => t + 1); };
  return html`<div class="manager exports">
    <${WorkspaceNav} project=${project} current="exports" />
    <div class="row"><h1>Exports</h1><span class="spacer"></span>
      <button class="primary" onClick=${() => dialog.current.showModal()}>New export…</button></div>
    <${ExportDialog} dialogRef=${dialog} project=${project} formats=${formats} onCreated=${created} />
    <section class="card" aria-label="Dataset versions">
      <h2>Dataset versions</h2>
      ${history === null ? html`<p class="muted">Loading…</p>` : history.length === 0 ? html`<p class="muted">No export yet.</p>` : html`
      <table class="grid export-history">
        <thead><tr><th>version</th><th>format</th><th>options</th><th>status</th><th>annotations</th><th>size</th><th>created</th><th></th></tr></thead>
        <tbody>${history.map((e) => html`<tr data-export=${e.id} data-status=${e.status}>
          <th scope="row">#${e.id}</th><td>${e.format}</td><td>${describe(e)}</td>
          <td>${e.status === "done" || e.status === "failed" ? e.status : html`<progress max=${Math.max(1, e.progress.total)} value=${e.progress.done} aria-label=${`Export ${e.id} progress`}></progress> ${e.progress.done}/${e.progress.total}`}
            ${e.error && html`<span class="error"> ${e.error}</span>`}</td>
          <td>${e.annotations_count ?? "–"}</td><td>${bytes(e.size_bytes)}</td><td>${when(e.created_at)}</td>
          <td>${e.download_url && html`<a class="button" href=${e.download_url} download="" aria-label=${`Download export ${e.id}`}>Download</a>`}</td>
        </tr>`)}</tbody>
      </table>`}
    </section>
    ${history && history.filter((e) => e.status === "done").length >= 2 && html`<${Diff} versions=${history.filter((e) => e.status === "done")} />`}
  </div>`;
}

function describe(e) {
  const f = e.filters || {};
  const parts = [];
  if (f.classes?.length) parts.push(`classes ${f.classes.join(", ")}`);
  if (f.stages?.length) parts.push(`stages ${f.stages.join(", ")}`);
  if (f.annotated) parts.push("+annotated");
  if (f.include_empty) parts.push("+empty");
  if (f.accepted === false) parts.push("not accepted only");
  const s = e.split || {};
  if (s.val || s.test) parts.push(`split ${s.train ?? 0}/${s.val ?? 0}/${s.test ?? 0}`);
  if (e.include_images) parts.push("with images");
  return parts.join(" · ") || "accepted, all classes";
}

function ExportDialog({ project, formats, onCreated, dialogRef: ref }) {
  const classes = project.label_schema.map((c) => c.name);
  const [form, setForm] = useState({ format: "coco", classes: [], stages: [], accepted: true, annotated: false, include_empty: false, include_images: false, train: 1, val: 0, test: 0, seed: 0 });
  const [error, setError] = useState("");
  const set = (key, value) => setForm({ ...form, [key]: value });
  const toggle = (key, name) => set(key, form[key].includes(name) ? form[key].filter((x) => x !== name) : [...form[key], name]);
  const submit = async (e) => {
    e.preventDefault();
    const filters = { accepted: form.accepted, annotated: form.annotated, include_empty: form.include_empty };
    if (form.classes.length) filters.classes = form.classes;
    if (form.stages.length) filters.stages = form.stages;
    const body = { format: form.format, filters, include_images: form.include_images };
    if (Number(form.val) || Number(form.test)) body.split = { train: Number(form.train), val: Number(form.val), test: Number(form.test), seed: Number(form.seed) };
    try {
      const ex = await api.post(`projects/${project.id}/exports/`, body);
      setError("");
      ref.current.close();
      onCreated(ex);
    } catch (err) { setError(errorText(err)); }
  };
  const number = (key, label) => html`<label>${label} <input type="number" min="0" max="1" step="0.05" value=${form[key]} onInput=${(e) => set(key, e.currentTarget.value)} aria-label=${label} /></label>`;
  return html`<dialog class="dialog export-dialog" ref=${ref} aria-label="New export">
    <form method="dialog" onSubmit=${submit}>
      <h2>New export</h2>
      <label>Format <select aria-label="Export format" value=${form.format} onChange=${(e) => set("format", e.currentTarget.value)}>
        ${formats.map((f) => html`<option value=${f.name}>${f.title}</option>`)}</select></label>
      <fieldset><legend>Classes (none ticked: all)</legend>
        ${classes.map((c) => html`<label><input type="checkbox" checked=${form.classes.includes(c)} onChange=${() => toggle("classes", c)} /> ${c}</label>`)}</fieldset>
      <fieldset><legend>Tasks</legend>
        <label><input type="checkbox" checked=${form.accepted} onChange=${(e) => set("accepted", e.currentTarget.checked)} /> accepted</label>
        <label><input type="checkbox" checked=${form.annotated} onChange=${(e) => set("annotated", e.currentTarget.checked)} /> annotated, not accepted yet</label>
        <label><input type="checkbox" checked=${form.include_empty} onChange=${(e) => set("include_empty", e.currentTarget.checked)} /> unlabelled images</label>
        <div>Stages (none ticked: all): ${project.pipeline.map((s) => html`<label><input type="checkbox" checked=${form.stages.includes(s.name)} onChange=${() => toggle("stages", s.name)} /> ${s.name}</label>`)}</div>
      </fieldset>
      <fieldset><legend>Split (fractions)</legend>${number("train", "train")}${number("val", "val")}${number("test", "test")}
        <label>seed <input type="number" value=${form.seed} onInput=${(e) => set("seed", e.currentTarget.value)} aria-label="seed" /></label></fieldset>
      <label><input type="checkbox" checked=${form.include_images} onChange=${(e) => set("include_images", e.currentTarget.checked)} /> include images</label>
      ${error && html`<p class="error" role="alert">${error}</p>`}
      <div class="row"><button type="submit" class="primary">Start export</button>
        <button type="button" onClick=${() => ref.current.close()}>Cancel</button></div>
    </form>
  </dialog>`;
}

function Diff({ versions }) {
  const [to, setTo] = useState(versions[0].id);
  const [from, setFrom] = useState(versions[1].id);
  const [diff, setDiff] = useState(null);
  const compare = async () => {
    try { setDiff(await api.get(`exports/${to}/diff/?against=${from}`)); } catch (err) { announce(errorText(err), "error"); }
  };
  const pick = (value, setter, label) => html`<select aria-label=${label} value=${value} onChange=${(e) => { setter(Number(e.currentTarget.value)); setDiff(null); }}>
    ${versions.map((v) => html`<option value=${v.id}>#${v.id} ${v.format}</option>`)}</select>`;
  return html`<section class="card" aria-label="Compare versions">
    <h2>Compare versions</h2>
    <div class="row">From ${pick(from, setFrom, "Older version")} to ${pick(to, setTo, "Newer version")}
      <button onClick=${compare}>Compare</button></div>
    ${diff && html`<div class="diff" aria-live="polite">
      <p>${`Images: ${diff.items.added.length} added, ${diff.items.removed.length} removed, ${diff.items.changed.length} changed, ${diff.items.unchanged} unchanged. Regions: ${diff.regions.added} added, ${diff.regions.removed} removed, ${diff.regions.changed} changed.`}</p>
      ${diff.changes.length > 0 && html`<ul>${diff.changes.slice(0, 50).map((c) => html`<li>image ${c.image}: revision ${c.from_revision} → ${c.to_revision} (${c.added.length} added, ${c.removed.length} removed, ${c.changed.length} changed)</li>`)}</ul>`}
    </div>`}
  </section>`;
}
