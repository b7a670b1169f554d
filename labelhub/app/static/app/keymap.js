// The one keymap: every keyboard command of the task screen as data (id, default keys, what it does).
// The same list drives the key dispatch, the F1 sheet and remapping; a person's remapped keys are
// kept on the server (GET/PUT auth/me/preferences/) and follow them to any browser. Keys never fire
// while a text field has focus, and a class hotkey never shadows a command (commands are looked up
// first; the sheet refuses to give a command a key another command holds).
import * as api from "./api.js";
import { announce, errorText, h, typing } from "./dom.js";

export const COMMANDS = [
  { id: "select-tool", keys: ["v"], text: "select tool; drag a vertex, click an edge to insert one, double-click a vertex to delete it" },
  { id: "segment-tool", keys: ["s"], text: "click-to-segment: a click on a region corrects it (same region, same id); on empty image it starts a new region; left click object, right click background" },
  { id: "box-tool", keys: ["x"], text: "box to segment" },
  { id: "polygon-tool", keys: ["p"], text: "polygon: click vertices, click the first one, N or Enter to finish" },
  { id: "brush-tool", keys: ["b"], text: "brush on the selected mask" },
  { id: "eraser-tool", keys: ["e"], text: "eraser on the selected mask" },
  { id: "pin-tool", keys: ["i"], text: "review: pin an issue to a region or a point (its comment box takes the keys)" },
  { id: "next-candidate", keys: ["m"], text: "segment: the next of SAM's three masks for a single click" },
  { id: "finish", keys: ["n", "Enter"], text: "finish the region being drawn" },
  { id: "cancel", keys: ["Escape"], text: "cancel drawing (a correction gives the region back) / deselect" },
  { id: "undo", keys: ["Ctrl+z"], text: "undo (one step per stroke)" },
  { id: "redo", keys: ["Ctrl+Shift+z", "Ctrl+y"], text: "redo" },
  { id: "delete", keys: ["Delete", "Backspace"], text: "delete the selected region" },
  { id: "copy", keys: ["Ctrl+c"], text: "copy the selected region" },
  { id: "paste", keys: ["Ctrl+v"], text: "paste in place (also on the next image)" },
  { id: "duplicate", keys: ["Ctrl+d"], text: "duplicate the selected region" },
  { id: "hide", keys: ["h"], text: "hide / show the selected region" },
  { id: "hide-all", keys: ["Shift+h"], text: "hide / show all regions" },
  { id: "lock", keys: ["l"], text: "lock the selected region" },
  { id: "next-region", keys: ["Tab"], text: "next region" },
  { id: "previous-region", keys: ["Shift+Tab"], text: "previous region" },
  { id: "single-next", keys: ["ArrowDown"], text: "next region in one-at-a-time mode (review)" },
  { id: "single-previous", keys: ["ArrowUp"], text: "previous region in one-at-a-time mode (review)" },
  { id: "zoom-selected", keys: ["z"], text: "zoom to the selected region" },
  { id: "fit", keys: ["0"], text: "fit the image" },
  { id: "brush-smaller", keys: ["["], text: "smaller brush" },
  { id: "brush-larger", keys: ["]"], text: "larger brush" },
  { id: "brightness", keys: ["Shift+b"], text: "brightness: then = or -" },
  { id: "contrast", keys: ["Shift+c"], text: "contrast: then = or -" },
  { id: "filter-up", keys: ["=", "+"], text: "brightness / contrast up" },
  { id: "filter-down", keys: ["-", "_"], text: "brightness / contrast down" },
  { id: "next-task", keys: ["f"], text: "next of my tasks (saves; a task I have not finished stays mine)" },
  { id: "previous-task", keys: ["d"], text: "previous of my tasks" },
  { id: "submit", keys: ["Ctrl+Enter"], text: "submit (review: accept)" },
  { id: "shortcuts", keys: ["F1"], text: "this sheet (F1 again closes it)" },
  ...[1, 2, 3, 4, 5, 6, 7, 8, 9].map((n) => ({ id: `class-${n}`, keys: [String(n)], text: `class ${n} for the next or the selected region` })),
];

/** Mouse gestures, shown in the sheet (not remappable). */
export const GESTURES = [
  ["left / right click", "segment: object / background point"],
  ["Shift+click", "segment: always a new region, even on top of another"],
  ["hold Ctrl", "segment: gather points, decode them together on release"],
  ["wheel; middle-drag or Alt+drag", "zoom at the cursor; pan"],
];

const BY_ID = new Map(COMMANDS.map((c) => [c.id, c]));
let overrides = {}; // {command id: key}: this user's remapped keys (from the server)
let table = null; // combo (lowercase) -> command id

/** The key combination of a keydown, as the keymap writes it: "f", "Shift+h", "Ctrl+Enter", "=". */
export function combo(e) {
  let key = e.key === " " ? "Space" : e.key;
  const mods = [];
  if (e.ctrlKey || e.metaKey) mods.push("Ctrl");
  if (e.altKey) mods.push("Alt");
  const letter = key.length === 1 && key.toLowerCase() !== key.toUpperCase();
  // A printed symbol already carries its Shift ("+", "_"); a letter or a named key keeps it.
  if (e.shiftKey && (letter || key.length > 1)) mods.push("Shift");
  if (letter) key = key.toLowerCase();
  return [...mods, key].join("+");
}

/** The keys of a command now (the user's override replaces all its defaults). */
export function keysOf(id) {
  return overrides[id] ? [overrides[id]] : BY_ID.get(id)?.keys || [];
}

/** A key for a tooltip: "S", "Ctrl+Enter". */
export function keyLabel(id) {
  const k = keysOf(id)[0] || "";
  return k.length === 1 ? k.toUpperCase() : k;
}

function build() {
  table = new Map();
  for (const c of COMMANDS) for (const k of keysOf(c.id)) if (!table.has(k.toLowerCase())) table.set(k.toLowerCase(), c.id);
}

/** This user's remapped keys (the page brings them, labelhub/app/views.py; the sheet saves them). */
export function setOverrides(shortcuts) {
  overrides = { ...(shortcuts || {}) };
  build();
}

/** The command a keydown names, or null (also null while a text field or a dialog has the keys). */
export function commandFor(e) {
  if (typing(e) || document.querySelector("dialog[open]")) return null;
  if (!table) build();
  return table.get(combo(e).toLowerCase()) || null;
}

/** A listener for a screen: runs screen.commands[id] for the keys of the keymap; keys no command holds
 * go to fallback (class hotkeys), which therefore never shadow a command. */
export function dispatcher(commands, fallback = null) {
  return (e) => {
    if (e.key === "F1" && (document.querySelector("dialog.shortcuts") || !typing(e))) {
      e.preventDefault(); // F1 toggles the sheet (also from inside it)
      shortcutSheet();
      return;
    }
    const id = commandFor(e);
    if (id && commands[id]) {
      e.preventDefault();
      commands[id](e);
    } else if (!id && fallback && !typing(e) && !document.querySelector("dialog[open]")) {
      if (fallback(combo(e))) e.preventDefault();
    }
  };
}

async function remap(id, key) {
  const holder = table.get(key.toLowerCase());
  if (holder && holder !== id) {
    announce(`${key} is already the key of "${BY_ID.get(holder).text}": change that one first.`, "error");
    return false;
  }
  const next = { ...overrides };
  const defaults = BY_ID.get(id).keys;
  if (defaults.length === 1 && defaults[0] === key) delete next[id]; else next[id] = key;
  try {
    const saved = await api.put("auth/me/preferences/", { shortcuts: next });
    setOverrides(saved.shortcuts);
    announce(`${BY_ID.get(id).text.split(":")[0]}: now ${key}.`);
    return true;
  } catch (err) {
    announce(`Not saved: ${errorText(err)}`, "error");
    return false;
  }
}

async function resetAll() {
  try {
    setOverrides((await api.put("auth/me/preferences/", { shortcuts: {} })).shortcuts);
    announce("Shortcuts back to the defaults.");
  } catch (err) {
    announce(`Not saved: ${errorText(err)}`, "error");
  }
}

function closeSheet(dlg) { dlg.close(); dlg.remove(); }

/** F1: the sheet, drawn from COMMANDS; Change takes the next key pressed as the command's key. */
export function shortcutSheet() {
  const existing = document.querySelector("dialog.shortcuts");
  if (existing) { closeSheet(existing); return; }
  let capturing = null; // {id, cell}
  const rows = () => COMMANDS.map((c) => {
    const cell = h("td", { class: "keys" }, keysOf(c.id).map((k) => h("kbd", {}, k)));
    return h("tr", { "data-command": c.id },
      cell, h("td", {}, c.text),
      h("td", {}, h("button", {
        class: "icon", "aria-label": `Change the key of: ${c.text}`,
        onclick: () => { capturing = { id: c.id, cell }; cell.replaceChildren(h("em", {}, "press a key…")); },
      }, "Change")));
  });
  const body = h("tbody", {}, rows());
  const dlg = h("dialog", { class: "dialog shortcuts", "aria-label": "Keyboard shortcuts", tabindex: "-1" },
    h("h2", {}, "Keyboard shortcuts"),
    h("table", {}, body,
      h("tbody", {}, GESTURES.map(([k, v]) => h("tr", {}, h("td", {}, h("kbd", {}, k)), h("td", {}, v), h("td", {}))))),
    h("p", { class: "muted" }, "Keys are ignored while a text field has focus. Your keys are kept on the server for your account."),
    h("div", { class: "row" },
      h("button", { onclick: async () => { await resetAll(); body.replaceChildren(...rows()); } }, "Reset to defaults"),
      h("button", { class: "primary", onclick: () => closeSheet(dlg) }, "Close")));
  dlg.addEventListener("keydown", async (e) => {
    if (capturing && !["Shift", "Control", "Alt", "Meta"].includes(e.key)) {
      e.preventDefault();
      e.stopPropagation();
      const { id } = capturing;
      capturing = null;
      if (e.key !== "Escape") await remap(id, combo(e));
      body.replaceChildren(...rows());
      dlg.focus();
    }
  });
  document.body.append(dlg);
  dlg.showModal();
}
