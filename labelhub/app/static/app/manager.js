// The manager's screen: progress per stage, metrics as hand-drawn SVG bar charts, members (invitations
// and roles are on the People screen, workspace/people.js), exports with a progress bar and download.
import * as api from "./api.js";
import { errorText, h } from "./dom.js";
import { PALETTE } from "./palette.js";
import { qualityReportCard } from "./workspace/quality.js";
import { workspaceTabs } from "./workspace/nav.js";

const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  el.append(...children);
  return el;
}

/** A horizontal bar chart: [[label, value], ...]. */
export function barChart(title, rows, format = (v) => String(v)) {
  const width = 360, bar = 22, left = 120;
  const max = Math.max(1e-9, ...rows.map(([, v]) => v || 0));
  const chart = svg("svg", { width, height: rows.length * (bar + 6) + 6, role: "img", "aria-label": `${title}: ${rows.map(([l, v]) => `${l} ${format(v)}`).join(", ")}` });
  rows.forEach(([label, value], i) => {
    const y = 6 + i * (bar + 6);
    const w = ((value || 0) / max) * (width - left - 60);
    chart.append(
      svg("text", { x: left - 6, y: y + bar * 0.7, "text-anchor": "end", class: "chart-label" }, label),
      svg("rect", { x: left, y, width: Math.max(1, w), height: bar, fill: PALETTE[i % PALETTE.length] }),
      svg("text", { x: left + w + 4, y: y + bar * 0.7, class: "chart-value" }, value == null ? "–" : format(value)));
  });
  return h("figure", { class: "chart" }, h("figcaption", {}, title), rows.length ? chart : h("p", { class: "muted" }, "nothing yet"));
}

export async function managerScreen(root, { projectId }) {
  const project = await api.get(`projects/${projectId}/`);
  const [counts, metrics, members, formats] = await Promise.all([
    api.get(`projects/${projectId}/counts/`),
    api.get(`projects/${projectId}/metrics/`),
    api.all(`organizations/${project.organization}/members/`),
    api.get("exports/formats/"),
  ]);
  const stages = project.pipeline.map((s) => s.name);
  const pct = (v) => `${Math.round(v * 100)}%`;
  const secs = (v) => `${Math.round(v)} s`;
  const progress = h("section", { class: "card" }, h("h2", {}, "Progress per stage"),
    h("table", { class: "grid" },
      h("thead", {}, h("tr", {}, h("th", {}, "stage"), h("th", {}, "open"), h("th", {}, "in progress"))),
      h("tbody", {}, [...stages, "done"].map((s) => h("tr", {}, h("th", { scope: "row" }, s),
        h("td", {}, String(counts.by_stage[s]?.open || (s === "done" ? counts.by_stage[s]?.done || 0 : 0))),
        h("td", {}, String(counts.by_stage[s]?.in_progress || 0)))))),
    h("p", { class: "muted" }, `${counts.images} images, ${counts.tasks} tasks`));
  const ai = metrics.ai_assist || {};
  const charts = h("section", { class: "card charts" }, h("h2", {}, "Metrics"),
    barChart("Rejection rate per stage", stages.slice(1).map((s) => [s, metrics.rejection_rate?.[s] ?? null]), pct),
    barChart("Mean active time per action", stages.map((s) => [s, metrics.time?.[s]?.active_seconds_mean ?? 0]), secs),
    barChart("Throughput (actions per stage)", stages.map((s) => [s, Object.values(metrics.throughput?.by_stage?.[s] || {}).reduce((a, b) => a + b, 0)])),
    barChart("AI assist: AI regions", [["kept", ai.kept || 0], ["unchanged", ai.unchanged || 0], ["deleted", ai.deleted || 0], ["human added", ai.human_regions_added || 0]]),
    barChart("Gold accuracy per user", Object.entries(metrics.gold?.by_user || {}).map(([u, g]) => [u, g.mean_score]), (v) => v.toFixed(3)));
  const quality = segmentationTable(metrics.segmentation);
  const memberList = h("section", { class: "card" }, h("h2", {}, "Members"),
    h("table", { class: "grid" }, h("tbody", {}, members.map((m) => h("tr", {}, h("th", { scope: "row" }, m.username), h("td", {}, m.role))))),
    h("p", {}, h("a", { class: "button", href: `#/people/${project.organization}` }, "Invite people, change roles"), " ",
      h("a", { class: "button", href: `#/project/${projectId}` }, "Project members")));
  const exports = exportPanel(projectId, formats);
  const report = await qualityReportCard(projectId);
  const workspace = h("nav", { class: "workspace-nav row", "aria-label": "Project workspace" }, h("strong", {}, project.name),
    workspaceTabs(projectId).map(([s, t, href]) =>
      h("a", { class: s === "manage" ? "button primary" : "button", href, "aria-current": s === "manage" ? "page" : null }, t)));
  root.replaceChildren(h("div", { class: "manager" }, workspace, h("h1", {}, `${project.name}: manage`), progress, charts, quality, report, memberList, exports));
}

/** The `segmentation` block of the metrics API as one small table: pixel accuracy, Dice, IoU and
 * Boundary F1 of pre-labels vs accepted labels (overall and per model), annotators vs gold and vs the
 * reviewers' fixes (overall and per user). */
export function segmentationTable(seg) {
  const keys = [["pixel_accuracy", "pixel accuracy"], ["dice", "Dice"], ["iou", "IoU"], ["boundary_f1", "Boundary F1"]];
  const rows = [];
  const add = (what, m) => { if (m && m.n) rows.push([what, m]); };
  if (seg) {
    add("pre-labels vs accepted", seg.prelabel?.overall);
    for (const [model, m] of Object.entries(seg.prelabel?.by_model || {})) add(`  model ${model}`, m);
    add("annotators vs gold", seg.annotator_vs_gold?.overall);
    for (const [u, m] of Object.entries(seg.annotator_vs_gold?.by_user || {})) add(`  ${u} vs gold`, m);
    add("annotators vs reviewers' fixes", seg.annotator_vs_fix?.overall);
    for (const [u, m] of Object.entries(seg.annotator_vs_fix?.by_user || {})) add(`  ${u} vs fixes`, m);
  }
  const f = (v) => (v == null ? "–" : v.toFixed(3));
  return h("section", { class: "card", "aria-label": "Segmentation quality" },
    h("h2", {}, `Segmentation quality${seg ? ` (Boundary F1 at ${seg.tolerance_px} px)` : ""}`),
    rows.length ? h("table", { class: "grid segmentation" },
      h("thead", {}, h("tr", {}, h("th", {}, "comparison"), h("th", {}, "n"), keys.map(([, t]) => h("th", {}, t)))),
      h("tbody", {}, rows.map(([what, m]) => h("tr", {}, h("th", { scope: "row" }, what), h("td", {}, String(m.n)),
        keys.map(([k]) => h("td", {}, f(m[k]))))))) : h("p", { class: "muted" }, "nothing yet"));
}

function exportPanel(projectId, formats) {
  const format = h("select", { "aria-label": "Export format" }, formats.map((f) => h("option", { value: f.name, selected: f.name === "coco" }, f.title)));
  const bar = h("progress", { max: 1, value: 0, "aria-label": "Export progress" });
  const status = h("span", { class: "muted", "aria-live": "polite" });
  const link = h("span");
  const start = async () => {
    link.replaceChildren();
    let ex;
    try {
      ex = await api.post(`projects/${projectId}/exports/`, { format: format.value });
    } catch (err) { status.textContent = errorText(err); return; }
    for (;;) {
      bar.max = Math.max(1, ex.progress.total);
      bar.value = ex.progress.done;
      status.textContent = `export ${ex.id}: ${ex.status} (${ex.progress.done}/${ex.progress.total})`;
      if (ex.status === "done") {
        link.replaceChildren(h("a", { class: "button primary", href: ex.download_url, download: "" }, `Download ${ex.format} (${ex.annotations_count} annotations, ${ex.size_bytes} bytes)`));
        return;
      }
      if (ex.status === "failed") { status.textContent = `export failed: ${ex.error}`; return; }
      await new Promise((r) => setTimeout(r, 500));
      ex = await api.get(`exports/${ex.id}/`);
    }
  };
  return h("section", { class: "card" }, h("h2", {}, "Exports"),
    h("div", { class: "row" }, format, h("button", { class: "primary", onclick: start }, "Export")),
    h("div", { class: "row" }, bar, status), link);
}
