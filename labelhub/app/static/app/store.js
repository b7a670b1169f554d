// A small store: one state object, named slices, and listeners that each name the slices they draw.
// set({slice: value}) changes slices (a new value, compared with ===); touch("slice") says one was
// changed in place (the regions a tool edited). Listeners run once per microtask for all the changes
// made meanwhile, and only those whose slices changed: selecting a region redraws the regions list
// and the canvas, not the class buttons nor the comments. flush() runs them now (a new panel to focus).
// renders counts each listener's runs (window.labelhub.store.renders, read by the browser tests).
export function createStore(initial) {
  const state = { ...initial };
  const listeners = [];
  const renders = {};
  let changed = new Set();
  let scheduled = false;

  function schedule() {
    if (scheduled) return;
    scheduled = true;
    queueMicrotask(() => { scheduled = false; flush(); });
  }

  function set(patch) {
    for (const [key, value] of Object.entries(patch)) {
      if (state[key] === value) continue;
      state[key] = value;
      changed.add(key);
    }
    if (changed.size) schedule();
  }

  function touch(...keys) {
    for (const key of keys) changed.add(key);
    if (changed.size) schedule();
  }

  /** Run the listeners of what changed, until nothing more does (a listener may set a slice). */
  function flush() {
    for (let round = 0; changed.size && round < 10; round++) {
      const now = changed;
      changed = new Set();
      for (const l of [...listeners]) {
        if (!l.keys.some((k) => now.has(k))) continue;
        renders[l.name] = (renders[l.name] || 0) + 1;
        try { l.fn(state, now); } catch (err) { reportError(err); } // the others still draw; the page sees the error
      }
    }
  }

  /** fn(state, changedKeys) whenever one of keys changes; run once now when `now` is true. Returns a
   * function that stops it. */
  function subscribe(name, keys, fn, { now = true } = {}) {
    const l = { name, keys, fn };
    listeners.push(l);
    if (now) { renders[name] = (renders[name] || 0) + 1; fn(state, new Set(keys)); }
    return () => { const i = listeners.indexOf(l); if (i >= 0) listeners.splice(i, 1); };
  }

  /** The screen is gone: no listener runs again (a save answered after leaving draws nothing). */
  function close() { listeners.length = 0; changed = new Set(); }

  return { get: (key) => (key === undefined ? state : state[key]), set, touch, flush, subscribe, close, renders };
}
