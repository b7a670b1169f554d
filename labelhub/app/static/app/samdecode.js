// SAM clicks decoded in the browser (onnxruntime-web, WASM), from the image's cached embedding, and the
// choice between that and the server's segment/ by measured latency.
//
// The server serves SAM's prompt encoder + mask decoder as ONNX (GET models/sam/decoder.onnx, exported
// from segment_anything's SamOnnxModel returning the four low-res masks) and the image embedding as raw
// little-endian fp16 (GET images/{id}/embedding/, shape and sizes in X- headers). The prompt tensors are
// built exactly as workers/sam/onnx_decoder.py builds them for ONNX Runtime on the server, so a click
// gives the server's mask (tests/browser/test_app_samdecode.py checks IoU >= 0.99).
import * as ort from "onnxruntime-web";

import * as api from "./api.js";

const LOW_RES = 256;
const INPUT = 1024;
export const MODES = ["auto", "browser", "server"];
const MODE_KEY = "lh.samDecode"; // the user's toggle, kept across sessions (like brightness)
const AUTO_KEY = "lh.samDecodeAuto"; // auto's measured choice: per browser session (sessionStorage)
const SAMPLES = 3; // clicks timed each way before auto chooses

// WASM threads need SharedArrayBuffer, i.e. a cross-origin-isolated page: the server sends COOP and
// COEP on the app (LABELHUB_APP_COEP). Isolated: data-decode-threads, or with 0 the browser's cores up
// to 4 (not onnxruntime-web's half of them: the page waits idle while a click decodes, and on a 2-core
// box 2 threads decode 1.6-1.9x faster than 1 at p50, docs/benchmarks.md); otherwise one thread.
const THREADS = Number(document.body.dataset.decodeThreads || 0);
ort.env.wasm.numThreads = globalThis.crossOriginIsolated ? THREADS || Math.min(4, navigator.hardwareConcurrency || 1) : 1;
/** The browser decoder's WASM threads. */
export const threads = () => ort.env.wasm.numThreads;
ort.env.wasm.proxy = false;
const ORT_DIR = `${document.body.dataset.static || "/static/app/"}vendor/onnxruntime-web/`;
ort.env.wasm.wasmPaths = ORT_DIR;

/** Threads: each WASM thread is a worker running onnxruntime-web's module script. On an isolated page a
 * worker loaded from a URL must carry COEP itself, which static files served by a CDN, nginx or Django's
 * debug handler need not; a worker from a blob of the script inherits the page's policy. So the script
 * is fetched once and given to onnxruntime-web as a same-origin blob URL (the .wasm stays a URL). */
async function threadScript() {
  if (ort.env.wasm.numThreads <= 1) return;
  const res = await fetch(`${ORT_DIR}ort-wasm-simd-threaded.mjs`, { credentials: "same-origin" });
  if (!res.ok) throw new Unavailable(`onnxruntime-web's module: HTTP ${res.status}`);
  const blob = new Blob([await res.text()], { type: "text/javascript" });
  ort.env.wasm.wasmPaths = { mjs: URL.createObjectURL(blob), wasm: `${ORT_DIR}ort-wasm-simd-threaded.wasm` };
}

// fp16 -> fp32 for every 16-bit pattern: the embedding is 1 Mi values, a table lookup each.
let HALF = null;
function halfTable() {
  if (HALF) return HALF;
  HALF = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, f = h & 0x3ff;
    HALF[h] = e === 0 ? s * f * 2 ** -24 : e === 31 ? (f ? NaN : s * Infinity) : s * (1 + f / 1024) * 2 ** (e - 15);
  }
  return HALF;
}

function pair(header) {
  const [a, b] = (header || "").split(",").map(Number);
  return [a, b];
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

class Unavailable extends Error {}

const MAX_WAIT_S = 120; // a worker that has not computed the embedding by then: the server decodes

/** GET through the app's one API client (its 401 handling); 202 (a worker computes the embedding) is
 * asked again after Retry-After. No SAM model on the server (409 no_sam_model) is remembered for the
 * page: the server decodes every click and the browser decoder is never asked again. */
async function fetchOk(path) {
  for (let waited = 0; ; ) {
    let res;
    try {
      res = await api.raw(path, { accept: "*/*" });
    } catch (e) {
      const err = new Unavailable(e.code === "no_sam_model" ? "this server has no Segment Anything model: clicks are segmented on the server" : e.message);
      err.status = e.status;
      err.code = e.code;
      throw err;
    }
    if (res.status === 202 && waited < MAX_WAIT_S) {
      const wait = Number(res.headers.get("Retry-After") || 1);
      waited += wait;
      await sleep(1000 * wait);
      continue;
    }
    if (res.status === 202) throw new Unavailable(`the image was not ready for the browser after ${MAX_WAIT_S} s`);
    return res;
  }
}

let sessionPromise = null; // {session, model, checkpoint}: one decoder per page

function decoderSession() {
  if (!sessionPromise) {
    sessionPromise = (async () => {
      await threadScript();
      const res = await fetchOk("models/sam/decoder.onnx");
      const bytes = new Uint8Array(await res.arrayBuffer());
      const session = await ort.InferenceSession.create(bytes, { executionProviders: ["wasm"], graphOptimizationLevel: "all" });
      return { session, model: res.headers.get("X-Model-Name"), checkpoint: res.headers.get("X-Checkpoint-Sha256") };
    })();
    sessionPromise.catch(() => { sessionPromise = null; });
  }
  return sessionPromise;
}

const embeddings = new Map(); // image id -> Promise<{tensor, originalSize, inputSize, model, checkpoint}>
const EMBEDDINGS_KEPT = 4;

function embedding(imageId) {
  let p = embeddings.get(imageId);
  if (!p) {
    p = (async () => {
      const res = await fetchOk(`images/${imageId}/embedding/`);
      const shape = res.headers.get("X-Embedding-Shape").split(",").map(Number);
      if (res.headers.get("X-Embedding-Dtype") !== "float16") throw new Unavailable("the embedding is not float16");
      const half = new Uint16Array(await res.arrayBuffer()); // little-endian, as every browser's CPU
      const table = halfTable();
      const data = new Float32Array(half.length);
      for (let i = 0; i < half.length; i++) data[i] = table[half[i]];
      return {
        tensor: new ort.Tensor("float32", data, shape),
        originalSize: pair(res.headers.get("X-Original-Size")),
        inputSize: pair(res.headers.get("X-Input-Size")),
        model: res.headers.get("X-Model-Name"),
        checkpoint: res.headers.get("X-Checkpoint-Sha256"),
      };
    })();
    p.catch(() => embeddings.delete(imageId));
    embeddings.set(imageId, p);
    while (embeddings.size > EMBEDDINGS_KEPT) embeddings.delete(embeddings.keys().next().value);
  }
  return p;
}

/** Bilinear resize of a float32 (sh, sw) grid read from a row stride, like OpenCV's INTER_LINEAR
 * (= F.interpolate(mode="bilinear", align_corners=False)): half-pixel centres, edges clamped. */
function axis(src, dst) {
  const i0 = new Int32Array(dst), i1 = new Int32Array(dst), w1 = new Float32Array(dst);
  const scale = src / dst;
  for (let d = 0; d < dst; d++) {
    let s = (d + 0.5) * scale - 0.5;
    if (s < 0) s = 0;
    let a = Math.floor(s);
    if (a >= src - 1) { a = src - 1; i0[d] = a; i1[d] = a; w1[d] = 0; continue; }
    i0[d] = a; i1[d] = a + 1; w1[d] = s - a;
  }
  return { i0, i1, w1 };
}

function resize(src, sh, sw, stride, dh, dw) {
  const out = new Float32Array(dh * dw);
  const xs = axis(sw, dw), ys = axis(sh, dh);
  const rowA = new Float32Array(dw), rowB = new Float32Array(dw);
  let lastA = -1, lastB = -1;
  const hpass = (r, row) => {
    const o = r * stride;
    for (let x = 0; x < dw; x++) {
      const a = src[o + xs.i0[x]];
      row[x] = a + (src[o + xs.i1[x]] - a) * xs.w1[x];
    }
  };
  for (let y = 0; y < dh; y++) {
    const ra = ys.i0[y], rb = ys.i1[y], wy = ys.w1[y];
    if (ra !== lastA) { hpass(ra, rowA); lastA = ra; }
    if (rb !== lastB) { hpass(rb, rowB); lastB = rb; }
    const o = y * dw;
    for (let x = 0; x < dw; x++) out[o + x] = rowA[x] + (rowB[x] - rowA[x]) * wy;
  }
  return out;
}

/** (256, 256) low-res logits -> (H, W) mask, as Sam.postprocess_masks (workers/sam/onnx_decoder.py
 * upscale_logits): to 1024x1024, crop the un-padded input size, to the original size, threshold 0. */
export function upscaleMask(lowRes, inputSize, originalSize) {
  const up = resize(lowRes, LOW_RES, LOW_RES, LOW_RES, INPUT, INPUT);
  const [ih, iw] = inputSize, [h, w] = originalSize;
  const logits = resize(up, ih, iw, INPUT, h, w);
  const mask = new Uint8Array(h * w);
  for (let i = 0; i < mask.length; i++) mask[i] = logits[i] > 0 ? 1 : 0;
  return mask;
}

/** A full-size mask (Uint8Array H*W) as SAM's low-res mask input: the image's longest side scaled to
 * 256 (ResizeLongestSide, top-left aligned, the rest -8), each cell the area mean mapped to [-8, 8] (as
 * workers/sam/backend.py mask_to_logits, which the server uses for mask_rle). */
export function maskToLogits(mask, h, w, magnitude = 8) {
  const scale = LOW_RES / Math.max(h, w);
  const ih = Math.max(1, Math.floor(h * scale + 0.5)), iw = Math.max(1, Math.floor(w * scale + 0.5));
  const sum = new Float32Array(ih * iw), count = new Float32Array(ih * iw);
  for (let y = 0; y < h; y++) {
    const ty = Math.min(ih - 1, Math.floor((y * ih) / h)) * iw;
    for (let x = 0; x < w; x++) {
      const t = ty + Math.min(iw - 1, Math.floor((x * iw) / w));
      sum[t] += mask[y * w + x];
      count[t] += 1;
    }
  }
  const out = new Float32Array(LOW_RES * LOW_RES).fill(-magnitude);
  for (let y = 0; y < ih; y++) for (let x = 0; x < iw; x++) {
    const t = y * iw + x;
    out[y * LOW_RES + x] = ((sum[t] / (count[t] || 1)) * 2 - 1) * magnitude;
  }
  return out;
}

/** Start loading the decoder and the image's embedding; resolves when both are here (or rejects). */
export function prepare(imageId) {
  return Promise.all([decoderSession(), embedding(imageId)]);
}

/** Decode one prompt in the browser. prompt: {points: [[x, y]], point_labels: [1|0], box: [x0, y0,
 * x1, y1]} in pixels of the original image; lowRes: the previous answer's logits (Float32Array 256²)
 * or null; prompt.candidate: which of SAM's candidate masks (0 the best). Returns {mask (Uint8Array H*W),
 * size: [H, W], score, lowRes, model_name, checkpoint_sha256, candidates, candidate, ms: decode time
 * (tensors, graph, upscale)}. */
let running = Promise.resolve(); // one graph run at a time: a hover preview and a click share the session

export function decode(imageId, prompt, lowRes = null) {
  const next = running.then(() => decodeNow(imageId, prompt, lowRes));
  running = next.catch(() => {});
  return next;
}

async function decodeNow(imageId, prompt, lowRes) {
  const [{ session, model, checkpoint }, emb] = await prepare(imageId);
  if (emb.model !== model || emb.checkpoint !== checkpoint) {
    embeddings.delete(imageId);
    sessionPromise = null;
    throw new Unavailable("the embedding and the decoder are of different models; reload the page");
  }
  const t0 = performance.now();
  const [oh, ow] = emb.originalSize, [ih, iw] = emb.inputSize;
  const sx = iw / ow, sy = ih / oh; // ResizeLongestSide.apply_coords
  const points = prompt.points || [], labels = prompt.point_labels || [];
  const coords = [], labs = [];
  points.forEach(([x, y], i) => { coords.push(x * sx, y * sy); labs.push(labels[i]); });
  if (prompt.box) {
    const [x0, y0, x1, y1] = prompt.box;
    coords.push(x0 * sx, y0 * sy, x1 * sx, y1 * sy);
    labs.push(2, 3);
  } else {
    coords.push(0, 0); // SAM's prompt encoder pads with a (0, 0) point labelled -1 when there is no box
    labs.push(-1);
  }
  const n = labs.length;
  const feeds = {
    image_embeddings: emb.tensor,
    point_coords: new ort.Tensor("float32", Float32Array.from(coords), [1, n, 2]),
    point_labels: new ort.Tensor("float32", Float32Array.from(labs), [1, n]),
    mask_input: new ort.Tensor("float32", lowRes || new Float32Array(LOW_RES * LOW_RES), [1, 1, LOW_RES, LOW_RES]),
    has_mask_input: new ort.Tensor("float32", Float32Array.of(lowRes ? 1 : 0), [1]),
  };
  const out = await session.run(feeds);
  const masks = out.low_res_masks.data, iou = out.iou_predictions.data;
  // SAM's recommendation, as the server's predict(multimask_output=None): three candidates for a single
  // click without box or previous mask (the best of tokens 1-3), token 0 otherwise.
  // prompt.candidate k: the (k+1)-th best by predicted IoU (the server's `candidate`, same ranking).
  const multimask = points.length === 1 && !prompt.box && !lowRes;
  const tokens = multimask ? [1, 2, 3] : [0];
  const ranked = [...tokens].sort((a, b) => iou[b] - iou[a] || a - b);
  const candidate = prompt.candidate || 0;
  if (!(candidate >= 0 && candidate < ranked.length)) throw new Error(`this prompt has ${ranked.length} candidate mask(s)`);
  const best = ranked[candidate];
  const score = iou[best];
  const chosen = masks.slice(best * LOW_RES * LOW_RES, (best + 1) * LOW_RES * LOW_RES);
  for (const t of Object.values(out)) t.dispose?.();
  const mask = upscaleMask(chosen, emb.inputSize, emb.originalSize);
  return {
    mask, size: [oh, ow], score, lowRes: chosen, model_name: model, checkpoint_sha256: checkpoint,
    candidates: ranked.length, candidate, ms: performance.now() - t0,
  };
}

// --- which one decodes: the toggle and auto's measurement -------------------------------------------------
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[(s.length - 1) >> 1] : NaN;
};

export class DecodeChooser {
  constructor(imageId) {
    this.imageId = imageId;
    this.mode = MODES.includes(localStorage.getItem(MODE_KEY)) ? localStorage.getItem(MODE_KEY) : "auto";
    this.samples = { browser: [], server: [] };
    this.state = "idle"; // browser decoder: idle, loading, ready, unavailable
    this.error = "";
    this.last = null; // {path, ms}
    this.onChange = null;
    if (document.body.dataset.samModel === "0") { // no SAM model on this server: the server decodes
      this.state = "unavailable";
      this.error = "this server segments clicks itself (no Segment Anything model for the browser)";
      this.final = true;
    }
    try { this.auto = JSON.parse(sessionStorage.getItem(AUTO_KEY) || "null"); } catch { this.auto = null; }
  }

  setMode(mode) {
    if (!MODES.includes(mode)) return;
    this.mode = mode;
    localStorage.setItem(MODE_KEY, mode);
    if (mode !== "server") this.load();
    this.onChange?.();
  }

  /** Load the browser decoder in the background (auto, browser); the server decodes meanwhile (auto). */
  load() {
    if (this.final || this.mode === "server" || this.state === "loading" || this.state === "ready") return this.loading;
    this.state = "loading";
    this.onChange?.();
    this.loading = prepare(this.imageId).then(() => {
      this.state = "ready";
      this.onChange?.();
    }, (err) => {
      this.state = "unavailable";
      this.error = err.message;
      if (err.code === "no_sam_model") this.final = true; // never asked again on this page
      this.onChange?.();
    });
    return this.loading;
  }

  /** Whether new chains decode in the browser now (a hover preview needs that, and never starts a load
   * or disturbs auto's timing of both paths). */
  browserChosen() {
    if (this.state !== "ready") return false;
    return this.mode === "browser" || (this.mode === "auto" && this.auto?.choice === "browser");
  }

  /** The path for a new chain of clicks (a chain stays on one path: its previous mask lives there). */
  pick() {
    if (this.mode === "server") return "server";
    if (this.final) return "server";
    if (this.mode === "browser") return this.state === "unavailable" ? "server" : "browser";
    this.load();
    if (this.state !== "ready") return "server";
    if (this.auto?.choice) return this.auto.choice;
    return this.samples.browser.length < this.samples.server.length ? "browser" : "server";
  }

  /** One decoded click, timed from the click to the mask in hand (server: the segment/ round trip). */
  record(path, ms) {
    this.last = { path, ms };
    this.samples[path].push(ms);
    if (this.mode === "auto" && !this.auto?.choice && this.samples.browser.length >= SAMPLES && this.samples.server.length >= SAMPLES) {
      const b = median(this.samples.browser), s = median(this.samples.server);
      this.auto = { choice: b <= s ? "browser" : "server", browserMs: Math.round(b), serverMs: Math.round(s) };
      sessionStorage.setItem(AUTO_KEY, JSON.stringify(this.auto));
    }
    this.onChange?.();
  }

  threads() { return threads(); }

  /** One line for the View panel. */
  status() {
    const parts = [];
    if (this.last) parts.push(`last click: ${this.last.path}, ${Math.round(this.last.ms)} ms`);
    if (this.mode !== "server") {
      if (this.state === "loading") parts.push("loading the browser decoder…");
      if (this.state === "ready") parts.push(`browser decoder: ${threads()} thread${threads() > 1 ? "s" : ""}`);
      if (this.state === "unavailable") parts.push(this.final ? this.error : `the browser cannot segment here (${this.error}); the server does`);
    }
    if (this.mode === "auto" && this.state === "unavailable") parts.push("auto: the server decodes");
    else if (this.mode === "auto") {
      parts.push(this.auto?.choice
        ? `auto chose ${this.auto.choice} (browser ${this.auto.browserMs} ms, server ${this.auto.serverMs} ms)`
        : `auto: timing both (${this.samples.browser.length}/${SAMPLES} browser, ${this.samples.server.length}/${SAMPLES} server)`);
    }
    return parts.join(" · ");
  }
}

export { Unavailable };
