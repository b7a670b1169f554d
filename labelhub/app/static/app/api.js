// The REST client: session cookie + CSRF header, JSON in and out, errors as ApiError.
// Every screen talks to LabelHub only through this module (the public API under /api/v1/).

const BASE = "/api/v1/";

export class ApiError extends Error {
  constructor(status, body) {
    const err = (body && body.error) || {};
    super(err.message || `HTTP ${status}`);
    this.status = status;
    this.code = err.code || "";
    this.field = err.field || "";
    this.details = err.details || {};
  }
}

function csrfToken() {
  const m = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return m ? decodeURIComponent(m[1]) : "";
}

function signIn() {
  location.href = "/app/login/?next=" + encodeURIComponent(location.pathname + location.hash);
}

/** The response itself, for bodies that are not JSON (the SAM decoder, embeddings) and statuses the
 * caller reads (202): session cookie, CSRF on writes, and the same 401 handling as every call. An
 * error status throws ApiError with the server's message. */
export async function raw(path, { method = "GET", body, keepalive = false, accept = "application/json" } = {}) {
  const headers = { Accept: accept };
  if (method !== "GET") headers["X-CSRFToken"] = csrfToken();
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(BASE + path, {
    method,
    headers,
    credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
    keepalive,
  });
  if (res.ok) return res;
  const data = res.headers.get("content-type")?.includes("json") ? await res.json() : null;
  if (res.status === 401 || (res.status === 403 && (data?.error?.code || "").startsWith("not_authenticated"))) signIn();
  throw new ApiError(res.status, data);
}

/** onResponse(res): sees the response (headers of a 204, for instance). */
export async function request(method, path, body, { keepalive = false, onResponse = null } = {}) {
  const res = await raw(path, { method, body, keepalive });
  onResponse?.(res);
  if (res.status === 204) return null;
  return res.headers.get("content-type")?.includes("json") ? res.json() : null;
}

// GETs the router starts while a screen's modules load (prefetch), handed to the screen's own get() of
// the same path: one request, and the screen's data no longer waits for its code. Kept a few seconds.
const early = new Map();
const EARLY_MS = 10000;

export function prefetch(path) {
  const response = request("GET", path);
  response.catch(() => {}); // the error reaches whoever takes it; unused, it is no unhandled rejection
  early.set(path, { response, at: performance.now() });
}

export function get(path) {
  const hit = early.get(path);
  early.delete(path);
  return hit && performance.now() - hit.at < EARLY_MS ? hit.response : request("GET", path);
}

export const post = (path, body, opts) => request("POST", path, body ?? {}, opts);
export const put = (path, body) => request("PUT", path, body);
export const patch = (path, body) => request("PATCH", path, body);

/** Every page of a paginated list. */
export async function all(path) {
  const sep = path.includes("?") ? "&" : "?";
  let page = 1;
  const out = [];
  for (;;) {
    const data = await get(`${path}${sep}page=${page}&page_size=100`);
    if (Array.isArray(data)) return data;
    out.push(...data.results);
    if (!data.next) return out;
    page += 1;
  }
}

export const me = {
  name: document.body.dataset.user,
  id: Number(document.body.dataset.userId),
};

export const del = (path) => request("DELETE", path);

/** POST one file as multipart field `field` with upload progress (fetch has none: XMLHttpRequest).
 * onProgress(loaded, total) while the body goes out; resolves with the JSON answer, rejects with an
 * ApiError. A 429 (the upload throttle) waits for Retry-After and tries again, at most `retries` times. */
export function uploadFile(path, file, { field = "files", onProgress = () => {}, retries = 30 } = {}) {
  return new Promise((resolve, reject) => {
    const send = (left) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", BASE + path);
      xhr.setRequestHeader("X-CSRFToken", csrfToken());
      xhr.setRequestHeader("Accept", "application/json");
      xhr.withCredentials = true;
      xhr.upload.onprogress = (e) => onProgress(e.loaded, e.lengthComputable ? e.total : file.size);
      xhr.onerror = () => reject(new ApiError(0, { error: { message: "The connection failed." } }));
      xhr.onload = () => {
        let data = null;
        try { data = JSON.parse(xhr.responseText); } catch { /* not JSON: a proxy's page */ }
        if (xhr.status === 429 && left > 0) {
          const wait = Number(xhr.getResponseHeader("Retry-After")) || 1;
          setTimeout(() => send(left - 1), Math.min(wait, 60) * 1000);
          return;
        }
        if (xhr.status === 401) location.href = "/app/login/?next=" + encodeURIComponent(location.pathname + location.hash);
        if (xhr.status >= 200 && xhr.status < 300) resolve(data);
        else reject(new ApiError(xhr.status, data || { error: { message: `HTTP ${xhr.status}` } }));
      };
      const form = new FormData();
      form.append(field, file, file.name);
      xhr.send(form);
    };
    send(retries);
  });
}
