// Quality: the manager's quality report card (accuracy with its 95% interval, per class and per
// labeler, errors by kind, label-map figures) and the labeler's immediate feedback after a honeypot.
// Both read the REST API only (`projects/{id}/quality/`, `tasks/{id}/feedback/`).
import * as api from "../api.js";
import { choose, h } from "../dom.js";

const pct = (v) => (v == null ? "–" : `${(v * 100).toFixed(1)}%`);
const interval = (e) => (e?.ci95 ? `${pct(e.ci95[0])} – ${pct(e.ci95[1])}` : "–");
const KINDS = ["missing", "extra", "class", "boundary"];

function estimateRow(label, e) {
  return h("tr", {}, h("th", { scope: "row" }, label), h("td", {}, String(e.units)), h("td", {}, pct(e.accuracy)),
    h("td", {}, interval(e)), KINDS.map((k) => h("td", {}, String(e.errors?.[k] ?? "–"))));
}

function estimateTable(caption, rows) {
  return h("table", { class: "grid quality" }, h("caption", {}, caption),
    h("thead", {}, h("tr", {}, h("th", {}, ""), h("th", {}, "regions"), h("th", {}, "accuracy"), h("th", {}, "95% interval"),
      KINDS.map((k) => h("th", {}, k)))),
    h("tbody", {}, rows.map(([label, e]) => estimateRow(label, e))));
}

/** The project's quality report as a card; a member who may not read it gets nothing (null). */
export async function qualityReportCard(projectId) {
  let report;
  try {
    report = await api.get(`projects/${projectId}/quality/`);
  } catch {
    return null;
  }
  const a = report.accuracy;
  const headline = a.units
    ? `${pct(a.accuracy)} of ${a.units} regions correct (95% interval ${interval(a)}), judged by ${report.bound.metric} ≥ ${report.bound.value}`
    : "No honeypot or review evidence yet.";
  const seg = report.segmentation || {};
  const f = (v) => (v == null ? "–" : v.toFixed(3));
  return h("section", { class: "card", "aria-label": "Quality report" },
    h("h2", {}, "Quality report"),
    h("p", { class: report.below_threshold ? "error" : "" }, headline,
      report.threshold != null ? ` · threshold ${pct(report.threshold)}${report.below_threshold ? " (below)" : ""}` : ""),
    estimateTable("By source", [["all", { ...a, errors: report.errors }], ["honeypots", report.by_source.honeypots], ["reviews", report.by_source.reviews]]),
    estimateTable("Per class", Object.entries(report.per_class)),
    estimateTable("Per labeler", Object.entries(report.by_user)),
    h("p", { class: "muted" }, `Pixel accuracy ${f(seg.pixel_accuracy)}, Dice ${f(seg.dice)}, IoU ${f(seg.iou)}, Boundary F1 ${f(seg.boundary_f1)} (means over the classes present)`));
}

/** After a submit: where the project gives immediate feedback and the task was a honeypot, say how it
 * scored and what was wrong. Any other task answers 404 and nothing is shown. */
export async function honeypotFeedback(project, taskId) {
  if (!project.immediate_feedback) return;
  let fb;
  try {
    fb = await api.get(`tasks/${taskId}/feedback/`);
  } catch {
    return;
  }
  const wrong = KINDS.filter((k) => fb.errors[k]).map((k) => `${fb.errors[k]} ${k}`).join(", ");
  const text = fb.passed
    ? `That was a check task: all ${fb.units} regions right.`
    : `That was a check task: ${fb.correct} of ${fb.units} regions right (${wrong}). Missing: ${fb.missing.join(", ") || "none"}; extra: ${fb.extra.join(", ") || "none"}.`;
  await choose(fb.passed ? "Check passed" : "Check failed", text, [["OK", true]]);
}
