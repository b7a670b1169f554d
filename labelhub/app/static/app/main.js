// The router: #/queue, #/next/{project}/{stage}[/{task to skip}], #/task/{id}, #/manage/{project}, and
// the manager's workspace (#/projects, #/project/{id}, #/people: workspace/index.js; #/tasks/{project},
// #/exports/{project}, #/metrics/{project}). One screen at a time; leaving a task screen releases its lease.
import { announce, errorText, h } from "./dom.js";
import { loadPreferences } from "./keymap.js";
import { managerScreen } from "./manager.js";
import { nextTask, queueScreen } from "./queue.js";
import { taskScreen } from "./task.js";
import { get } from "./api.js";
import { videoScreen } from "./video/screen.js";

// A video task opens the video screen (static/app/video/); an image task the image editor.
async function openTask(root, taskOrId, go) {
  const task = typeof taskOrId === "object" ? taskOrId : await get(`tasks/${taskOrId}/`);
  if (task.video) { document.body.dataset.screen = "task"; return videoScreen(root, { task, go }); }
  return taskScreen(root, { taskId: task.id, go });
}
import { WORKSPACE_ROUTES, workspaceScreen } from "./workspace/index.js";
import { exportsScreen } from "./workspace/exports.js";
import { metricsScreen } from "./workspace/metrics.js";
import { tasksScreen } from "./workspace/tasks.js";

const root = document.getElementById("screen");
let current = null;
let pendingMessage = null;

function go(hash, { replace = false, message = null } = {}) {
  pendingMessage = message;
  if (replace) { history.replaceState(null, "", hash); route(); } else if (location.hash === hash) route(); else location.hash = hash;
}

async function route() {
  const message = pendingMessage;
  pendingMessage = null;
  const previous = current;
  current = null;
  if (previous?.destroy) await previous.destroy();
  delete document.body.dataset.ready;
  const parts = (location.hash.replace(/^#\/?/, "") || "queue").split("/").map(decodeURIComponent);
  document.body.dataset.screen = parts[0];
  root.replaceChildren(h("p", { class: "muted" }, "Loading…"));
  try {
    if (parts[0] === "task") current = await openTask(root, Number(parts[1]), go);
    else if (parts[0] === "next") {
      const task = await nextTask(root, { projectId: Number(parts[1]), stage: parts[2], message, exclude: Number(parts[3]) || null });
      if (task) {
        history.replaceState(null, "", `#/task/${task.id}`);
        parts.splice(0, parts.length, "task", String(task.id));
        document.body.dataset.screen = "task";
        current = await openTask(root, task, go);
      }
    }
    else if (parts[0] === "manage") await managerScreen(root, { projectId: Number(parts[1]), go });
    else if (WORKSPACE_ROUTES.includes(parts[0])) current = workspaceScreen(root, { parts, go });
    else if (parts[0] === "tasks") current = await tasksScreen(root, { projectId: Number(parts[1]) });
    else if (parts[0] === "exports") current = await exportsScreen(root, { projectId: Number(parts[1]) });
    else if (parts[0] === "metrics") current = await metricsScreen(root, { projectId: Number(parts[1]) });
    else await queueScreen(root, { go, message });
  } catch (err) {
    announce(errorText(err), "error");
    root.replaceChildren(h("div", { class: "empty" }, h("p", { class: "error" }, errorText(err)), h("a", { href: "#/queue" }, "Back to the queue")));
  }
  document.body.dataset.readyAt = String(Math.round(performance.now())); // ms since navigation start
  document.body.dataset.ready = parts[0];
}

document.getElementById("nav").append(h("a", { href: "#/queue" }, "Queue"), " ", h("a", { href: "#/projects" }, "Projects"));
window.addEventListener("hashchange", route);
loadPreferences().then(route); // the user's keys first: the task screen's tooltips show them
