// Pre-segmentation of a project: how far it is, whether new images get pre-labels as they arrive (and
// why not), and a button that starts it for the images that have none.
import { useState } from "preact/hooks";
import * as api from "../api.js";
import { announce } from "../dom.js";
import { ErrorLine, html, useInterval } from "./ui.js";

export function PrelabelPanel({ projectId, status, reload }) {
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  useInterval(reload, 1000, !!status && status.pending > 0);
  if (!status) return null;
  const start = async () => {
    setBusy(true);
    setError(null);
    try {
      const { queued } = await api.post(`projects/${projectId}/presegment/`);
      announce(`Pre-segmentation queued for ${queued} images`);
    } catch (err) { setError(err); }
    setBusy(false);
    reload();
  };
  const todo = status.without + status.failed;
  const off = status.mode === "none";
  return html`<section class="card prelabels" aria-labelledby="pre-h" data-done=${status.done} data-images=${status.images}>
    <h2 id="pre-h">Pre-labels</h2>
    <p class=${status.on_upload ? "muted" : "notice"} data-on-upload=${String(status.on_upload)}>${status.reason}</p>
    ${status.images ? html`<div class="row"><progress max=${Math.max(1, status.images)} value=${status.done} aria-label="Pre-segmentation progress"></progress>
      <span class="prelabel-count">${status.done} of ${status.images} images pre-labelled</span>
      ${status.pending ? html`<span class="muted">· ${status.pending} running</span>` : null}
      ${status.failed ? html`<span class="error">· ${status.failed} failed</span>` : null}</div>` : null}
    ${!off && todo > 0 ? html`<button class="primary" disabled=${busy} onClick=${start}>${busy ? "Pre-segmenting…" : `Pre-segment ${todo} image${todo === 1 ? "" : "s"}`}</button>` : null}
    ${off ? html`<a class="button" href=${`#/project/${projectId}/settings`}>Turn pre-labels on</a>` : null}
    <${ErrorLine} error=${error} />
  </section>`;
}
