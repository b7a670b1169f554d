// A tiny element builder (no framework): h("button", {onclick, class: "x"}, "Label", child...).
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "style" && typeof v === "object") Object.assign(el.style, v);
    else if (k === "value" || (k in el && typeof v !== "string")) el[k] = v; // a textarea's value is no attribute
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) el.append(c instanceof Node ? c : String(c));
  return el;
}

const live = () => document.getElementById("live");

/** Announce a state or an error in the aria-live region (and show it). */
export function announce(text, kind = "info") {
  const el = live();
  el.textContent = text;
  el.dataset.kind = kind;
}

export function errorText(err) {
  return err?.field ? `${err.message} (${err.field})` : err?.message || String(err);
}

/** A modal dialog with buttons; resolves with the chosen value. */
export function choose(title, text, buttons) {
  return new Promise((resolve) => {
    const dlg = h("dialog", { class: "dialog", "aria-label": title },
      h("h2", {}, title), text instanceof Node ? text : h("p", {}, text),
      h("div", { class: "row" }, buttons.map(([label, value]) =>
        h("button", { class: value === buttons[0][1] ? "primary" : "", onclick: () => { dlg.close(); dlg.remove(); resolve(value); } }, label))));
    document.body.append(dlg);
    dlg.showModal();
  });
}

/** Whether keys belong to a text field now (no shortcut fires then). */
export function typing(e) {
  const el = document.activeElement;
  const field = (n) => n && (n.isContentEditable || n.closest?.("input, textarea, select, [contenteditable]"));
  return Boolean(field(e?.target) || field(el));
}
