// Small shared pieces of the manager's workspace (preact + htm, no build step): data loading, error
// text naming the field, a palette that hands out unused colours.
import { html } from "htm/preact";
import { useCallback, useEffect, useState } from "preact/hooks";
import { errorText } from "../dom.js";
import { PALETTE } from "../palette.js";

export { html };
export const MANAGING = ["owner", "manager"];
export const ROLES = ["annotator", "reviewer", "manager", "owner"];

/** Load with `load()` when `deps` change; `reload()` loads again. {data, error, reload}. */
export function useLoad(load, deps = []) {
  const [state, setState] = useState({ data: null, error: null });
  const reload = useCallback(() => load().then((data) => setState({ data, error: null }), (error) => setState((s) => ({ data: s.data, error }))), deps);
  useEffect(() => { reload(); }, [reload]);
  return { ...state, reload };
}

/** Call `fn` every `ms` while `active`. */
export function useInterval(fn, ms, active) {
  useEffect(() => {
    if (!active) return undefined;
    const id = setInterval(fn, ms);
    return () => clearInterval(id);
  }, [fn, ms, active]);
}

export function ErrorLine({ error }) {
  if (!error) return null;
  return html`<p class="error" role="alert" data-field=${error.field || ""}>${errorText(error)}</p>`;
}

export function Loading({ error }) {
  return error ? html`<${ErrorLine} error=${error} />` : html`<p class="muted">Loading…</p>`;
}

/** The first palette colour none of `used` has (lower-case #rrggbb). */
export function spareColor(used) {
  const taken = new Set(used.map((c) => (c || "").toLowerCase()));
  return (PALETTE.find((c) => !taken.has(c.toLowerCase())) || PALETTE[used.length % PALETTE.length]).toLowerCase();
}

/** Organizations where I am an owner or a manager. */
export const managed = (orgs) => (orgs || []).filter((o) => MANAGING.includes(o.role));
