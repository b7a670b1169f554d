// The task screen's bars: the taskbar (title, save state, lease, previous / next, shortcuts, the
// stage's actions) and the tool buttons. Each part follows its own slices of the store: the save state
// "save", the lease "lease", the actions and the tool set "editing", the pressed tool "tool".
import { h } from "../dom.js";
import { keyLabel, shortcutSheet } from "../keymap.js";
import { TOOLS } from "../tools.js";

export function taskbar(s) {
  const { task, project, store } = s;
  const saveState = h("span", { class: "save-state", "data-save-state": "saved", role: "status", "aria-live": "polite" });
  store.subscribe("save-state", ["save"], ({ save }) => {
    saveState.textContent = save.text;
    saveState.dataset.saveState = save.state;
  });
  const lease = h("span", { class: "lease", title: "Lease time left (heartbeats keep it)" });
  store.subscribe("lease", ["lease"], ({ lease: left }) => {
    if (!s.mine) lease.textContent = "view only";
    else if (left != null) lease.textContent = `lease ${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}`;
  });
  const actions = h("div", { class: "actions" });
  store.subscribe("actions", ["editing"], () => actions.replaceChildren(...actionButtons(s)));
  return h("div", { class: "taskbar" },
    h("strong", {}, `${project.name} · task ${task.id}`),
    h("span", { class: "stage" }, `stage ${task.stage}`),
    saveState, lease,
    h("span", { class: "spacer" }),
    h("button", { onclick: () => s.previousTask(), title: `Previous of my tasks (${keyLabel("previous-task")})` }, "◀ Previous"),
    h("button", { onclick: () => s.nextTask(), title: `Next task (${keyLabel("next-task")})` }, "Next ▶"),
    h("button", { onclick: () => shortcutSheet(), title: "Keyboard shortcuts (F1)" }, "Shortcuts (F1)"),
    actions);
}

function actionButtons(s) {
  const b = (label, onclick, cls = "", title = "") => h("button", { class: cls, onclick, title }, label);
  if (!s.mine) return [b("Back to queue", () => s.go("#/queue"))];
  if (!s.review) return [b("Release", () => s.leave()), b("Submit", () => s.submit(), "primary", "Ctrl+Enter")];
  if (s.editing) return [b("Cancel edit", () => s.stopEditing()), b("Fix and accept", () => s.fixAccept(), "primary")];
  return [
    b("Release", () => s.leave()),
    b("Edit", () => s.startEditing(), "", "Fix the regions, then accept"),
    b("Reject", () => s.reject(), "danger", "Needs at least one comment"),
    b("Accept", () => s.accept(), "primary", "Ctrl+Enter"),
  ];
}

/** The tool buttons in nav (select alone when viewing; pin for a reviewer who holds the task) and undo / redo. */
export function toolbar(s, nav) {
  const { store } = s;
  store.subscribe("toolbar", ["editing"], ({ editing }) => {
    const names = editing ? ["select", "segment", "box", "polygon", "brush", "eraser"] : ["select"];
    if (s.review && s.mine) names.push("pin");
    nav.replaceChildren(...names.map((name) => h("button", {
      "data-tool-button": name, "aria-pressed": String(store.get("tool") === name),
      title: `${TOOLS[name].title} (${keyLabel(`${name}-tool`)})`, onclick: () => s.tools.use(name),
    }, `${name} (${keyLabel(`${name}-tool`)})`)));
    if (editing) {
      nav.append(h("div", { class: "undo" },
        h("button", { onclick: () => s.undo(), title: "Undo (Ctrl+Z)" }, "Undo"),
        h("button", { onclick: () => s.redo(), title: "Redo (Ctrl+Shift+Z)" }, "Redo")));
    }
  });
  store.subscribe("tool-pressed", ["tool"], ({ tool }) => {
    nav.querySelectorAll("[data-tool-button]").forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.toolButton === tool)));
  }, { now: false });
}
