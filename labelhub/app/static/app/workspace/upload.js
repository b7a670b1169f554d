// Add images: drop files (or pick them) and each goes up in its own request with its own progress bar
// and its own error, so one bad file never fails the others; or import a folder on the server.
import { useRef, useState } from "preact/hooks";
import * as api from "../api.js";
import { announce, errorText } from "../dom.js";
import { bytes } from "./nav.js";
import { ErrorLine, html } from "./ui.js";

const PARALLEL = 3; // requests in flight: enough to hide latency, few enough to keep progress honest

function FileRow({ item }) {
  const text = { waiting: "waiting", uploading: `${Math.round((item.loaded / Math.max(1, item.total)) * 100)}%`,
    done: "uploaded", duplicate: "already in the project (not stored twice)", error: item.error }[item.status];
  return html`<li class="upload-file" data-status=${item.status} data-name=${item.file.name}>
    <span class="name">${item.file.name}</span> <span class="muted">${bytes(item.file.size)}</span>
    <progress max=${Math.max(1, item.total)} value=${item.status === "waiting" ? 0 : item.loaded} aria-label=${`Upload of ${item.file.name}`}></progress>
    <span class=${item.status === "error" ? "error" : "muted"}>${text}</span></li>`;
}

/** Refused files at the top of the list, where they are seen; the others in the order given. */
const failedFirst = (items) => [...items.filter((it) => it.status === "error"), ...items.filter((it) => it.status !== "error")];

function summary(c) {
  const togo = (c.waiting || 0) + (c.uploading || 0);
  return `${c.done || 0} uploaded · ${c.duplicate || 0} duplicates · ${c.error || 0} failed · ${togo} to go`;
}

export function UploadPanel({ projectId, onUploaded }) {
  const [items, setItems] = useState([]);
  const [over, setOver] = useState(false);
  const input = useRef(null);
  const patch = (i, change) => setItems((list) => list.map((it) => (it.i === i ? { ...it, ...change } : it)));

  const start = async (files) => {
    const base = Date.now();
    const batch = [...files].map((file, k) => ({ i: `${base}-${k}`, file, status: "waiting", loaded: 0, total: file.size, error: "" }));
    setItems((list) => [...list, ...batch]);
    let next = 0;
    const worker = async () => {
      while (next < batch.length) {
        const item = batch[next++];
        patch(item.i, { status: "uploading" });
        try {
          const answer = await api.uploadFile(`projects/${projectId}/images/upload/`, item.file, {
            onProgress: (loaded, total) => patch(item.i, { loaded, total }),
          });
          patch(item.i, { status: answer.created.length ? "done" : "duplicate", loaded: item.file.size });
        } catch (err) {
          patch(item.i, { status: "error", error: err.message || errorText(err) });
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(PARALLEL, batch.length) }, worker));
    announce(`${batch.length} file${batch.length === 1 ? "" : "s"} processed`);
    onUploaded?.();
  };

  const drop = (e) => { e.preventDefault(); setOver(false); if (e.dataTransfer?.files?.length) start(e.dataTransfer.files); };
  const counts = items.reduce((acc, it) => ({ ...acc, [it.status]: (acc[it.status] || 0) + 1 }), {});
  return html`<section class="card upload" aria-labelledby="upload-h">
    <h2 id="upload-h">Add images</h2>
    <div class=${`dropzone${over ? " over" : ""}`} role="button" tabindex="0" aria-label="Drop images here, or press Enter to choose files"
      onDragOver=${(e) => { e.preventDefault(); setOver(true); }} onDragLeave=${() => setOver(false)} onDrop=${drop}
      onClick=${() => input.current.click()} onKeyDown=${(e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); input.current.click(); } }}>
      <p><strong>Drop images here</strong> or click to choose (JPEG, PNG, TIFF, WebP, BMP)</p>
      <input ref=${input} type="file" multiple accept="image/*" hidden aria-label="Choose images"
        onChange=${(e) => { start(e.target.files); e.target.value = ""; }} />
    </div>
    ${items.length ? html`<p class="muted upload-summary" aria-live="polite">${summary(counts)}</p>
      <ul class="upload-list">${failedFirst(items).map((it) => html`<${FileRow} key=${it.i} item=${it} />`)}</ul>` : null}
    <${FolderImport} projectId=${projectId} onImported=${onUploaded} />
  </section>`;
}

function FolderImport({ projectId, onImported }) {
  const [path, setPath] = useState("");
  const [recursive, setRecursive] = useState(true);
  const [state, setState] = useState({ busy: false, error: null, result: null });
  const submit = async (e) => {
    e.preventDefault();
    setState({ busy: true, error: null, result: null });
    try {
      const result = await api.post(`projects/${projectId}/images/import/`, { path, recursive });
      setState({ busy: false, error: null, result });
      onImported?.();
    } catch (error) { setState({ busy: false, error, result: null }); }
  };
  return html`<details class="folder-import"><summary>Import a folder on the server</summary>
    <form class="row" onSubmit=${submit}>
      <label>Folder <input aria-label="Server folder" value=${path} required onInput=${(e) => setPath(e.target.value)} placeholder="/data/images" /></label>
      <label class="check"><input type="checkbox" checked=${recursive} onChange=${(e) => setRecursive(e.target.checked)} />with sub-folders</label>
      <button type="submit" disabled=${state.busy}>${state.busy ? "Importing…" : "Import"}</button>
    </form>
    <p class="muted">Folders must be inside LABELHUB_IMPORT_ROOTS on the server. The import runs in one request and stores all or nothing.</p>
    ${state.result ? html`<p role="status">${state.result.created.length} images imported, ${state.result.duplicates.length} already in the project.</p>` : null}
    <${ErrorLine} error=${state.error} />
  </details>`;
}
