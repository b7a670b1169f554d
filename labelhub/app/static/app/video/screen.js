// The video task screen: the frame with its track shapes, a frame strip with keyframe markers per track,
// step (arrow keys) and play (space), propagate forward/backward with progress and cancel, a track list,
// drawing a box on a frame for the selected track (a person's shape: the server makes it a keyframe),
// submit. Everything goes through the public API.
import { get, post, put } from "../api.js";
import { announce, errorText, h } from "../dom.js";
import { rleDecode, rleEncode } from "../rle.js";
import { FrameCache } from "./frames.js";
import { frameStrip } from "./strip.js";

const COLORS = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#46f0f0"];

export async function videoScreen(root, { task, go }) {
  const video = await get(`videos/${task.video}/`);
  const project = await get(`projects/${task.project}/`);
  const classes = project.label_schema.map((c) => c.name);
  const start = task.frame_start, stop = task.frame_stop;
  const cache = new FrameCache(video.id);
  const state = { frame: start, revision: 0, regions: [], selected: null, playing: null, job: null, drag: null };

  const canvas = h("canvas", { class: "vcanvas", width: video.width, height: video.height });
  const ctx = canvas.getContext("2d");
  const counter = h("span", { class: "vcounter", "aria-live": "polite" });
  const framesInput = h("input", { type: "number", min: 1, max: 300, value: 20, class: "vframes", "aria-label": "Frames to propagate" });
  const progress = h("progress", { class: "vprogress", max: 1, value: 0, hidden: true });
  const cancelBtn = h("button", { class: "vcancel", hidden: true, onclick: () => cancel() }, "Cancel");
  const trackList = h("ul", { class: "vtracks", "aria-label": "Tracks" });
  const stripBox = h("div", { class: "vstrip-box" });
  const labelSelect = h("select", { "aria-label": "Class" }, ...classes.map((c) => h("option", { value: c }, c)));

  const tracks = () => {
    const by = new Map();
    for (const r of state.regions) {
      if (!by.has(r.track)) by.set(r.track, { id: r.track, label: r.label, shapes: [] });
      by.get(r.track).shapes.push(r);
    }
    for (const t of by.values()) t.shapes.sort((a, b) => a.frame - b.frame);
    return [...by.values()];
  };

  async function load() {
    const a = await get(`tasks/${task.id}/annotation/`);
    state.revision = a.revision;
    state.regions = a.regions;
    if (!state.selected && a.regions.length) state.selected = a.regions[0].track;
  }

  function renderSide() {
    const ts = tracks();
    trackList.replaceChildren(...ts.map((t, i) => h("li", {},
      h("button", { class: t.id === state.selected ? "primary" : "", "data-track": t.id, onclick: () => { state.selected = t.id; renderSide(); draw(); } },
        h("span", { class: "swatch", style: { background: COLORS[i % COLORS.length] } }), ` ${t.id} (${t.label}) · ${t.shapes.filter((s) => s.keyframe).length} keyframes`))));
    stripBox.replaceChildren(frameStrip({ start, stop, tracks: ts, frame: state.frame, selected: state.selected, onPick: show }));
  }

  async function draw() {
    const img = await cache.get(state.frame);
    ctx.drawImage(img, 0, 0);
    const overlay = ctx.createImageData(video.width, video.height);
    tracks().forEach((t, i) => {
      const s = t.shapes.find((x) => x.frame === state.frame);
      if (!s || s.outside || !s.rle) return;
      const m = rleDecode(s.rle);
      const c = COLORS[i % COLORS.length];
      const [r, g, b] = [1, 3, 5].map((k) => parseInt(c.slice(k, k + 2), 16));
      for (let p = 0; p < m.length; p++) if (m[p]) { overlay.data.set([r, g, b, t.id === state.selected ? 140 : 90], p * 4); }
    });
    const tmp = document.createElement("canvas");
    tmp.width = video.width; tmp.height = video.height;
    tmp.getContext("2d").putImageData(overlay, 0, 0);
    ctx.drawImage(tmp, 0, 0);
    if (state.drag) {
      const { x0, y0, x1, y1 } = state.drag;
      ctx.strokeStyle = "#fff";
      ctx.strokeRect(Math.min(x0, x1), Math.min(y0, y1), Math.abs(x1 - x0), Math.abs(y1 - y0));
    }
    const here = state.regions.find((r) => r.track === state.selected && r.frame === state.frame);
    counter.textContent = `Frame ${state.frame} (${start}–${stop - 1})` + (here ? (here.keyframe ? " · keyframe" : ` · propagated by ${here.model?.name}`) : "");
    document.body.dataset.frame = String(state.frame);
  }

  async function show(frame) {
    state.frame = Math.min(stop - 1, Math.max(start, frame));
    cache.prefetch(state.frame, start, stop);
    renderSide();
    await draw();
  }

  function play() {
    if (state.playing) { clearInterval(state.playing); state.playing = null; return; }
    state.playing = setInterval(() => {
      if (state.frame >= stop - 1) { clearInterval(state.playing); state.playing = null; return; }
      if (cache.loaded(state.frame + 1)) show(state.frame + 1);
    }, 1000 / Math.min(30, video.fps || 25));
  }

  async function save(regions) {
    try {
      const a = await put(`tasks/${task.id}/annotation/`, { revision: state.revision, regions });
      state.revision = a.revision;
      state.regions = a.regions;
      announce(`Saved revision ${a.revision}.`);
    } catch (err) {
      announce(errorText(err), "error");
      await load();
    }
    renderSide();
    await draw();
  }

  /** A box drawn on the current frame: the selected track's shape there (a new track if none is selected). */
  async function boxShape({ x0, y0, x1, y1 }) {
    const [w, hh] = [video.width, video.height];
    const mask = new Uint8Array(w * hh);
    const [ax, bx] = [Math.max(0, Math.round(Math.min(x0, x1))), Math.min(w, Math.round(Math.max(x0, x1)))];
    const [ay, by] = [Math.max(0, Math.round(Math.min(y0, y1))), Math.min(hh, Math.round(Math.max(y0, y1)))];
    if (bx - ax < 2 || by - ay < 2) return;
    for (let y = ay; y < by; y++) mask.fill(1, y * w + ax, y * w + bx);
    let track = state.selected;
    let label = labelSelect.value;
    const existing = tracks().find((t) => t.id === track);
    if (existing) label = existing.label;
    else { track = `t${tracks().length + 1}`; state.selected = track; }
    const old = state.regions.find((r) => r.track === track && r.frame === state.frame);
    const shape = { ...(old || {}), id: old ? old.id : `${track}-${state.frame}`, label, kind: "mask", rle: rleEncode(mask, hh, w), frame: state.frame, track };
    delete shape.polygons;
    const regions = old ? state.regions.map((r) => (r === old ? shape : r)) : [...state.regions, shape];
    await save(regions);
  }

  async function propagate(direction) {
    if (!state.selected) { announce("Draw a shape first: it seeds the track.", "error"); return; }
    try {
      const job = await post(`tasks/${task.id}/propagate/`, { track: state.selected, frame: state.frame, direction, frames: Number(framesInput.value) });
      state.job = job;
      progress.hidden = false; cancelBtn.hidden = false;
      progress.max = job.frames_total; progress.value = job.frames_done;
      document.body.dataset.propagation = "running";
      await follow();
    } catch (err) {
      announce(errorText(err), "error");
    }
  }

  async function follow() {
    for (;;) {
      const job = await get(`propagations/${state.job.id}/`);
      progress.value = job.frames_done;
      if (job.frames_done !== state.job.frames_done || job.status !== state.job.status) { await load(); renderSide(); await draw(); }
      state.job = job;
      announce(`Propagating ${job.direction}: ${job.frames_done} of ${job.frames_total} frames (${job.model_name || job.backend}).`);
      if (!["queued", "running"].includes(job.status)) break;
      await new Promise((r) => setTimeout(r, 300));
    }
    await load(); renderSide(); await draw();
    cancelBtn.hidden = true;
    document.body.dataset.propagation = state.job.status;
    announce(`Propagation ${state.job.status}: ${state.job.frames_done} frames.`, state.job.status === "failed" ? "error" : "info");
  }

  async function cancel() {
    if (state.job) await post(`propagations/${state.job.id}/cancel/`);
  }

  const pos = (e) => {
    const r = canvas.getBoundingClientRect();
    return [((e.clientX - r.left) / r.width) * video.width, ((e.clientY - r.top) / r.height) * video.height];
  };
  canvas.addEventListener("pointerdown", (e) => { const [x, y] = pos(e); state.drag = { x0: x, y0: y, x1: x, y1: y }; });
  canvas.addEventListener("pointermove", (e) => { if (!state.drag) return; [state.drag.x1, state.drag.y1] = pos(e); draw(); });
  canvas.addEventListener("pointerup", async () => { const d = state.drag; state.drag = null; if (d) await boxShape(d); });

  const onKey = (e) => {
    if (e.target instanceof HTMLInputElement || e.target instanceof HTMLSelectElement) return;
    if (e.key === "ArrowRight") { e.preventDefault(); show(state.frame + (e.shiftKey ? 10 : 1)); }
    else if (e.key === "ArrowLeft") { e.preventDefault(); show(state.frame - (e.shiftKey ? 10 : 1)); }
    else if (e.key === " ") { e.preventDefault(); play(); }
  };
  document.addEventListener("keydown", onKey);

  await load();
  root.replaceChildren(h("section", { class: "vscreen" },
    h("header", { class: "row" },
      h("strong", {}, `${video.original_name} · task ${task.id} · ${task.stage}`), counter),
    h("div", { class: "vmain" },
      h("div", { class: "vstage" }, canvas),
      h("aside", { class: "vside" },
        h("h2", {}, "Tracks"), trackList,
        h("p", {}, "New track: ", labelSelect, " ", h("button", { onclick: () => { state.selected = null; renderSide(); announce("Drag a box on the frame."); } }, "New track")),
        h("h2", {}, "Propagate"),
        h("div", { class: "row" },
          h("button", { class: "vback", onclick: () => propagate("backward"), title: "Backward from this frame" }, "◀ Propagate"),
          framesInput,
          h("button", { class: "vfwd", onclick: () => propagate("forward"), title: "Forward from this frame" }, "Propagate ▶")),
        progress, cancelBtn,
        h("p", { class: "muted" }, "← → step (Shift: 10), Space play/pause. Drag a box: the selected track's shape on this frame (a keyframe)."),
        h("button", { class: "primary vsubmit", onclick: async () => {
          try { await post(`tasks/${task.id}/submit/`); go("#/queue", { message: "Submitted." }); } catch (err) { announce(errorText(err), "error"); }
        } }, "Submit"))),
    stripBox));
  await show(start);
  window.labelhub = { ...(window.labelhub || {}), video: { state, show, propagate } };
  return {
    destroy: async () => {
      document.removeEventListener("keydown", onKey);
      if (state.playing) clearInterval(state.playing);
      try { await post(`tasks/${task.id}/release/`); } catch { /* already submitted */ }
    },
  };
}
